//! Background workers: claim a job, keep its lease alive while processing, record the outcome.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::{jobs, pipeline, sweep};
use crate::app::AppState;

/// How often an idle worker looks for jobs queued by other processes.
const POLL: Duration = Duration::from_millis(500);

/// Starts `state.config.workers` workers; they stop when the returned set is dropped.
pub fn spawn(state: &AppState, wake: Arc<Notify>) -> JoinSet<()> {
    let mut set = JoinSet::new();
    let process = uuid::Uuid::new_v4().simple().to_string();
    for n in 0..state.config.workers {
        let state = state.clone();
        let wake = wake.clone();
        let name = format!("{}-{n}", &process[..12]);
        set.spawn(async move { work(state, wake, name).await });
    }
    if state.config.workers > 0 && state.config.store_sweep_interval_secs > 0 {
        set.spawn(sweep::schedule(state.clone()));
    }
    set
}

async fn work(state: AppState, wake: Arc<Notify>, name: String) {
    let lease = chrono::Duration::seconds(state.config.job_lease_secs as i64);
    loop {
        match jobs::claim(&state.db, &name, lease).await {
            Ok(Some(job)) => run_one(&state, job, &name, lease).await,
            Ok(None) => {
                let _ = tokio::time::timeout(POLL, wake.notified()).await;
            }
            Err(err) => {
                tracing::warn!(error = ?err, "claiming a job failed");
                tokio::time::sleep(POLL * 4).await;
            }
        }
    }
}

/// Processes one claimed job under its lease and records the outcome, unless the lease was
/// lost meanwhile (then the job is another claim's, and nothing more is written).
pub async fn run_one(
    state: &AppState,
    job: entity::job::Model,
    worker: &str,
    length: chrono::Duration,
) {
    let lease = jobs::Lease::of(&job);
    debug_assert_eq!(lease.owner, worker);
    if job.kind == jobs::SWEEP {
        let renewal = tokio::spawn(keep_renewed(state.db.clone(), lease.clone(), length));
        sweep::run_job(state, &job, &lease).await;
        renewal.abort();
        return;
    }
    let Some(scan_id) = job.scan_id else {
        if let Err(err) = jobs::complete(&state.db, &lease).await {
            tracing::warn!(error = ?err, job = %job.id, "could not end a job without a scan");
        }
        return;
    };
    let span = tracing::info_span!("job", job = %job.id, scan = %scan_id, attempt = job.attempts);
    let renewal = tokio::spawn(keep_renewed(state.db.clone(), lease.clone(), length));
    let outcome = pipeline::process(state, scan_id, &lease)
        .instrument(span.clone())
        .await;
    renewal.abort();
    let recorded = match outcome {
        Ok(()) => jobs::complete(&state.db, &lease).await.map_err(Into::into),
        Err(pipeline::Failure::LeaseLost) => Err(pipeline::Failure::LeaseLost),
        Err(pipeline::Failure::Transient(reason)) => {
            tracing::warn!(parent: &span, %reason, "ingest attempt failed");
            let given_up = if jobs::exhausted(&job) {
                pipeline::give_up(state, scan_id, &lease, &reason).await
            } else {
                Ok(())
            };
            match given_up {
                Ok(()) => {
                    let retry_at = jobs::RetryPolicy::of(&state.config)
                        .next_run(job.attempts, chrono::Utc::now());
                    jobs::fail(&state.db, &job, &lease, &reason, retry_at)
                        .await
                        .map_err(Into::into)
                }
                Err(err) => Err(err),
            }
        }
        Err(other) => {
            tracing::error!(parent: &span, ?other, "unexpected ingest outcome");
            jobs::complete(&state.db, &lease).await.map_err(Into::into)
        }
    };
    match recorded {
        Ok(()) => {}
        Err(pipeline::Failure::LeaseLost) => {
            tracing::warn!(parent: &span, "the job's lease was lost to another worker; stopped");
        }
        Err(err) => {
            tracing::error!(parent: &span, error = ?err, "could not record the job's outcome; its lease will expire");
        }
    }
}

/// Renews the lease at a third of its length while the work goes on. When the job turns out
/// to be another claim's, or no renewal got through before the lease ran out, the lease is
/// marked lost and the work under it stops at its next step (its writes are fenced anyway).
async fn keep_renewed(
    db: sea_orm::DatabaseConnection,
    lease: jobs::Lease,
    length: chrono::Duration,
) {
    let length_std = length.to_std().unwrap_or(Duration::from_secs(30));
    let every = length_std / 3;
    let mut renewed_at = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(every).await;
        match tokio::time::timeout(every, jobs::renew(&db, &lease, length)).await {
            Ok(Ok(true)) => renewed_at = tokio::time::Instant::now(),
            Ok(Ok(false)) => {
                lease.mark_lost();
                return;
            }
            Ok(Err(err)) => tracing::warn!(error = ?err, "lease renewal failed"),
            Err(_) => tracing::warn!("lease renewal timed out"),
        }
        if renewed_at.elapsed() >= length_std {
            lease.mark_lost();
            return;
        }
    }
}
