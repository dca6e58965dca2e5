//! Per-request authentication and rate limiting for the HTTP surfaces.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::csrf;
use super::resolve::{authenticate, Credential};
use crate::app::AppState;
use crate::context::{Ctx, RequestMeta};
use crate::error::{AppError, ErrorCode};
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

fn request_meta(req: &Request) -> RequestMeta {
    RequestMeta {
        request_id: req
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string().into()),
        ip: req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ci| ci.0.ip()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect()),
    }
}

/// A credential header that failed on `POST /graphql`, with the reason: the answer if the
/// request turns out to need a caller.
#[derive(Clone, Debug)]
pub struct RejectedCredential(pub String);

/// What a route accepts as the body of a cookie-authenticated write.
fn csrf_rule(path: &str) -> csrf::Accepts {
    if path == crate::rest::streams::UPLOAD_PATH {
        csrf::Accepts::Any
    } else if path == crate::http::playground::PATH {
        csrf::Accepts::JsonOrMultipart
    } else {
        csrf::Accepts::Json
    }
}

/// The routes anyone may call (signing in, refreshing): a credential header that fails there
/// is ignored rather than answered 401.
fn is_public(method: &axum::http::Method, path: &str) -> bool {
    crate::rest::routes::ROUTES.iter().any(|row| {
        row.access == crate::rest::row::Access::Public
            && row.method.as_str() == method.as_str()
            && row.path == path
    })
}

/// Resolves the caller once, stores `RequestMeta` (always) and `Ctx` (when authenticated) in
/// the request, counts the request against the caller's budget and reports it in headers.
pub async fn authenticate_and_limit(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let meta = request_meta(&req);
    req.extensions_mut().insert(meta.clone());
    let credential = credential(req.headers());
    // Only the session cookies speak for the caller: a browser may have been made to send them.
    let cookie_borne = !matches!(credential, Some((_, true)))
        && (cookie(req.headers(), "token").is_some()
            || cookie(req.headers(), "refresh_token").is_some());
    let forged = cookie_borne
        .then(|| {
            let accepts = csrf_rule(req.uri().path());
            csrf::check_cookie_request(req.method(), req.headers(), accepts).err()
        })
        .flatten();
    let ctx: Option<Ctx> = match credential {
        Some((credential, from_header)) => {
            match authenticate(&state, &credential, meta.clone()).await {
                Ok(ctx) => Some(ctx),
                // A stale token a client still sends must not stop it from signing in again: the
                // public REST routes ignore it; GraphQL runs the request anonymously and answers
                // with this error if anything in it needed the caller.
                Err(err) if from_header && err.code() == ErrorCode::Unauthenticated => {
                    if is_public(req.method(), req.uri().path()) {
                        None
                    } else if *req.method() == Method::POST
                        && req.uri().path() == crate::http::playground::PATH
                    {
                        req.extensions_mut()
                            .insert(RejectedCredential(err.public_message()));
                        None
                    } else {
                        return err.into_response();
                    }
                }
                Err(err) if from_header => return err.into_response(),
                Err(_) => None,
            }
        }
        None => None,
    };
    let bucket = match &ctx {
        Some(Ctx {
            actor: crate::context::Actor::ApiKey { key_id, .. },
            ..
        }) => format!("key:{key_id}"),
        Some(Ctx {
            actor: crate::context::Actor::User { user_id, .. },
            ..
        }) => format!("user:{user_id}"),
        None => format!(
            "ip:{}",
            meta.ip.map(|ip| ip.to_string()).unwrap_or_default()
        ),
    };
    if let Some(ctx) = ctx {
        req.extensions_mut().insert(ctx);
    }
    let limit = state.config.rate_limit_per_minute;
    let decision = state.limiter.hit(&bucket, limit, 60).await;
    let mut res = if let Some(refused) = forged {
        refused.into_response()
    } else if decision.allowed {
        next.run(req).await
    } else {
        AppError::rate_limited(decision.reset_secs.max(1)).into_response()
    };
    let headers = res.headers_mut();
    // A stricter budget (the login limit) may already have set these; it wins.
    if !headers.contains_key("ratelimit-limit") {
        headers.insert("ratelimit-limit", HeaderValue::from(decision.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(decision.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(decision.reset_secs));
    }
    res
}
