//! `POST /graphql`: executes a request with the caller's context.

use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use crate::context::{Ctx, RequestMeta};
use crate::graphql::AppSchema;

/// Runs one GraphQL request (or batch). An error that asks the client to come back later sets
/// `Retry-After` and the status, so HTTP clients back off without reading the body: 429 when
/// rate limited; 503 when a backend is unavailable and nothing could be answered (partial data
/// keeps its 200).
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
