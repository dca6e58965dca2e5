//! The REST surface under `/api/v1` and its OpenAPI 3.1 description, both generated from one
//! table of rows ([`routes::ROUTES`]), each running a GraphQL operation on the same schema as
//! `/graphql` through one generic translator ([`translate`]).
//!
//! At start-up the table is compiled once against the schema's SDL ([`compile`]): every
//! operation is parsed and checked there, so a malformed row stops the server from starting.

pub mod compile;
pub mod convert;
pub mod exports;
pub mod index;
pub mod openapi;
pub mod routes;
pub mod row;
pub mod select;
pub mod streams;
pub mod translate;

#[cfg(test)]
mod tests;

use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::extract::{RawPathParams, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Extension, Router};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::{Modify, OpenApi};

use self::compile::CompiledRoute;
use self::index::SchemaIndex;
use self::row::Method;
use crate::context::{Ctx, RequestMeta};
use crate::error::{ErrorCode, ErrorEnvelope, FieldError};
use crate::graphql::AppSchema;
use crate::http::{health, ServerState};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rampart API",
        description = "Security-scan platform: scanners send reports, Rampart keeps them, turns them into de-duplicated findings per target and serves them. Every REST route runs a GraphQL operation on the same schema served at /graphql.",
    ),
    paths(crate::http::index, health::live, health::ready, health::services, streams::ingest, crate::engines::rest::start_scan, streams::raw, crate::live::sse::events, crate::live::sse::event_token, crate::notifications::sse::events, exports::audit_events),
    components(schemas(ErrorEnvelope, ErrorCode, FieldError)),
    tags((name = "health", description = "Liveness, readiness and backend health")),
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

/// Tags of the table's routes, with what each groups.
const TAGS: &[(&str, &str)] = &[
    (
        "auth",
        "Sessions: sign in, refresh, sign out, who am I, switch org",
    ),
    (
        "account",
        "The signed-in person's own account: password, password reset, sessions",
    ),
    ("api-keys", "Machine credentials of the org"),
    ("users", "Members of the org (admins, signed in)"),
    (
        "invitations",
        "How people join an org: invite, accept or decline, sign up with a token",
    ),
    ("organizations", "The caller's organizations"),
    (
        "targets",
        "What is scanned (Kafka clusters are targets of kind kafka_cluster)",
    ),
    (
        "scans",
        "Reports in; scans, their findings, raw reports and live events out",
    ),
    (
        "engines",
        "Scanners Rampart runs itself (triggered scans): which, and whether installed",
    ),
    (
        "findings",
        "Distinct problems per target across scans; triage and comments",
    ),
    (
        "suppressions",
        "Rules that suppress known, accepted findings from counts, SLA and score",
    ),
    (
        "webhooks",
        "Signed HTTP callbacks on scan and finding events, with their delivery log (admins, signed in)",
    ),
    (
        "notifications",
        "My notifications (new findings on targets I follow, failed scans), their live stream, my preferences and the targets I follow (signed in)",
    ),
    (
        "trends",
        "Scores and open findings over time, per target and across the fleet",
    ),
    (
        "sla",
        "Service-level agreements: the org's days to fix per severity, due dates, compliance",
    ),
    (
        "insights",
        "Dashboard figures of the org's findings, or one target's",
    ),
    (
        "compliance",
        "Coverage of compliance frameworks (OWASP Top 10, CWE Top 25, PCI DSS, NIST SP 800-53, KafkaGuard tiers) by the findings",
    ),
    (
        "audit",
        "Who did what, when: the org's audit log and its export (admins)",
    ),
];

/// The compiled table and the document describing it.
pub struct RestApi {
    pub index: SchemaIndex,
    pub routes: Vec<Arc<CompiledRoute>>,
    pub openapi: utoipa::openapi::OpenApi,
}

impl RestApi {
    /// Compiles `rows` against a schema's SDL and describes them, with the hand-written routes
    /// (health, index) and the security schemes.
    ///
    /// # Errors
    /// The first malformed row.
    pub fn compile(sdl: &str, rows: &[row::Route]) -> Result<Self, String> {
        let index = SchemaIndex::from_sdl(sdl)?;
        let compiled = compile::compile_all(&index, rows)?;
        for row in rows {
            if !TAGS.iter().any(|(t, _)| *t == row.tag) {
                return Err(format!(
                    "REST row {} {}: tag {:?} is not in rest::TAGS",
                    row.method.as_str(),
                    row.path,
                    row.tag
                ));
            }
        }
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        openapi::describe(&mut doc, &index, &compiled);
        let (method, path) = streams::SCAN_ROW;
        let scan_row = compiled
            .iter()
            .find(|r| r.row.method == method && r.row.path == path)
            .ok_or_else(|| {
                format!(
                    "the REST table needs a {} {path} row: uploads answer with it",
                    method.as_str()
                )
            })?;
        openapi::describe_upload_answer(&mut doc, scan_row);
        let tags = doc.tags.get_or_insert_with(Vec::new);
        for (name, description) in TAGS {
            tags.push(
                TagBuilder::new()
                    .name(*name)
                    .description(Some(*description))
                    .build(),
            );
        }
        openapi::describe_headers(&mut doc);
        Ok(Self {
            index,
            routes: compiled.into_iter().map(Arc::new).collect(),
            openapi: doc,
        })
    }
}

impl RestApi {
    /// The compiled row for `method` and `path` (the path template, as in the table).
    pub fn route(&self, method: Method, path: &str) -> Option<&CompiledRoute> {
        self.routes
            .iter()
            .find(|r| r.row.method == method && r.row.path == path)
            .map(|r| r.as_ref())
    }
}

/// The table compiled against the server's schema, once per process (the schema's shape does
/// not depend on its state, so no database is needed).
///
/// # Errors
/// When a row is malformed: the server must not start.
pub fn api() -> anyhow::Result<&'static RestApi> {
    static API: OnceLock<Result<RestApi, String>> = OnceLock::new();
    API.get_or_init(|| RestApi::compile(&crate::graphql::build_schema(None).sdl(), routes::ROUTES))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// The OpenAPI document the server serves and `rampart export-schema` writes.
///
/// # Panics
/// When the REST table is malformed (start-up, and the unit tests, catch that first).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    match api() {
        Ok(api) => api.openapi.clone(),
        Err(err) => panic!("{err:#}"),
    }
}

fn filter(method: Method) -> MethodFilter {
    match method {
        Method::Get => MethodFilter::GET,
        Method::Post => MethodFilter::POST,
        Method::Put => MethodFilter::PUT,
        Method::Patch => MethodFilter::PATCH,
        Method::Delete => MethodFilter::DELETE,
    }
}

/// Serves one row (the axum side of [`translate::run`]).
#[allow(clippy::too_many_arguments)]
async fn serve(
    route: Arc<CompiledRoute>,
    index: &'static SchemaIndex,
    State(schema): State<AppSchema>,
    Extension(meta): Extension<RequestMeta>,
    ctx: Option<Extension<Ctx>>,
    params: RawPathParams,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path_params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let query: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let req = translate::RestRequest {
        path: uri.path(),
        path_params: &path_params,
        query: &query,
        headers: &headers,
        body: &body,
    };
    translate::run(&route, index, &schema, req, |r| {
        let r = r.data(meta);
        match ctx {
            Some(Extension(ctx)) => r.data(ctx),
            None => r,
        }
    })
    .await
}

/// Every row as an axum route; mount it behind the authentication middleware.
///
/// # Errors
/// When the table is malformed.
pub fn router() -> anyhow::Result<Router<ServerState>> {
    let api = api()?;
    let mut by_path: Vec<(&'static str, MethodRouter<ServerState>)> = Vec::new();
    for route in &api.routes {
        let path = route.row.path;
        let method = filter(route.row.method);
        let route = Arc::clone(route);
        let handler = move |schema, meta, ctx, params, uri, headers, body| {
            serve(
                route, &api.index, schema, meta, ctx, params, uri, headers, body,
            )
        };
        match by_path.iter_mut().find(|(p, _)| *p == path) {
            Some((_, existing)) => *existing = std::mem::take(existing).on(method, handler),
            None => by_path.push((path, on(method, handler))),
        }
    }
    Ok(by_path
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(path, methods)
        }))
}
