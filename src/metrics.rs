//! Prometheus metrics, served as text at `GET /metrics` (see `docs/operations.md` for the list).
//!
//! Each app has its own registry (tests run many apps in one process). Counters are counted
//! where things happen; the job queue and the database pool are read when scraped, so every
//! process of a deployment reports the same queue and its own pool.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use entity::job;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use sea_orm::{ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QuerySelect};

use crate::app::AppState;
use crate::error::{AppError, AppResult};

/// Distinct GraphQL operation names kept as labels; later names count as `other`, so clients
/// choosing names cannot grow the series without bound.
const MAX_OPERATION_NAMES: usize = 256;

/// This process's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    graphql_operations: IntCounterVec,
    operation_names: Mutex<HashSet<String>>,
    ingest_findings: IntCounter,
    ingest_bytes: IntCounter,
    ingest_scans: IntCounterVec,
    live_subscribers: IntGaugeVec,
    jobs: IntGaugeVec,
    job_age: GaugeVec,
    db_pool: IntGaugeVec,
}

fn registered<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    registry
        .register(Box::new(c.clone()))
        .expect("metric names are distinct");
    c
}

impl Default for Metrics {
    fn default() -> Self {
        let r = Registry::new_custom(Some("rampart".into()), None).expect("valid prefix");
        let counter = |name: &str, help: &str, labels: &[&str]| {
            registered(
                &r,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            registered(
                &r,
                IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let inner = Inner {
            http_requests: counter(
                "http_requests_total",
                "HTTP requests answered, by route template, method and status.",
                &["route", "method", "status"],
            ),
            http_duration: registered(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "http_request_duration_seconds",
                        "Time to answer an HTTP request (to its response head), by route template, method and status.",
                    )
                    .buckets(vec![
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0, 30.0,
                    ]),
                    &["route", "method", "status"],
                )
                .expect("valid metric"),
            ),
            graphql_operations: counter(
                "graphql_operations_total",
                "GraphQL operations executed over HTTP, by operation name (`anonymous` when unnamed).",
                &["operation"],
            ),
            operation_names: Mutex::default(),
            ingest_findings: registered(
                &r,
                IntCounter::new(
                    "ingest_findings_total",
                    "Findings of reports whose processing completed.",
                )
                .expect("valid metric"),
            ),
            ingest_bytes: registered(
                &r,
                IntCounter::new(
                    "ingest_bytes_total",
                    "Bytes of reports whose processing completed.",
                )
                .expect("valid metric"),
            ),
            ingest_scans: counter(
                "ingest_scans_total",
                "Reports processed by this process's workers, by outcome.",
                &["outcome"],
            ),
            live_subscribers: gauge(
                "live_subscribers",
                "Open live connections (GraphQL WebSockets, scan event streams), by transport.",
                &["transport"],
            ),
            jobs: gauge(
                "jobs",
                "Jobs in the queue (all processes), by kind and status.",
                &["kind", "status"],
            ),
            job_age: registered(
                &r,
                GaugeVec::new(
                    Opts::new(
                        "job_oldest_age_seconds",
                        "Seconds since the oldest job of a kind and status became due (0: none).",
                    ),
                    &["kind", "status"],
                )
                .expect("valid metric"),
            ),
            db_pool: gauge(
                "db_pool_connections",
                "This process's database connections: open, idle, in use, and the pool's maximum.",
                &["state"],
            ),
            registry: r,
        };
        for transport in ["websocket", "sse"] {
            inner.live_subscribers.with_label_values(&[transport]);
        }
        Self(Arc::new(inner))
    }
}

/// Keeps a live connection counted while it is held.
pub struct Subscribed {
    gauge: prometheus::IntGauge,
}

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [route, method, status.as_str()];
        self.0.http_requests.with_label_values(&labels).inc();
        self.0
            .http_duration
            .with_label_values(&labels)
            .observe(seconds);
    }

    /// Counts one GraphQL operation.
    pub fn observe_operation(&self, name: Option<&str>) {
        let name = name.unwrap_or("anonymous");
        let known = {
            let mut names = self.0.operation_names.lock().expect("names lock");
            names.contains(name)
                || (names.len() < MAX_OPERATION_NAMES && names.insert(name.to_string()))
        };
        let label = if known { name } else { "other" };
        self.0.graphql_operations.with_label_values(&[label]).inc();
    }

    /// Counts a report whose processing completed.
    pub fn observe_ingest(&self, findings: u64, bytes: u64) {
        self.0.ingest_findings.inc_by(findings);
        self.0.ingest_bytes.inc_by(bytes);
        self.0.ingest_scans.with_label_values(&["complete"]).inc();
    }

    /// Counts a report given up for good.
    pub fn observe_ingest_failure(&self) {
        self.0.ingest_scans.with_label_values(&["failed"]).inc();
    }

    /// Counts a live connection until the guard is dropped.
    pub fn subscribed(&self, transport: &str) -> Subscribed {
        let gauge = self.0.live_subscribers.with_label_values(&[transport]);
        gauge.inc();
        Subscribed { gauge }
    }

    /// The exposition text, with the queue and pool read now.
    ///
    /// # Errors
    /// When the job table cannot be read.
    pub async fn render(&self, db: &DatabaseConnection) -> AppResult<String> {
        self.read_queue(db).await?;
        self.read_pool(db);
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.0.registry.gather(), &mut out)
            .map_err(|e| anyhow::anyhow!("encoding metrics: {e}"))?;
        Ok(String::from_utf8(out).map_err(|e| anyhow::anyhow!("encoding metrics: {e}"))?)
    }

    async fn read_queue(&self, db: &DatabaseConnection) -> AppResult<()> {
        let rows: Vec<(String, String, i64, Option<DateTime<Utc>>)> = job::Entity::find()
            .select_only()
            .column(job::Column::Kind)
            .column(job::Column::Status)
            .column_as(job::Column::Id.count(), "n")
            .column_as(job::Column::RunAt.min(), "oldest")
            .filter(job::Column::Status.is_in(["queued", "running"]))
            .group_by(job::Column::Kind)
            .group_by(job::Column::Status)
            .into_tuple()
            .all(db)
            .await?;
        let now = Utc::now();
        self.0.jobs.reset();
        self.0.job_age.reset();
        for kind in [
            crate::ingest::jobs::INGEST,
            crate::ingest::jobs::SWEEP,
            crate::ingest::jobs::NOTIFICATION_EMAIL,
            crate::ingest::jobs::REMINDERS,
            crate::ingest::jobs::WEBHOOK,
            crate::ingest::jobs::ENGINE,
        ] {
            for status in ["queued", "running"] {
                self.0.jobs.with_label_values(&[kind, status]).set(0);
                self.0.job_age.with_label_values(&[kind, status]).set(0.0);
            }
        }
        for (kind, status, count, oldest) in rows {
            self.0
                .jobs
                .with_label_values(&[kind.as_str(), status.as_str()])
                .set(count);
            // A job waiting for its retry is not late yet.
            let age = oldest.map_or(0.0, |at| {
                ((now - at).num_milliseconds().max(0) as f64) / 1000.0
            });
            self.0
                .job_age
                .with_label_values(&[kind.as_str(), status.as_str()])
                .set(age);
        }
        Ok(())
    }

    fn read_pool(&self, db: &DatabaseConnection) {
        let (size, idle, max) = match db.get_database_backend() {
            DbBackend::Postgres => {
                let pool = db.get_postgres_connection_pool();
                (
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }
            DbBackend::Sqlite => {
                let pool = db.get_sqlite_connection_pool();
                (
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )
            }
            _ => return,
        };
        let idle = i64::try_from(idle).unwrap_or(i64::MAX);
        let gauge = |state: &str, value: i64| self.0.db_pool.with_label_values(&[state]).set(value);
        gauge("open", i64::from(size));
        gauge("idle", idle);
        gauge("in_use", (i64::from(size) - idle).max(0));
        gauge("max", i64::from(max));
    }
}

/// Middleware: counts and times every request by its route template (`/api/v1/scans/{id}`,
/// never the raw path, so ids do not become series); unrouted paths count as `unmatched`.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| route_label(p.as_str()));
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let res = next.run(req).await;
    state.metrics.observe_request(
        &route,
        &method,
        res.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    res
}

/// A route template as a label, in the usual `/scans/:id` spelling (`{*rest}` becomes
/// `*rest`): no braces inside label values, which some text-format readers mistake for the end
/// of the label set.
fn route_label(template: &str) -> String {
    template
        .replace("{*", "*")
        .replace('{', ":")
        .replace('}', "")
}

/// The name of the operation a GraphQL document runs: the one the request names, or the name
/// of a document's single leading operation (`query Name ...`); `None` when anonymous.
pub fn operation_name<'a>(named: Option<&'a str>, query: &'a str) -> Option<&'a str> {
    if let Some(name) = named {
        return Some(name);
    }
    let mut rest = query.trim_start();
    while let Some(comment) = rest.strip_prefix('#') {
        rest = comment
            .split_once('\n')
            .map_or("", |(_, after)| after)
            .trim_start();
    }
    let keyword = ["query", "mutation", "subscription"]
        .into_iter()
        .find(|k| rest.starts_with(k))?;
    let after = rest[keyword.len()..].trim_start();
    let end = after
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(after.len());
    (end > 0).then(|| &after[..end])
}

/// `GET /metrics` on the main address: only with the configured bearer token (without one
/// configured the route does not exist there).
pub async fn scrape_with_token(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(expected) = state.config.metrics_token.as_deref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !bearer_matches(&headers, expected) {
        return AppError::unauthenticated("GET /metrics needs the metrics token as a bearer token")
            .into_response();
    }
    scrape(State(state)).await
}

/// `GET /metrics` on the metrics address (`--metrics-bind`); the token, when configured, is
/// asked there too.
pub async fn scrape_on_metrics_address(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Response {
    if let Some(expected) = state.config.metrics_token.as_deref() {
        if !bearer_matches(&headers, expected) {
            return AppError::unauthenticated(
                "GET /metrics needs the metrics token as a bearer token",
            )
            .into_response();
        }
    }
    scrape(State(state)).await
}

async fn scrape(State(state): State<AppState>) -> Response {
    match state.metrics.render(&state.db).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(err) => err.into_response(),
    }
}

/// Compares in constant time, so the token cannot be guessed byte by byte from timings.
fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    use sha2::{Digest, Sha256};
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (Sha256::digest(given.trim()), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The router of the separate metrics address.
pub fn metrics_router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(scrape_on_metrics_address))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::operation_name;

    #[test]
    fn route_labels_have_no_braces() {
        assert_eq!(
            super::route_label("/api/v1/scans/{id}/raw"),
            "/api/v1/scans/:id/raw"
        );
        assert_eq!(super::route_label("/docs/{*rest}"), "/docs/*rest");
    }

    #[test]
    fn operation_names_come_from_the_request_or_the_document() {
        assert_eq!(
            operation_name(Some("Given"), "query Other { a }"),
            Some("Given")
        );
        assert_eq!(
            operation_name(None, "  query Scans($id: UUID!) { a }"),
            Some("Scans")
        );
        assert_eq!(
            operation_name(None, "# hi\nmutation Login{ a }"),
            Some("Login")
        );
        assert_eq!(
            operation_name(None, "subscription  Feed { a }"),
            Some("Feed")
        );
        assert_eq!(operation_name(None, "{ me { id } }"), None);
        assert_eq!(operation_name(None, "query { a }"), None);
        assert_eq!(operation_name(None, "query($x: Int) { a }"), None);
    }
}
