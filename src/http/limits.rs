//! What one request may cost before anything reads it: its body size (tower-http's
//! `RequestBodyLimit`, the limit chosen per route) and its running time (tower-http's
//! `Timeout`, on the routes that answer in one piece).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower::{ServiceBuilder, ServiceExt};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::app::AppState;
use crate::config::Config;
use crate::error::AppError;

/// Whether a request body is GraphQL's multipart upload form.
pub fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

/// The largest body `req` may have, and whether this layer must cut it off there: report
/// uploads stream under their own (larger) limit, which `ingest::upload` counts on the
/// decompressed report as it stores it; GraphQL multipart uploads have theirs; every other
/// body has the JSON limit.
fn limit_for(config: &Config, req: &Request) -> (usize, bool) {
    let path = req.uri().path();
    if path == crate::rest::streams::UPLOAD_PATH {
        (
            usize::try_from(config.max_upload_bytes).unwrap_or(usize::MAX),
            false,
        )
    } else if path == crate::engines::rest::START_PATH && req.method() == Method::POST {
        // A source archive, or a small JSON body.
        (
            usize::try_from(
                config
                    .engine_max_archive_bytes
                    .max(config.max_body_bytes as u64),
            )
            .unwrap_or(usize::MAX),
            true,
        )
    } else if path == crate::http::playground::PATH
        && req.method() == Method::POST
        && is_multipart(req.headers())
    {
        (config.max_graphql_upload_bytes, true)
    } else {
        (config.max_body_bytes, true)
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Bounds every request body: a `Content-Length` above the route's limit is answered 413 before
/// a byte is read, and a body without one (chunked) ends in an error at the limit, which the
/// handlers report as 413.
pub async fn limit_body(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (limit, cut_off) = limit_for(&state.config, &req);
    if declared_length(req.headers()).is_some_and(|n| n > limit as u64) {
        return too_large(limit).into_response();
    }
    if !cut_off {
        return next.run(req).await;
    }
    let service = ServiceBuilder::new()
        .layer(RequestBodyLimitLayer::new(limit))
        .map_request(|req: axum::http::Request<_>| req.map(Body::new))
        .service(next);
    match service.oneshot(req).await {
        Ok(res) => res.map(Body::new),
        Err(never) => match never {},
    }
}

/// The 413 for a body over `limit`.
pub fn too_large(limit: usize) -> AppError {
    AppError::payload_too_large(format!(
        "the request body is larger than the limit of {limit} bytes"
    ))
}

/// Whether a body read failed because the body limit cut it off.
pub fn is_length_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        current = err.source();
    }
    false
}

/// Answers 503 `SERVICE_UNAVAILABLE` when a request runs longer than the configured time
/// (tower-http's `Timeout`, its bare 503 given the envelope's message). Mounted on the routes
/// that answer in one piece (GraphQL, the REST rows): a stream, a WebSocket or an upload (the
/// report route, GraphQL multipart) may rightly take longer.
pub async fn limit_time(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if is_multipart(req.headers()) {
        return next.run(req).await;
    }
    let millis = state.config.request_timeout_ms;
    let service = ServiceBuilder::new()
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_millis(millis),
        ))
        .service(next);
    let res = match service.oneshot(req).await {
        Ok(res) => res.map(Body::new),
        Err(never) => match never {},
    };
    let timed_out = res.status() == StatusCode::SERVICE_UNAVAILABLE
        && !res.headers().contains_key(header::CONTENT_TYPE);
    if timed_out {
        return AppError::unavailable(format!(
            "the request did not finish within the server's limit of {millis} ms"
        ))
        .into_response();
    }
    res
}
