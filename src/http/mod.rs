//! Router assembly and the middleware every request passes through. Knows no domain.

pub mod cors;
mod errors;
mod graphql;
pub mod health;
pub mod limits;
pub mod playground;
pub mod request_id;
pub mod security;

use axum::extract::{DefaultBodyLimit, FromRef, Request, State};
use axum::handler::Handler;
use axum::http::header;
use axum::response::Response;
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
    /// The API reference (Swagger UI); the OpenAPI 3.1 document is at `/openapi.json`.
    pub docs: String,
    /// The GraphQL endpoint (`POST`); GraphiQL for browsers (`GET`).
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
        docs: "/docs".into(),
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

/// Swagger UI at `/docs/` (its files are embedded by utoipa-swagger-ui's `vendored` feature),
/// showing the document served at `/openapi.json`.
fn swagger_ui() -> utoipa_swagger_ui::SwaggerUi {
    let config = utoipa_swagger_ui::Config::from("/openapi.json")
        // The default asks validator.swagger.io about the document: nothing leaves the server.
        .validator_url("none")
        .persist_authorization(true)
        .try_it_out_enabled(true);
    utoipa_swagger_ui::SwaggerUi::new("/docs").config(config)
}

/// `GET /graphql`: a WebSocket upgrade is a GraphQL subscription connection (as on
/// `/graphql/ws`, where clients that do not look at `/graphql` first go); any other `GET` is a
/// browser asking for GraphiQL.
async fn graphql_get(State(state): State<ServerState>, req: Request) -> Response {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if upgrade {
        crate::live::ws::upgrade.call(req, state).await
    } else {
        playground::page.call(req, state).await
    }
}

fn app_role_serves_api(state: &ServerState) -> bool {
    state.app.config.role != crate::config::Role::Worker
}

/// The whole HTTP surface of one server process.
///
/// # Errors
/// When the REST table is malformed.
pub fn router(app: AppState, schema: AppSchema) -> anyhow::Result<Router> {
    let openapi = crate::rest::api()?.openapi.clone();
    let state = ServerState {
        app: app.clone(),
        schema,
    };
    // Probes are neither authenticated nor rate limited.
    let probes = Router::new()
        .route("/health", get(health::live))
        .route("/ready", get(health::ready))
        .route("/health/services", get(health::services))
        .route(playground::ASSETS_ROUTE, get(playground::asset))
        .route("/metrics", get(crate::metrics::scrape_with_token));
    let api = Router::new()
        .route("/", get(index))
        .route(
            playground::PATH,
            post(graphql::execute)
                .layer(middleware::from_fn_with_state(
                    app.clone(),
                    limits::limit_time,
                ))
                .get(graphql_get),
        )
        .route(
            "/openapi.json",
            get({
                let doc = openapi.clone();
                move || async move { Json(doc) }
            }),
        )
        .route(
            "/api/v1/openapi.json",
            get(move || async move { Json(openapi) }),
        )
        .route(
            crate::rest::streams::UPLOAD_PATH,
            post(crate::rest::streams::ingest).layer(DefaultBodyLimit::disable()),
        )
        .route(
            crate::engines::rest::START_PATH,
            post(crate::engines::rest::start_scan).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/scans/{id}/raw", get(crate::rest::streams::raw))
        .route(
            crate::rest::exports::AUDIT_EXPORT_PATH,
            get(crate::rest::exports::audit_events),
        )
        .route("/api/v1/scans/{id}/events", get(crate::live::sse::events))
        .route(
            "/api/v1/scans/{id}/event-token",
            post(crate::live::sse::event_token),
        )
        .route(
            "/api/v1/notifications/events",
            get(crate::notifications::sse::events),
        )
        .route("/graphql/ws", get(crate::live::ws::upgrade))
        .merge(swagger_ui())
        // The REST rows, authenticated like `/graphql`.
        .merge(crate::rest::router()?.layer(middleware::from_fn_with_state(
            app.clone(),
            limits::limit_time,
        )))
        .fallback(errors::unknown_path)
        .method_not_allowed_fallback(errors::unknown_method)
        // Inside authentication and rate limiting: a refused forgery is counted.
        .layer(middleware::from_fn_with_state(
            app.clone(),
            crate::auth::csrf::guard,
        ))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            crate::auth::middleware::authenticate_and_limit,
        ))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            security::secure_cookies,
        ))
        // Outside authentication: an oversized body is refused before anything else runs.
        .layer(middleware::from_fn_with_state(app, limits::limit_body));
    // A worker-only process answers its probes and nothing else.
    let api = if app_role_serves_api(&state) {
        api
    } else {
        Router::new()
    };
    let max_body = state.app.config.max_body_bytes;
    let cors = cors::layer(&state.app.config);
    let metrics = state.app.clone();
    Ok(security::with_headers(
        probes
            .merge(api)
            .layer(DefaultBodyLimit::max(max_body))
            .layer(CatchPanicLayer::custom(errors::panic_response))
            .layer(middleware::from_fn(errors::enforce_envelope))
            // Outside authentication: a preflight carries no credential.
            .layer(tower::util::option_layer(cors))
            .layer(middleware::from_fn_with_state(
                metrics,
                crate::metrics::track,
            ))
            .layer(middleware::from_fn(request_id::assign)),
    )
    .with_state(state))
}
