//! The `engine` job: prepare the source in a scratch directory, run the engine, store its
//! report as the scan's raw report, then ingest it like an upload (`ingest::pipeline`).
//!
//! Phases on `scanProgress`: `queued` → `preparing` → `scanning` → `ingesting` (then the
//! pipeline's `finalizing`) → `complete`. A failed run ends the scan `failed` with the last
//! lines of the engine's standard error. A cancelled scan's process group is killed within
//! the watch period (half a second), its scratch directory removed, and nothing is stored. A
//! worker that dies mid-run leaves the job to be claimed again after its lease, and the next
//! attempt starts from the beginning (the report is stored only once the run has ended).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use entity::scan;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use tokio_util::io::ReaderStream;
use tokio_util::sync::CancellationToken;

use super::process::{self, Ended, RunSpec};
use super::service::Payload;
use super::sources::SourceSpec;
use crate::app::AppState;
use crate::ingest::jobs::Lease;
use crate::ingest::pipeline::{self, Failure};
use crate::live::{self, ScanProgress};
use crate::scans::ScanStatus;

/// How often a running engine is checked for cancellation (and its lease kept fresh).
const WATCH_EVERY: Duration = Duration::from_millis(400);
/// How many lines of standard error a failure message keeps.
const STDERR_LINES: usize = 12;

/// Runs one engine job to the end: complete, failed or cancelled.
///
/// # Errors
/// As [`pipeline::process`]: [`Failure::Transient`] to retry, [`Failure::LeaseLost`] to stop.
pub async fn process(
    state: &AppState,
    job: &entity::job::Model,
    lease: &Lease,
) -> Result<(), Failure> {
    let Some(scan_id) = job.scan_id else {
        return Ok(());
    };
    let Some(row) = scan::Entity::find_by_id(scan_id).one(&state.db).await? else {
        return Ok(());
    };
    let payload: Payload = match serde_json::from_value(job.payload.clone()) {
        Ok(payload) => payload,
        Err(err) => {
            return end(
                state,
                &row,
                lease,
                ScanStatus::Failed,
                format!("the job is unreadable: {err}"),
                None,
            )
            .await;
        }
    };
    let outcome = if row.raw_key.is_some() {
        // The engine ran in an earlier attempt and its report is stored: only ingest is left.
        pipeline::process(state, scan_id, lease).await
    } else if ScanStatus::parse(&row.status).is_ok_and(ScanStatus::is_finished) {
        Ok(())
    } else {
        run(state, &row, lease, &payload).await
    };
    // A cancellation seen between steps has been recorded already.
    let outcome = match outcome {
        Err(Failure::Cancelled) => Ok(()),
        other => other,
    };
    // Done, or about to be given up (the worker fails the scan): the archive is not needed.
    let last_attempt =
        matches!(outcome, Err(Failure::Transient(_))) && crate::ingest::jobs::exhausted(job);
    if outcome.is_ok() || last_attempt {
        remove_source(state, &payload.source).await;
    }
    outcome
}

async fn run(
    state: &AppState,
    row: &scan::Model,
    lease: &Lease,
    payload: &Payload,
) -> Result<(), Failure> {
    let Some(engine) = super::by_name(&payload.engine) else {
        let message = format!("unknown engine {:?}", payload.engine);
        return end(state, row, lease, ScanStatus::Failed, message, None).await;
    };
    let program = match state.engines.get(engine.name()).await {
        Some((_, Some(program))) => program,
        Some((info, None)) => {
            let message = format!(
                "{} is not available on this worker: {}",
                engine.name(),
                info.error.unwrap_or_default()
            );
            return end(state, row, lease, ScanStatus::Failed, message, None).await;
        }
        None => {
            let message = format!("{} has no entry in the registry", engine.name());
            return end(state, row, lease, ScanStatus::Failed, message, None).await;
        }
    };
    progress(state, row, lease, "preparing", 0.0, true).await?;
    let scratch = Scratch::create(&state.config.engine_scratch(), row.id, lease.token)
        .map_err(|e| Failure::Transient(format!("scratch directory: {e}")))?;
    let src = scratch.path.join("src");
    let prepared = super::prepare::prepare(state, &payload.source, &src, lease).await;
    match prepared {
        Ok(()) => {}
        Err(super::prepare::Prepared::Rejected(message)) => {
            return end(state, row, lease, ScanStatus::Failed, message, None).await;
        }
        Err(super::prepare::Prepared::Failed(failure)) => return Err(failure),
    }
    should_go_on(state, row, lease).await?;

    // At most `engine_concurrency` runs at once in this process; waiting counts as queued work.
    let _permit = state
        .engines
        .permit()
        .await
        .map_err(|_| Failure::Transient("the engine semaphore is closed".into()))?;
    progress(state, row, lease, "scanning", 10.0, false).await?;
    for (name, contents) in engine.files() {
        std::fs::write(scratch.path.join(name), contents)
            .map_err(|e| Failure::Transient(format!("writing {name}: {e}")))?;
    }
    let home = scratch.path.join("home");
    std::fs::create_dir_all(&home)
        .and_then(|()| std::fs::create_dir_all(scratch.path.join("out")))
        .map_err(|e| Failure::Transient(format!("scratch directory: {e}")))?;
    let invocation = super::Invocation {
        assets: Path::new(".."),
    };
    let stdout = scratch.path.join("stdout");
    let report = match engine.report_file() {
        Some(file) => scratch.path.join(file),
        None => stdout.clone(),
    };
    let mut env = process::base_env(&program, &home);
    env.extend(
        engine
            .env()
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v))),
    );
    let config = &state.config;
    let spec = RunSpec {
        program: program.clone(),
        args: engine.scan_args(&invocation),
        cwd: src.clone(),
        env,
        stdout,
        report: report.clone(),
        max_output: config.engine_max_output_bytes,
        timeout: Duration::from_secs(config.engine_timeout_secs.max(1)),
        memory_limit: (config.engine_memory_mb > 0).then(|| config.engine_memory_mb * 1024 * 1024),
    };
    let finished = watched(state, row, lease, |stop| process::run(spec, stop)).await?;
    let finished =
        finished.map_err(|e| Failure::Transient(format!("starting {}: {e}", engine.name())))?;
    let tail = process::last_lines(&finished.stderr, STDERR_LINES);
    let failed = |what: String| {
        if tail.is_empty() {
            what
        } else {
            format!("{what}; its last lines:\n{tail}")
        }
    };
    let message = match finished.ended {
        Ended::Exited {
            code: Some(code), ..
        } if engine.succeeded(code) => None,
        Ended::Exited {
            code: Some(code), ..
        } => Some(failed(format!(
            "{} exited with status {code}",
            engine.name()
        ))),
        Ended::Exited { signal, .. } => Some(failed(format!(
            "{} was killed by signal {}",
            engine.name(),
            signal.unwrap_or(0)
        ))),
        Ended::TimedOut => Some(failed(format!(
            "{} ran longer than {} s and was stopped",
            engine.name(),
            config.engine_timeout_secs
        ))),
        Ended::OutputTooLarge => Some(failed(format!(
            "{} wrote more than {} bytes and was stopped",
            engine.name(),
            config.engine_max_output_bytes
        ))),
        Ended::Cancelled => {
            if lease.is_lost() {
                return Err(Failure::LeaseLost);
            }
            drop(scratch);
            return end(
                state,
                row,
                lease,
                ScanStatus::Cancelled,
                "cancelled".into(),
                None,
            )
            .await;
        }
    };
    if let Some(message) = message {
        drop(scratch);
        state.metrics.observe_ingest_failure();
        return end(
            state,
            row,
            lease,
            ScanStatus::Failed,
            message,
            Some(&finished.stderr),
        )
        .await;
    }
    let size = std::fs::metadata(&report).map_or(0, |m| m.len());
    if size == 0 {
        drop(scratch);
        let message = failed(format!("{} wrote no report", engine.name()));
        return end(state, row, lease, ScanStatus::Failed, message, None).await;
    }
    should_go_on(state, row, lease).await?;
    progress(state, row, lease, "ingesting", 50.0, false).await?;
    store_report(state, row, lease, &report).await?;
    drop(scratch);
    pipeline::process(state, row.id, lease).await
}

/// Runs `work` with a stop token that fires when the scan is cancelled, the lease is lost or
/// this process shuts down; meanwhile the lease is told the work is alive.
async fn watched<F, Fut, T>(
    state: &AppState,
    row: &scan::Model,
    lease: &Lease,
    work: F,
) -> Result<T, Failure>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let stop = CancellationToken::new();
    let running = work(stop.clone());
    tokio::pin!(running);
    let mut tick = tokio::time::interval(WATCH_EVERY);
    loop {
        tokio::select! {
            done = &mut running => return Ok(done),
            _ = tick.tick(), if !stop.is_cancelled() => {
                lease.touch();
                if lease.is_lost() || cancelled(state, row).await {
                    stop.cancel();
                }
            }
        }
    }
}

async fn cancelled(state: &AppState, row: &scan::Model) -> bool {
    let status: Result<Option<String>, _> = scan::Entity::find_by_id(row.id)
        .select_only()
        .column(scan::Column::Status)
        .into_tuple()
        .one(&state.db)
        .await;
    matches!(status, Ok(Some(s)) if s == ScanStatus::Cancelled.as_str())
}

async fn should_go_on(state: &AppState, row: &scan::Model, lease: &Lease) -> Result<(), Failure> {
    if lease.is_lost() {
        return Err(Failure::LeaseLost);
    }
    if cancelled(state, row).await {
        return end(
            state,
            row,
            lease,
            ScanStatus::Cancelled,
            "cancelled".into(),
            None,
        )
        .await
        .and(Err(Failure::Cancelled));
    }
    Ok(())
}

/// Records a phase (and, the first time, that the scan runs), fenced by the lease.
async fn progress(
    state: &AppState,
    row: &scan::Model,
    lease: &Lease,
    phase: &str,
    percent: f64,
    starting: bool,
) -> Result<(), Failure> {
    let mut progress = ScanProgress::new(row.id, row.target_id, ScanStatus::Running, phase);
    progress.percent = percent;
    let txn = crate::db::begin_write(&state.db).await?;
    lease.fence(&txn).await?;
    let mut update = scan::Entity::update_many()
        .col_expr(
            scan::Column::Status,
            Expr::value(ScanStatus::Running.as_str()),
        )
        .filter(
            scan::Column::Status.is_in([ScanStatus::Queued.as_str(), ScanStatus::Running.as_str()]),
        );
    if starting {
        update = update.col_expr(scan::Column::StartedAt, Expr::value(Some(Utc::now())));
    }
    let stored = live::store_progress(&txn, update, &mut progress).await?;
    txn.commit().await?;
    if stored {
        live::publish(state.bus.as_ref(), row.org_id, &progress).await;
    }
    Ok(())
}

/// Stores the engine's report as the scan's raw report.
async fn store_report(
    state: &AppState,
    row: &scan::Model,
    lease: &Lease,
    report: &Path,
) -> Result<(), Failure> {
    let key = format!("reports/{}/{}", row.org_id, row.id.simple());
    let file = tokio::fs::File::open(report)
        .await
        .map_err(|e| Failure::Transient(format!("reading the report: {e}")))?;
    let body: crate::store::ByteStream = Box::pin(ReaderStream::with_capacity(file, 64 * 1024));
    let receipt = crate::store::put_hashed(state.store.as_ref(), &key, body)
        .await
        .map_err(|e| Failure::Transient(format!("storing the report: {e}")))?;
    let txn = crate::db::begin_write(&state.db).await?;
    lease.fence(&txn).await?;
    let updated = scan::Entity::update_many()
        .col_expr(scan::Column::RawKey, Expr::value(Some(key.clone())))
        .col_expr(scan::Column::RawSha256, Expr::value(Some(receipt.sha256)))
        .col_expr(
            scan::Column::RawSize,
            Expr::value(Some(receipt.size as i64)),
        )
        .filter(scan::Column::Id.eq(row.id))
        .filter(scan::Column::Status.eq(ScanStatus::Running.as_str()))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    if updated.rows_affected == 0 {
        // Cancelled meanwhile: nothing is kept.
        if let Err(err) = state.store.delete(&key).await {
            tracing::warn!(%key, %err, "could not remove the report of a cancelled scan");
        }
        end(
            state,
            row,
            lease,
            ScanStatus::Cancelled,
            "cancelled".into(),
            None,
        )
        .await?;
        return Err(Failure::Cancelled);
    }
    Ok(())
}

/// Ends the scan without a report (failed or cancelled).
async fn end(
    state: &AppState,
    row: &scan::Model,
    lease: &Lease,
    status: ScanStatus,
    message: String,
    stderr: Option<&str>,
) -> Result<(), Failure> {
    if let Some(stderr) = stderr {
        tracing::warn!(scan = %row.id, %message, stderr = %process::last_lines(stderr, 40), "engine run failed");
    }
    pipeline::finish(state, row, lease, status, Some(message)).await
}

async fn remove_source(state: &AppState, source: &SourceSpec) {
    if let SourceSpec::Archive { key, .. } = source {
        if let Err(err) = state.store.delete(key).await {
            tracing::warn!(%key, %err, "could not remove a scan's source archive");
        }
    }
}

/// A run's scratch directory (`<scratch>/<scan>-<attempt>`), removed when dropped.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn create(root: &Path, scan: uuid::Uuid, attempt: i32) -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)?;
        let path = root.join(format!("{}-{attempt}", scan.simple()));
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(Self { path })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(path = %self.path.display(), %err, "could not remove a scratch directory");
        }
    }
}
