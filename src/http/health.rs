//! Liveness, readiness and per-backend health, with real latencies.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::error::{AppError, ErrorEnvelope};

/// Why readiness fails when the schema is behind this binary.
const PENDING: &str = "migrations pending";

/// A check that takes longer than this counts as down: health must answer, never hang.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether a backend answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceStatus {
    Up,
    Down,
    /// Not configured in this deployment (e.g. Redis on the embedded default).
    Disabled,
}

/// One backend's health.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceHealth {
    pub status: ServiceStatus,
    /// Round-trip time of the check in milliseconds; absent when disabled.
    pub latency: Option<f64>,
    /// Which implementation serves it (`sqlite`, `postgres`, `local`, `s3`, `redis`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Why it is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Health of every backend this process depends on.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServicesHealth {
    pub database: ServiceHealth,
    pub redis: ServiceHealth,
    pub object_store: ServiceHealth,
    pub worker: WorkerHealth,
    /// The engines this process can run (triggered scans), with their versions.
    pub engines: Vec<crate::engines::EngineInfo>,
}

/// The background workers of every process on this database, and the queue they drain.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkerHealth {
    /// `up` while at least one worker process sends heartbeats; `down` when none does (queued
    /// reports then wait) or the queue cannot be read.
    pub status: ServiceStatus,
    /// Round-trip time of the check in milliseconds.
    pub latency: Option<f64>,
    /// Why it is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Processes running workers whose heartbeat is fresh.
    pub processes: u64,
    /// Workers across those processes.
    pub workers: i64,
    /// Jobs waiting for a worker.
    pub queued: u64,
    /// Jobs a worker holds now.
    pub running: u64,
    /// Seconds the longest-waiting job has been due; `null` when none is.
    pub oldest_queued_secs: Option<f64>,
}

fn unreadable_queue(latency: Option<f64>, why: &str) -> WorkerHealth {
    WorkerHealth {
        status: ServiceStatus::Down,
        latency,
        error: Some(format!("the queue cannot be read: {why}")),
        processes: 0,
        workers: 0,
        queued: 0,
        running: 0,
        oldest_queued_secs: None,
    }
}

async fn workers(db: &sea_orm::DatabaseConnection) -> WorkerHealth {
    let started = Instant::now();
    let census = tokio::time::timeout(CHECK_TIMEOUT, crate::ingest::fleet::census(db)).await;
    let latency = Some((started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0);
    let census = match census {
        Ok(Ok(census)) => census,
        Ok(Err(err)) => return unreadable_queue(latency, &AppError::from(err).public_message()),
        Err(_) => return unreadable_queue(latency, "timed out"),
    };
    let alive = census.processes > 0;
    WorkerHealth {
        status: if alive {
            ServiceStatus::Up
        } else {
            ServiceStatus::Down
        },
        latency,
        error: (!alive).then(|| "no worker process is sending heartbeats".to_string()),
        processes: census.processes,
        workers: census.workers,
        queued: census.queued,
        running: census.running,
        oldest_queued_secs: census.oldest_due.map(|due| {
            let waited = (chrono::Utc::now() - due).num_milliseconds().max(0);
            waited as f64 / 1000.0
        }),
    }
}

/// Liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    /// Always `ok` while the process serves requests.
    pub status: String,
    pub version: String,
}

/// Readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`.
    pub status: String,
    /// Each readiness condition and its state.
    pub checks: ReadinessChecks,
}

/// The conditions a process must meet before it takes traffic.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub struct ReadinessChecks {
    pub database: ServiceStatus,
    pub migrations: ServiceStatus,
    pub object_store: ServiceStatus,
}

async fn timed<F, E>(backend: &str, check: F) -> ServiceHealth
where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let started = Instant::now();
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, check).await;
    let latency = Some((started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0);
    let (status, error) = match outcome {
        Ok(Ok(())) => (ServiceStatus::Up, None),
        Ok(Err(err)) => (ServiceStatus::Down, Some(err.to_string())),
        Err(_) => (ServiceStatus::Down, Some("timed out".to_string())),
    };
    ServiceHealth {
        status,
        latency,
        backend: Some(backend.to_string()),
        error,
    }
}

fn disabled(reason: &str) -> ServiceHealth {
    ServiceHealth {
        status: ServiceStatus::Disabled,
        latency: None,
        backend: None,
        error: Some(reason.to_string()),
    }
}

/// Liveness: the process is up and serving.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "The process is alive", body = Liveness)))]
pub async fn live() -> Json<Liveness> {
    Json(Liveness {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// Readiness: the database is reachable with every migration applied, and the object store
/// accepts writes.
#[utoipa::path(get, path = "/ready", tag = "health", responses(
    (status = 200, description = "Ready for traffic", body = Readiness),
    (status = 503, description = "A dependency is not ready", body = ErrorEnvelope)))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let outcome = {
        // One round of checks at a time; callers meanwhile wait for it and share its answer.
        let mut last = state.readiness.0.lock().await;
        match &*last {
            Some((at, outcome)) if at.elapsed() < READY_REUSE => outcome.clone(),
            _ => {
                let outcome = check_readiness(&state).await;
                *last = Some((Instant::now(), outcome.clone()));
                outcome
            }
        }
    };
    match outcome {
        Ok(checks) => (
            StatusCode::OK,
            Json(Readiness {
                status: "ready".into(),
                checks,
            }),
        )
            .into_response(),
        Err(reason) => AppError::unavailable(reason).into_response(),
    }
}

/// How long a readiness answer is reused. `/ready` is anonymous and unthrottled (probes must
/// reach it), and its object-store check writes: a flood of calls costs at most one round of
/// checks per period.
const READY_REUSE: Duration = Duration::from_secs(2);

/// A round of readiness checks: what each check found, or why the process is not ready.
type ReadinessOutcome = Result<ReadinessChecks, String>;

/// The last readiness answer and when it was found.
#[derive(Clone, Default)]
pub struct ReadinessCache(Arc<tokio::sync::Mutex<Option<(Instant, ReadinessOutcome)>>>);

async fn check_readiness(state: &AppState) -> ReadinessOutcome {
    let db = state.db.clone();
    let (database, migrations, store) = tokio::join!(
        timed("", state.db.ping()),
        timed("", async move {
            match crate::db::migrations_current(&db).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(PENDING.to_string()),
                Err(e) => Err(format!("{e:#}")),
            }
        }),
        timed("", state.store.check()),
    );
    let failures: Vec<String> = [
        ("database", &database),
        ("migrations", &migrations),
        ("object store", &store),
    ]
    .iter()
    .filter(|(_, h)| h.status != ServiceStatus::Up)
    .map(|(name, h)| {
        // The cause (addresses, SDK words) goes to the log, the name to the client.
        tracing::warn!(
            check = name,
            error = h.error.as_deref().unwrap_or("down"),
            "not ready"
        );
        match (*name, h.error.as_deref()) {
            ("migrations", Some(PENDING)) => PENDING.to_string(),
            ("migrations", _) => "the migrations cannot be read".to_string(),
            _ => format!("the {name} is unavailable"),
        }
    })
    .collect();
    if !failures.is_empty() {
        return Err(format!("not ready: {}", failures.join("; ")));
    }
    Ok(ReadinessChecks {
        database: database.status,
        migrations: migrations.status,
        object_store: store.status,
    })
}

/// Health of each backend: `up` with its latency, `down` with the reason, or `disabled` when
/// this deployment does not use it.
#[utoipa::path(get, path = "/health/services", tag = "health",
    responses((status = 200, description = "Per-backend health", body = ServicesHealth)))]
pub async fn services(State(state): State<AppState>) -> Json<ServicesHealth> {
    let redis = async {
        if state.bus.kind() == "redis" {
            timed("redis", state.bus.check()).await
        } else {
            disabled("REDIS_URL is not set; events stay in this process")
        }
    };
    let engines = async {
        // Versions are read at start-up; a probe still running is not waited for past the
        // checks' bound.
        tokio::time::timeout(CHECK_TIMEOUT, state.engines.list())
            .await
            .unwrap_or_default()
    };
    let (database, redis, object_store, worker, engines) = tokio::join!(
        timed(crate::db::backend_name(&state.db), state.db.ping()),
        redis,
        timed(state.store.kind(), state.store.check()),
        workers(&state.db),
        engines,
    );
    Json(ServicesHealth {
        database,
        redis,
        object_store,
        worker,
        engines,
    })
}
