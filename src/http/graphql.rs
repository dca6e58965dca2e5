//! `POST /graphql`: executes a request with the caller's context.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_graphql::http::MultipartOptions;
use async_graphql_axum::GraphQLResponse;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures::TryStreamExt;
use tokio_util::compat::TokioAsyncReadCompatExt;

use super::limits;
use crate::app::AppState;
use crate::auth::middleware::RejectedCredential;
use crate::context::{Ctx, RequestMeta};
use crate::error::{AppError, AppResult};
use crate::graphql::AppSchema;

/// Runs one GraphQL request (or batch). An error that asks the client to come back later sets
/// `Retry-After` and the status, so HTTP clients back off without reading the body: 429 when
/// rate limited; 503 when a backend is unavailable and nothing could be answered (partial data
/// keeps its 200).
pub async fn execute(
    State(schema): State<AppSchema>,
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    ctx: Option<Extension<Ctx>>,
    rejected: Option<Extension<RejectedCredential>>,
    request: Request,
) -> Response {
    let request = match read(&state, request).await {
        Ok(request) => request,
        Err(err) => return err.into_response(),
    };
    let operation =
        crate::metrics::operation_name(request.operation_name.as_deref(), &request.query);
    state.metrics.observe_operation(operation);
    tracing::Span::current().record("operation", operation.unwrap_or("anonymous"));
    let mut request = request.data(meta);
    if let Some(Extension(ctx)) = ctx {
        request = request.data(ctx);
    }
    let response = schema.execute(request).await;
    if let Some(Extension(RejectedCredential(reason))) = rejected {
        let needed_caller = response.errors.iter().any(|e| {
            e.extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .is_some_and(|c| *c == async_graphql::Value::from("UNAUTHENTICATED"))
        });
        if needed_caller {
            return AppError::unauthenticated(reason).into_response();
        }
    }
    let answered = response.data != async_graphql::Value::Null;
    let retry = response.errors.iter().find_map(|e| {
        let extensions = e.extensions.as_ref()?;
        let async_graphql::Value::Number(secs) = extensions.get("retryAfter")? else {
            return None;
        };
        let status = match extensions.get("statusCode") {
            Some(async_graphql::Value::Number(code)) => code
                .as_u64()
                .and_then(|code| StatusCode::from_u16(u16::try_from(code).ok()?).ok()),
            _ => None,
        };
        Some((
            status.unwrap_or(StatusCode::TOO_MANY_REQUESTS),
            secs.clone(),
        ))
    });
    let mut http = GraphQLResponse::from(response).into_response();
    if let Some((status, secs)) = retry {
        if status == StatusCode::TOO_MANY_REQUESTS || !answered {
            *http.status_mut() = status;
        }
        if let Ok(value) = secs.to_string().parse() {
            http.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    http
}

/// Reads a JSON or multipart GraphQL request from the (size-limited) body. async-graphql-axum's
/// own extractor would report a body cut off at the limit as a malformed request (400); this
/// says 413.
///
/// # Errors
/// 413 past the limit, 400 for a body that is not a GraphQL request.
async fn read(state: &AppState, req: Request) -> AppResult<async_graphql::Request> {
    let multipart = limits::is_multipart(req.headers());
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let cut_off = Arc::new(AtomicBool::new(false));
    let seen = cut_off.clone();
    let body = req.into_body().into_data_stream().map_err(move |err| {
        if limits::is_length_limit(&err) {
            seen.store(true, Ordering::Relaxed);
        }
        std::io::Error::other(err)
    });
    let reader = tokio_util::io::StreamReader::new(body).compat();
    let parsed =
        async_graphql::http::receive_body(content_type, reader, MultipartOptions::default()).await;
    let limit = if multipart {
        state.config.max_graphql_upload_bytes
    } else {
        state.config.max_body_bytes
    };
    match parsed {
        Ok(request) => Ok(request),
        Err(async_graphql::ParseRequestError::PayloadTooLarge) => Err(limits::too_large(limit)),
        Err(_) if cut_off.load(Ordering::Relaxed) => Err(limits::too_large(limit)),
        Err(err) => Err(AppError::bad_request(format!(
            "not a GraphQL request: {err}"
        ))),
    }
}
