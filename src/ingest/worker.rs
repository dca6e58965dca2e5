//! Background workers: claim a job, keep its lease alive while processing, record the outcome.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::{jobs, pipeline};
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

async fn run_one(state: &AppState, job: entity::job::Model, worker: &str, lease: chrono::Duration) {
    let Some(scan_id) = job.scan_id else {
        let _ = jobs::complete(&state.db, job.id).await;
        return;
    };
    let span = tracing::info_span!("job", job = %job.id, scan = %scan_id, attempt = job.attempts);
    // Renew the lease at a third of its length while the work goes on.
    let renewal = {
        let db = state.db.clone();
        let worker = worker.to_string();
        let id = job.id;
        tokio::spawn(async move {
            let every = (lease / 3).to_std().unwrap_or(Duration::from_secs(10));
            loop {
                tokio::time::sleep(every).await;
                match jobs::renew(&db, id, &worker, lease).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(err) => tracing::warn!(error = ?err, "lease renewal failed"),
                }
            }
        })
    };
    let outcome = pipeline::process(state, scan_id).instrument(span).await;
    renewal.abort();
    let recorded = match outcome {
        Ok(()) => jobs::complete(&state.db, job.id).await,
        Err(pipeline::Failure::Transient(reason)) => {
            tracing::warn!(%reason, "ingest attempt failed");
            match jobs::fail(&state.db, &job, &reason, chrono::Utc::now()).await {
                Ok(true) => {
                    if let Err(err) = pipeline::give_up(state, scan_id, &reason).await {
                        tracing::error!(?err, "could not mark the scan failed");
                    }
                    Ok(())
                }
                other => other.map(|_| ()),
            }
        }
        Err(other) => {
            tracing::error!(?other, "unexpected ingest outcome");
            jobs::complete(&state.db, job.id).await
        }
    };
    if let Err(err) = recorded {
        tracing::error!(error = ?err, "could not record the job's outcome; its lease will expire");
    }
}
