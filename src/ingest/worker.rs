//! Background workers: claim a job, keep its lease alive while processing, record the outcome.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::{fleet, jobs, pipeline, sweep};
use crate::app::AppState;

/// How often an idle worker looks for jobs queued by other processes.
const POLL: Duration = Duration::from_millis(500);

/// This process's running workers and their heartbeat.
pub struct Workers {
    set: JoinSet<()>,
    heartbeat: fleet::Heartbeat,
}

impl Workers {
    /// Stops the workers once `state.shutdown` is cancelled: they claim nothing more, and a
    /// running job stops at its next step and is handed back to the queue, for another worker
    /// to resume at once. Past `grace` the rest are cut off (their jobs then wait for their
    /// leases to run out). Then the heartbeat is removed, so they stop counting at once.
    /// (Only dropping them stops them too; their heartbeat then goes stale.)
    pub async fn stop(mut self, db: &sea_orm::DatabaseConnection, grace: Duration) {
        if tokio::time::timeout(grace, self.set.join_next())
            .await
            .is_err()
        {
            tracing::warn!(
                ?grace,
                "running jobs did not stop in time; they are taken up again after their leases"
            );
        }
        self.set.shutdown().await;
        if let Err(err) = self.heartbeat.end(db).await {
            tracing::warn!(error = ?err, "could not remove the workers' heartbeat");
        }
    }
}

/// Starts `state.config.workers` workers, once this process's first heartbeat is recorded (so
/// a live worker is never missing from health), and keeps the heartbeat fresh beside them.
pub fn spawn(state: &AppState, wake: Arc<Notify>) -> Workers {
    let mut set = JoinSet::new();
    let process = uuid::Uuid::new_v4().simple().to_string();
    let heartbeat = fleet::Heartbeat::new(process.clone(), state.config.workers);
    let state = state.clone();
    let beating = heartbeat.clone();
    set.spawn(async move {
        if let Err(err) = beating.beat(&state.db).await {
            tracing::warn!(error = ?err, "recording the workers' heartbeat failed");
        }
        // Aborting this task drops the sets, which stops the workers.
        let mut workers = JoinSet::new();
        for n in 0..state.config.workers {
            let state = state.clone();
            let wake = wake.clone();
            let name = format!("{}-{n}", &process[..12]);
            workers.spawn(async move { work(state, wake, name).await });
        }
        let mut scheduler = JoinSet::new();
        if state.config.workers > 0 && state.config.store_sweep_interval_secs > 0 {
            scheduler
                .spawn(sweep::periodic(&state).schedule(state.db.clone(), state.jobs_wake.clone()));
        }
        if state.config.workers > 0 && state.config.reminder_interval_secs > 0 {
            scheduler.spawn(
                crate::findings::reminders::periodic(&state)
                    .schedule(state.db.clone(), state.jobs_wake.clone()),
            );
        }
        if state.config.workers > 0 {
            scheduler.spawn(crate::engines::schedules::run(state.clone()));
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep(fleet::HEARTBEAT_EVERY) => {}
                () = state.shutdown.cancelled() => break,
            }
            if let Err(err) = beating.beat(&state.db).await {
                tracing::warn!(error = ?err, "recording the workers' heartbeat failed");
            }
        }
        scheduler.abort_all();
        // Each worker returns once its job, if any, is handed back.
        while workers.join_next().await.is_some() {}
    });
    Workers { set, heartbeat }
}

async fn work(state: AppState, wake: Arc<Notify>, name: String) {
    let lease = chrono::Duration::seconds(state.config.job_lease_secs as i64);
    while !state.shutdown.is_cancelled() {
        let pause = match jobs::claim(&state.db, &name, lease).await {
            Ok(Some(job)) => {
                run_one(&state, job, &name, lease).await;
                continue;
            }
            Ok(None) => POLL,
            Err(err) => {
                tracing::warn!(error = ?err, "claiming a job failed");
                POLL * 4
            }
        };
        tokio::select! {
            _ = tokio::time::timeout(pause, wake.notified()) => {}
            () = state.shutdown.cancelled() => {}
        }
    }
}

/// Aborts a spawned task when dropped, so a lease's renewal never outlives its work.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn renewing(
    state: &AppState,
    lease: &jobs::Lease,
    length: chrono::Duration,
    stall: Duration,
) -> AbortOnDrop {
    let task = tokio::spawn(keep_renewed(state.db.clone(), lease.clone(), length, stall));
    AbortOnDrop(task.abort_handle())
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
    let stall = Duration::from_secs(state.config.job_stall_secs);
    if job.kind == jobs::SWEEP {
        let _renewal = renewing(state, &lease, length, stall);
        sweep::run_job(state, &job, &lease).await;
        return;
    }
    if job.kind == jobs::REMINDERS {
        let _renewal = renewing(state, &lease, length, stall);
        crate::findings::reminders::run_job(state, &job, &lease).await;
        return;
    }
    if job.kind == jobs::NOTIFICATION_EMAIL {
        let _renewal = renewing(state, &lease, length, stall);
        crate::notifications::email::run_job(state, &job, &lease).await;
        return;
    }
    if job.kind == jobs::WEBHOOK {
        let renewal = tokio::spawn(keep_renewed(state.db.clone(), lease.clone(), length, stall));
        crate::webhooks::deliver::run_job(state, &job, &lease).await;
        renewal.abort();
        return;
    }
    let Some(scan_id) = job.scan_id else {
        if let Err(err) = jobs::complete(&state.db, &lease).await {
            tracing::warn!(error = ?err, job = %job.id, "could not end a job without a scan");
        }
        return;
    };
    let span = tracing::info_span!(
        "job",
        job = %job.id,
        kind = %job.kind,
        org = ?job.org_id,
        scan = %scan_id,
        attempt = job.attempts,
        request_id = job.payload.get("request_id").and_then(|v| v.as_str()).unwrap_or(""),
    );
    let renewal = renewing(state, &lease, length, stall);
    let work = async {
        if job.kind == jobs::ENGINE {
            crate::engines::job::process(state, &job, &lease).await
        } else {
            pipeline::process(state, scan_id, &lease).await
        }
    }
    .instrument(span.clone());
    tokio::pin!(work);
    let outcome = tokio::select! {
        outcome = &mut work => outcome,
        () = state.shutdown.cancelled() => {
            // Stop writing first; then the job can be handed back.
            lease.hand_back();
            work.await
        }
    };
    drop(renewal);
    if lease.is_handed_back() && matches!(outcome, Err(pipeline::Failure::LeaseLost)) {
        match jobs::release(&state.db, &lease).await {
            Ok(()) => {
                tracing::info!(parent: &span, "shutting down: handed the job back to the queue")
            }
            Err(err) => {
                tracing::warn!(parent: &span, error = ?err, "could not hand the job back; it is taken up again after its lease")
            }
        }
        return;
    }
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
/// to be another claim's, no renewal got through before the lease ran out, or the work has not
/// got anywhere for `stall`, the lease is marked lost (and left to expire) and the work under
/// it stops at its next step (its writes are fenced anyway).
async fn keep_renewed(
    db: sea_orm::DatabaseConnection,
    lease: jobs::Lease,
    length: chrono::Duration,
    stall: Duration,
) {
    let length_std = length.to_std().unwrap_or(Duration::from_secs(30));
    let every = length_std / 3;
    let mut renewed_at = tokio::time::Instant::now();
    let (mut activity, mut active_at) = (lease.activity(), tokio::time::Instant::now());
    loop {
        tokio::time::sleep(every).await;
        if lease.activity() != activity {
            (activity, active_at) = (lease.activity(), tokio::time::Instant::now());
        } else if active_at.elapsed() >= stall {
            tracing::warn!(
                stalled_secs = active_at.elapsed().as_secs(),
                "the job's work is not progressing; giving up its lease"
            );
            lease.mark_lost();
            return;
        }
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
