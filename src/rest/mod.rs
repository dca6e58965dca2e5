//! The REST surface under `/api/v1` and its OpenAPI 3.1 description.

pub mod streams;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorCode, ErrorEnvelope, FieldError};
use crate::http::health;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rampart API",
        description = "Security-scan platform: scanners send reports, Rampart keeps them, turns them into de-duplicated findings per target and serves them. Every REST route runs a GraphQL operation on the same schema served at /graphql.",
    ),
    paths(crate::http::index, health::live, health::ready, health::services, streams::ingest, streams::raw, crate::live::sse::events, crate::live::sse::event_token),
    components(schemas(ErrorEnvelope, ErrorCode, FieldError)),
    tags((name = "health", description = "Liveness, readiness and backend health"),
        (name = "scans", description = "Reports in, scans and their raw reports out")),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

/// The ways a client authenticates, offered by Swagger UI's "Authorize": a JWT as a bearer
/// token, an API key in `x-api-key`, or the session cookie `token`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer_auth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("A JWT access token: `Authorization: Bearer <token>`."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-api-key",
                "An API key, for scanners and scripts.",
            ))),
        );
        components.add_security_scheme(
            "cookie_auth",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "token",
                "The session cookie set at sign-in.",
            ))),
        );
    }
}

/// The OpenAPI document the server serves and `rampart export-schema` writes.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}
