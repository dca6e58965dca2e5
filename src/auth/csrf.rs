//! Cross-site request forgery: a browser attaches the session cookie to requests another site
//! makes it send, so a write authenticated by that cookie alone must prove it comes from a
//! page of this server. Requests authenticated by an `Authorization` or `x-api-key` header are
//! not at risk (no other site can make a browser send those) and are not checked.
//!
//! The rule, for a cookie-authenticated request with a method other than GET, HEAD or OPTIONS:
//!
//! 1. **Same origin.** `Origin`, when present, must name this server (scheme-less comparison of
//!    host and port with the `Host` header; `null` fails). Without `Origin`, `Sec-Fetch-Site`
//!    must be `same-origin` or `none`; without either, a `Referer` must name this server.
//! 2. **Content type.** A body must be `application/json` (GraphQL also takes
//!    `multipart/form-data` for uploads; the report upload route takes any type). The types a
//!    cross-site form can send without a CORS preflight (`text/plain`,
//!    `application/x-www-form-urlencoded`, `multipart/form-data`) are accepted only with a
//!    positive same-origin proof from rule 1; a request with none of those headers comes from
//!    no browser, and may only send JSON.
//!
//! Behind a reverse proxy the `Host` header must reach the server as the browser sent it.
//!
//! An origin listed for CORS (`--cors-allowed-origins`) counts as this server's own in rule 1:
//! it was listed so that its pages may act for a signed-in user.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::middleware::cookie;
use crate::app::AppState;
use crate::error::{AppError, ErrorCode};

/// Refuses forged writes (see the module's rule). Mounted inside authentication and rate
/// limiting, so a refused request is counted like any other.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    // Only the session cookies speak for the caller: a browser may have been made to send them.
    let cookie_borne = !headers.contains_key(header::AUTHORIZATION)
        && !headers.contains_key("x-api-key")
        && (cookie(headers, "token").is_some() || cookie(headers, "refresh_token").is_some());
    if cookie_borne {
        let accepts = accepts(req.uri().path());
        let trusted = &state.config.cors_allowed_origins;
        if let Err(err) = check_cookie_request(req.method(), headers, accepts, trusted) {
            return err.into_response();
        }
    }
    next.run(req).await
}

/// What a route accepts as the body of a cookie-authenticated write.
fn accepts(path: &str) -> Accepts {
    if path == crate::rest::streams::UPLOAD_PATH || path == crate::engines::rest::START_PATH {
        Accepts::Any
    } else if path == crate::http::playground::PATH {
        Accepts::JsonOrMultipart
    } else {
        Accepts::Json
    }
}

/// What the request says about where it was made.
#[derive(Debug, PartialEq, Eq)]
enum Provenance {
    /// A header proves it comes from a page of this server (or was typed by the user).
    SameOrigin,
    /// A header names another origin.
    CrossOrigin(String),
    /// No browser header at all: not a browser, so not a forgery.
    Unknown,
}

/// Whether the method may change anything.
fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// `host[:port]` of an absolute URL, lowercased, without a default port.
fn authority_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    Some(
        authority
            .strip_suffix(default_port)
            .map(str::to_string)
            .unwrap_or(authority),
    )
}

/// This server's `host[:port]` as the browser addressed it.
fn own_authority(headers: &HeaderMap) -> Option<String> {
    header_str(headers, header::HOST).map(|h| {
        let h = h.to_ascii_lowercase();
        h.strip_suffix(":80")
            .or_else(|| h.strip_suffix(":443"))
            .map(str::to_string)
            .unwrap_or(h)
    })
}

/// Where the request was made; an `Origin` among `trusted` (exact `scheme://host[:port]`,
/// lowercased) counts as this server's own.
fn provenance(headers: &HeaderMap, trusted: &[String]) -> Provenance {
    let own = own_authority(headers);
    let same = |url: &str| authority_of(url).is_some_and(|a| Some(&a) == own.as_ref());
    if let Some(origin) = header_str(headers, header::ORIGIN) {
        let listed = trusted.iter().any(|t| t.eq_ignore_ascii_case(origin));
        return if listed || same(origin) {
            Provenance::SameOrigin
        } else {
            Provenance::CrossOrigin(origin.to_string())
        };
    }
    if let Some(site) = header_str(headers, "sec-fetch-site") {
        return match site.to_ascii_lowercase().as_str() {
            "same-origin" | "none" => Provenance::SameOrigin,
            other => Provenance::CrossOrigin(format!("Sec-Fetch-Site: {other}")),
        };
    }
    if let Some(referer) = header_str(headers, header::REFERER) {
        return if same(referer) {
            Provenance::SameOrigin
        } else {
            Provenance::CrossOrigin(authority_of(referer).unwrap_or_else(|| "another site".into()))
        };
    }
    Provenance::Unknown
}

/// What a route accepts as a cookie-authenticated body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepts {
    /// `application/json` (the REST rows).
    Json,
    /// `application/json` or `multipart/form-data` (`POST /graphql`).
    JsonOrMultipart,
    /// Any type (the report upload route).
    Any,
}

/// The essence of the `Content-Type`, lowercased (`application/json`), if any.
fn media_type(headers: &HeaderMap) -> Option<String> {
    header_str(headers, header::CONTENT_TYPE).map(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}

/// A type a cross-site form (or `fetch` without a preflight) can send.
fn is_form_capable(media: &str) -> bool {
    matches!(
        media,
        "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data"
    )
}

fn is_json(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json")
}

/// Whether the request has a body at all.
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || header_str(headers, header::CONTENT_LENGTH).is_some_and(|n| n != "0")
}

/// Checks a request authenticated by the session cookie (see the module's rule).
///
/// # Errors
/// 403 `FORBIDDEN` for another origin or a form-capable body without proof of origin; 415
/// `UNSUPPORTED_FORMAT` for a body type the route does not accept.
pub fn check_cookie_request(
    method: &Method,
    headers: &HeaderMap,
    accepts: Accepts,
    trusted: &[String],
) -> Result<(), AppError> {
    if !is_write(method) {
        return Ok(());
    }
    let provenance = provenance(headers, trusted);
    if let Provenance::CrossOrigin(from) = &provenance {
        return Err(AppError::forbidden(format!(
            "cross-origin request refused ({from}): a write authenticated by the session cookie must come from this server's own pages; other clients authenticate with an Authorization header"
        )));
    }
    let media = media_type(headers);
    let accepted = match (&media, accepts) {
        (None, _) => !has_body(headers),
        (Some(_), Accepts::Any) => true,
        (Some(m), Accepts::Json) => is_json(m),
        (Some(m), Accepts::JsonOrMultipart) => is_json(m) || m == "multipart/form-data",
    };
    if !accepted {
        return Err(AppError::Client {
            code: ErrorCode::UnsupportedFormat,
            message: format!(
                "a write authenticated by the session cookie must send Content-Type: application/json, not {}",
                media.as_deref().unwrap_or("a body without a type")
            ),
            details: Vec::new(),
        });
    }
    let form_capable = media.as_deref().is_none_or(is_form_capable) && has_body(headers);
    if form_capable && provenance != Provenance::SameOrigin {
        return Err(AppError::forbidden(
            "a form-encoded write authenticated by the session cookie needs an Origin (or Sec-Fetch-Site) header naming this server",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("rampart.test:8080"));
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn post(pairs: &[(&'static str, &'static str)], accepts: Accepts) -> Option<ErrorCode> {
        check_cookie_request(&Method::POST, &headers(pairs), accepts, &[])
            .err()
            .map(|e| e.code())
    }

    #[test]
    fn reads_are_never_checked() {
        let h = headers(&[("origin", "https://evil.test")]);
        assert!(check_cookie_request(&Method::GET, &h, Accepts::Json, &[]).is_ok());
    }

    #[test]
    fn same_origin_json_passes_and_other_origins_do_not() {
        let json = ("content-type", "application/json");
        let body = ("content-length", "2");
        assert_eq!(
            post(
                &[json, body, ("origin", "http://rampart.test:8080")],
                Accepts::Json
            ),
            None
        );
        assert_eq!(
            post(&[json, body, ("origin", "http://evil.test")], Accepts::Json),
            Some(ErrorCode::Forbidden)
        );
        assert_eq!(
            post(&[json, body, ("origin", "null")], Accepts::Json),
            Some(ErrorCode::Forbidden)
        );
        assert_eq!(
            post(
                &[json, body, ("sec-fetch-site", "same-site")],
                Accepts::Json
            ),
            Some(ErrorCode::Forbidden)
        );
        assert_eq!(
            post(
                &[json, body, ("referer", "http://rampart.test:8080/docs/")],
                Accepts::Json
            ),
            None
        );
        assert_eq!(
            post(
                &[json, body, ("referer", "http://evil.test/")],
                Accepts::Json
            ),
            Some(ErrorCode::Forbidden)
        );
        // No browser header: a script, not a forgery.
        assert_eq!(post(&[json, body], Accepts::Json), None);
    }

    #[test]
    fn form_bodies_are_refused() {
        let same = ("origin", "http://rampart.test:8080");
        let body = ("content-length", "10");
        assert_eq!(
            post(&[("content-type", "text/plain"), body, same], Accepts::Json),
            Some(ErrorCode::UnsupportedFormat)
        );
        // Uploads through GraphQL's multipart form need proof of origin.
        let multipart = ("content-type", "multipart/form-data; boundary=x");
        assert_eq!(
            post(&[multipart, body, same], Accepts::JsonOrMultipart),
            None
        );
        assert_eq!(
            post(&[multipart, body], Accepts::JsonOrMultipart),
            Some(ErrorCode::Forbidden)
        );
        // Reports may be of any type, plain text only from this server's pages.
        assert_eq!(
            post(&[("content-type", "text/plain"), body], Accepts::Any),
            Some(ErrorCode::Forbidden)
        );
        assert_eq!(
            post(
                &[("content-type", "application/octet-stream"), body],
                Accepts::Any
            ),
            None
        );
        // No body, no type: nothing a form could have sent.
        assert_eq!(post(&[], Accepts::Json), None);
    }

    #[test]
    fn default_ports_are_the_same_origin() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("rampart.test"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://rampart.test"),
        );
        assert_eq!(provenance(&h, &[]), Provenance::SameOrigin);
    }

    #[test]
    fn a_cors_listed_origin_counts_as_this_servers_own() {
        let listed = ["https://app.example.com".to_string()];
        let h = headers(&[
            ("host", "api.example.com"),
            ("origin", "https://app.example.com"),
            ("content-type", "application/json"),
            ("content-length", "2"),
        ]);
        assert!(check_cookie_request(&Method::POST, &h, Accepts::Json, &listed).is_ok());
        assert!(check_cookie_request(&Method::POST, &h, Accepts::Json, &[]).is_err());
        let other = headers(&[
            ("host", "api.example.com"),
            ("origin", "https://evil.example.com"),
            ("content-type", "application/json"),
            ("content-length", "2"),
        ]);
        assert!(check_cookie_request(&Method::POST, &other, Accepts::Json, &listed).is_err());
    }
}
