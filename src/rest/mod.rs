//! The REST surface under `/api/v1` and its OpenAPI 3.1 description.

use utoipa::OpenApi;

use crate::error::{ErrorCode, ErrorEnvelope, FieldError};
use crate::http::health;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rampart API",
        description = "Security-scan platform: scanners send reports, Rampart keeps them, turns them into de-duplicated findings per target and serves them. Every REST route runs a GraphQL operation on the same schema served at /graphql.",
    ),
    paths(crate::http::index, health::live, health::ready, health::services),
    components(schemas(ErrorEnvelope, ErrorCode, FieldError)),
    tags((name = "health", description = "Liveness, readiness and backend health"))
)]
struct ApiDoc;

/// The OpenAPI document the server serves and `rampart export-schema` writes.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}
