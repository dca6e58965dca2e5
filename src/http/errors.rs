//! Every error answer is the contract's JSON envelope, including the ones produced below our
//! handlers (unknown paths, wrong methods, extractor and body-limit rejections, panics).

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{AppError, ErrorCode, ErrorEnvelope};

/// Fallback for paths no route matches.
pub async fn unknown_path(method: Method, uri: Uri) -> AppError {
    AppError::Client {
        code: ErrorCode::NotFound,
        message: format!("no route for {method} {}", uri.path()),
        details: Vec::new(),
    }
}

/// Fallback for a known path with a method it does not serve.
pub async fn unknown_method() -> AppError {
    AppError::method_not_allowed()
}

/// Rewrites any error response that is not already JSON into the envelope, keeping the status
/// and, when it is short plain text, the original message.
pub async fn enforce_envelope(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        // GraphQL answers (`application/graphql-response+json`) carry their errors already.
        .is_some_and(|v| {
            v.starts_with("application/json") || v.starts_with("application/graphql-response+json")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let (parts, body) = res.into_parts();
    let code = ErrorCode::from_status(status);
    let text = to_bytes(body, 2048)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .filter(|t| !t.trim().is_empty() && code != ErrorCode::Internal);
    let envelope = ErrorEnvelope {
        error: text.unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_lowercase()),
        status_code: status.as_u16(),
        code,
        details: None,
    };
    let mut rebuilt = (status, axum::Json(envelope)).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rebuilt.headers_mut().append(name.clone(), value.clone());
        }
    }
    rebuilt
}

/// Turns a panic into a masked 500 (the envelope middleware then shapes it).
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    tracing::error!("handler panicked");
    AppError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}
