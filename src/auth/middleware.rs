//! Per-request authentication and rate limiting for the HTTP surfaces.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::resolve::{authenticate, Credential};
use crate::app::AppState;
use crate::context::{Actor, Ctx, RequestMeta};
use crate::error::AppError;
use crate::http::RequestId;

/// The credential a request carries: `Authorization: Bearer`, `x-api-key`, or the `token`
/// cookie. The flag says whether it came from a header (a bad header credential is an error;
/// a stale cookie is ignored).
fn credential(headers: &HeaderMap) -> Option<(Credential, bool)> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .unwrap_or("");
        return Some((Credential::from_bearer(token), true));
    }
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some((Credential::ApiKey(key.trim().to_string()), true));
    }
    cookie(headers, "token").map(|t| (Credential::Access(t), false))
}

/// The value of cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A credential header that failed on `POST /graphql`, with the reason: the answer if the
/// request turns out to need a caller.
#[derive(Clone, Debug)]
pub struct RejectedCredential(pub String);

/// Whether a credential header that failed with `err` may be ignored: a stale token a client
/// still sends must not stop it from signing in again. The public REST routes (sign-in,
/// refresh) ignore it; `POST /graphql` runs anonymously and answers with this error only if
/// something in the request needed the caller ([`RejectedCredential`]).
fn tolerate_stale_header(req: &mut Request, err: &AppError) -> bool {
    if err.code() != crate::error::ErrorCode::Unauthenticated {
        return false;
    }
    let (method, path) = (req.method().as_str(), req.uri().path());
    let public = crate::rest::routes::ROUTES.iter().any(|row| {
        row.access == crate::rest::row::Access::Public
            && row.method.as_str() == method
            && row.path == path
    });
    if public {
        return true;
    }
    if method == "POST" && path == crate::http::playground::PATH {
        let reason = RejectedCredential(err.public_message());
        req.extensions_mut().insert(reason);
        return true;
    }
    false
}

fn request_meta(req: &Request, trusted_proxies: &[ipnet::IpNet]) -> RequestMeta {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip());
    RequestMeta {
        request_id: req
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string().into()),
        ip: super::client_ip::client_ip(peer, req.headers(), trusted_proxies),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect()),
    }
}

/// The budget a caller spends: its API key, its user, or (anonymous, or with a credential that
/// failed) its IP address. HTTP requests and WebSocket operations share it.
pub fn bucket(ctx: Option<&Ctx>, ip: Option<IpAddr>) -> String {
    match ctx.map(|c| &c.actor) {
        Some(Actor::ApiKey { key_id, .. }) => format!("key:{key_id}"),
        Some(Actor::User { user_id, .. }) => format!("user:{user_id}"),
        None => format!("ip:{}", ip.map(|ip| ip.to_string()).unwrap_or_default()),
    }
}

/// Resolves the caller once, stores `RequestMeta` (always) and `Ctx` (when authenticated) in
/// the request, counts the request against the caller's budget and reports it in headers.
/// A credential that fails is counted against the client's address, so guessing keys or
/// tokens spends a budget like any other request.
pub async fn authenticate_and_limit(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let meta = request_meta(&req, &state.config.trusted_proxies);
    req.extensions_mut().insert(meta.clone());
    let (ctx, refused): (Option<Ctx>, Option<AppError>) = match credential(req.headers()) {
        Some((credential, from_header)) => {
            match authenticate(&state, &credential, meta.clone()).await {
                Ok(ctx) => (Some(ctx), None),
                Err(err) if from_header && tolerate_stale_header(&mut req, &err) => (None, None),
                Err(err) if from_header => (None, Some(err)),
                Err(_) => (None, None),
            }
        }
        None => (None, None),
    };
    let bucket = bucket(ctx.as_ref(), meta.ip);
    if let Some(ctx) = ctx {
        // The request's span (see `http::request_id`) names the org from here on.
        tracing::Span::current().record("org", tracing::field::display(ctx.org_id));
        req.extensions_mut().insert(ctx);
    }
    let limit = state.config.rate_limit_per_minute;
    let decision = state.limiter.hit(&bucket, limit, 60).await;
    let mut res = if !decision.allowed {
        AppError::rate_limited(decision.reset_secs.max(1)).into_response()
    } else if let Some(err) = refused {
        err.into_response()
    } else {
        next.run(req).await
    };
    // A stricter budget (the login limit) may already have set these; it wins.
    if !res.headers().contains_key("ratelimit-limit") {
        decision.write_headers(res.headers_mut());
    }
    res
}
