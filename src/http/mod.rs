//! Router assembly and the middleware every request passes through. Knows no domain.

mod errors;
mod graphql;
pub mod health;
pub mod request_id;

use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use serde::Serialize;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::graphql::AppSchema;

pub use request_id::RequestId;

/// What `GET /` answers: where everything is.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceIndex {
    pub name: String,
    pub version: String,
    /// `ok` while the process serves requests.
    pub status: String,
    /// The API description (OpenAPI 3.1).
    pub docs: String,
    /// The GraphQL endpoint.
    pub graphql: String,
    /// Liveness route.
    pub health: String,
}

/// Name, version and links to everything the server offers.
#[utoipa::path(get, path = "/", tag = "health",
    responses((status = 200, description = "Service index", body = ServiceIndex)))]
pub async fn index() -> Json<ServiceIndex> {
    Json(ServiceIndex {
        name: "rampart".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        status: "ok".into(),
        docs: "/openapi.json".into(),
        graphql: "/graphql".into(),
        health: "/health".into(),
    })
}

/// What the router's handlers can extract.
#[derive(Clone, FromRef)]
pub struct ServerState {
    pub app: AppState,
    pub schema: AppSchema,
}

/// The whole HTTP surface of one server process.
pub fn router(app: AppState, schema: AppSchema) -> Router {
    let openapi = crate::rest::openapi_document();
    let state = ServerState { app: app.clone(), schema };
    // Probes are neither authenticated nor rate limited.
    let probes = Router::new()
        .route("/health", get(health::live))
        .route("/ready", get(health::ready))
        .route("/health/services", get(health::services));
    let api = Router::new()
        .route("/", get(index))
        .route("/graphql", post(graphql::execute))
        .route(
            "/openapi.json",
            get({
                let doc = openapi.clone();
                move || async move { Json(doc) }
            }),
        )
        .route("/api/v1/openapi.json", get(move || async move { Json(openapi) }))
        .fallback(errors::unknown_path)
        .method_not_allowed_fallback(errors::unknown_method)
        .layer(middleware::from_fn_with_state(
            app,
            crate::auth::middleware::authenticate_and_limit,
        ));
    probes
        .merge(api)
        .layer(DefaultBodyLimit::max(2 * 1024 * 1024))
        .layer(CatchPanicLayer::custom(errors::panic_response))
        .layer(middleware::from_fn(errors::enforce_envelope))
        .layer(middleware::from_fn(request_id::assign))
        .with_state(state)
}
