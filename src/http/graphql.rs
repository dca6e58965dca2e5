//! `POST /graphql`: executes a request with the caller's context.

use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use crate::context::{Ctx, RequestMeta};
use crate::graphql::AppSchema;

/// Runs one GraphQL request (or batch). An error that asks the client to come back later (rate
/// limited: 429; a backend unavailable: 503) sets the status and `Retry-After`, so HTTP clients
/// back off without reading the body.
pub async fn execute(
    State(schema): State<AppSchema>,
    Extension(meta): Extension<RequestMeta>,
    ctx: Option<Extension<Ctx>>,
    request: GraphQLRequest,
) -> Response {
    let mut request = request.into_inner().data(meta);
    if let Some(Extension(ctx)) = ctx {
        request = request.data(ctx);
    }
    let response = schema.execute(request).await;
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
        *http.status_mut() = status;
        if let Ok(value) = secs.to_string().parse() {
            http.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    http
}
