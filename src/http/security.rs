//! Browser-facing protections every answer carries: no MIME sniffing, no framing, no referrer
//! leaks, a content security policy, and `Secure` session cookies over HTTPS.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Response};
use axum::middleware::Next;
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::app::AppState;

/// The policy of the two HTML pages (GraphiQL at `/graphql`, Swagger UI at `/docs/`): every
/// script is a file of this server (neither page has an inline script); styles may be inline,
/// because both UIs set them at run time (GraphiQL's dialogs inject `<style>` elements);
/// connections (fetches, GraphiQL's WebSocket) only back to this server; no framing.
pub const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// The policy of everything else (JSON, assets): nothing may load or frame it.
const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

fn is_html<B>(res: &Response<B>) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

fn policy(res: &Response<Body>) -> Option<HeaderValue> {
    Some(HeaderValue::from_static(if is_html(res) {
        PAGE_POLICY
    } else {
        API_POLICY
    }))
}

/// Adds the headers to every answer of `router`, each unless the handler set its own.
pub fn with_headers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            policy as fn(&Response<Body>) -> Option<HeaderValue>,
        ))
}

/// Whether the request reached this server over HTTPS: its URI says so (an absolute-form or
/// HTTP/2 request names its scheme), or a trusted proxy (`--trusted-proxies`) that terminated
/// TLS says so in `X-Forwarded-Proto`. The header from anyone else is ignored.
fn over_https(req: &Request, trusted_proxies: &[ipnet::IpNet]) -> bool {
    if req.uri().scheme_str() == Some("https") {
        return true;
    }
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|ci| ci.0.ip().to_canonical());
    let from_proxy = peer.is_some_and(|ip| crate::auth::client_ip::is_trusted(ip, trusted_proxies));
    from_proxy
        && req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            // The proxy nearest to us appends last.
            .and_then(|v| v.rsplit(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// Marks session cookies `Secure` when configured so or when the request came over HTTPS, so a
/// browser never sends them back over plain HTTP.
pub async fn secure_cookies(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response<Body> {
    let secure = state.config.secure_cookies || over_https(&req, &state.config.trusted_proxies);
    let mut res = next.run(req).await;
    if !secure {
        return res;
    }
    let cookies: Vec<HeaderValue> = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    if cookies.is_empty() {
        return res;
    }
    res.headers_mut().remove(header::SET_COOKIE);
    for cookie in cookies {
        let marked = match cookie.to_str() {
            Ok(text) if !has_secure(text) => {
                HeaderValue::from_str(&format!("{text}; Secure")).unwrap_or(cookie)
            }
            _ => cookie,
        };
        res.headers_mut().append(header::SET_COOKIE, marked);
    }
    res
}

fn has_secure(cookie: &str) -> bool {
    cookie
        .split(';')
        .skip(1)
        .any(|attr| attr.trim().eq_ignore_ascii_case("secure"))
}
