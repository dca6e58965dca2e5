//! `POST /graphql`: executes a request with the caller's context.

use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use crate::context::{Ctx, RequestMeta};
use crate::graphql::AppSchema;

/// Runs one GraphQL request (or batch). A rate-limited operation answers 429 with
/// `Retry-After`, so HTTP clients back off without reading the body.
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
    let retry_after = response
        .errors
        .iter()
        .find_map(|e| e.extensions.as_ref()?.get("retryAfter").cloned());
    let mut http = GraphQLResponse::from(response).into_response();
    if let Some(async_graphql::Value::Number(secs)) = retry_after {
        *http.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        if let Ok(value) = secs.to_string().parse() {
            http.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    http
}
