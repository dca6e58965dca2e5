//! The durable work queue: `job` rows claimed under a lease. PostgreSQL claims with
//! `FOR UPDATE SKIP LOCKED`, so any number of workers in any number of processes share it;
//! SQLite has one writer at a time, so its single atomic `UPDATE ... RETURNING` is the claim.
//!
//! A worker that lost its lease (it stalled past the lease, and another worker claimed the job)
//! may still be running. Every claim increments `attempts`, so (job, owner, attempts) names one
//! claim and no later one: it is the fencing token of a [`Lease`], and every write a job makes
//! checks it inside the write's own transaction ([`Lease::fence`]), so a stale worker's writes
//! fail instead of undoing the work of the worker that holds the job now.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use entity::job;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, FromQueryResult, QueryFilter, Set, Statement,
};
use uuid::Uuid;

use crate::error::AppResult;

pub const INGEST: &str = "ingest";
/// Removes stored objects no scan refers to (see `ingest::sweep`); one job per period.
pub const SWEEP: &str = "sweep";
/// Sends one webhook delivery (see `webhooks::deliver`).
pub const WEBHOOK: &str = "webhook";
/// Mails one notification (see `notifications::email`).
pub const NOTIFICATION_EMAIL: &str = "notification_email";
/// Periodic reminders (accepted risks about to lapse), one per period.
pub const REMINDERS: &str = "reminders";
/// Runs an engine on a source, then ingests its report (see `engines::job`).
pub const ENGINE: &str = "engine";

/// One claim of a job: who holds it, and the claim's fencing token.
#[derive(Clone, Debug)]
pub struct Lease {
    pub job_id: Uuid,
    pub owner: String,
    /// The job's `attempts` as this claim set it; a later claim has a larger one.
    pub token: i32,
    /// Set when renewing failed: the job may be another worker's by now, so work stops.
    lost: Arc<AtomicBool>,
    /// Bumped by the work whenever it gets somewhere; renewal stops when it stands still.
    activity: Arc<AtomicU64>,
    /// Set when this process shuts down: the work stops (as when the lease is lost), then the
    /// job is handed back to the queue ([`release`]).
    handing_back: Arc<AtomicBool>,
}

/// A write was refused because the job is no longer this lease's.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("the job's lease was lost to another worker")]
    Lost,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Holds the job row for the rest of the transaction, if it is still this claim's. PostgreSQL:
/// `FOR SHARE` makes a competing claim (`FOR UPDATE SKIP LOCKED`, then `UPDATE`) skip or wait
/// until the caller commits; SQLite: the caller's write transaction already excludes every
/// other writer.
const FENCE_POSTGRES: &str = r#"SELECT 1 FROM "job" WHERE "id" = $1 AND "lease_owner" = $2
    AND "attempts" = $3 AND "status" = 'running' FOR SHARE"#;
const FENCE_SQLITE: &str = r#"SELECT 1 FROM "job" WHERE "id" = ? AND "lease_owner" = ?
    AND "attempts" = ? AND "status" = 'running'"#;

impl Lease {
    /// The lease of a job as [`claim`] returned it.
    pub fn of(job: &job::Model) -> Self {
        Self {
            job_id: job.id,
            owner: job.lease_owner.clone().unwrap_or_default(),
            token: job.attempts,
            lost: Arc::default(),
            activity: Arc::default(),
            handing_back: Arc::default(),
        }
    }

    /// Asks the work under the lease to stop at its next step, writing nothing more, so the
    /// job can be handed back ([`release`]) once it has.
    pub fn hand_back(&self) {
        self.handing_back.store(true, Ordering::SeqCst);
        self.mark_lost();
    }

    /// Whether [`Self::hand_back`] was asked.
    pub fn is_handed_back(&self) -> bool {
        self.handing_back.load(Ordering::SeqCst)
    }

    /// Records that the work under the lease got somewhere (bytes read, rows written).
    pub fn touch(&self) {
        self.activity.fetch_add(1, Ordering::Relaxed);
    }

    /// A count that grows while the work gets somewhere.
    pub fn activity(&self) -> u64 {
        self.activity.load(Ordering::Relaxed)
    }

    /// Whether the worker must stop: the lease could not be renewed.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    pub fn mark_lost(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }

    /// Checks, inside the caller's write transaction and before its writes, that the job is
    /// still this claim's, and keeps it so until the transaction ends.
    ///
    /// # Errors
    /// [`LeaseError::Lost`] when another claim took the job (or it ended); the caller must roll
    /// back and stop.
    pub async fn fence(&self, txn: &impl ConnectionTrait) -> Result<(), LeaseError> {
        let backend = txn.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => FENCE_POSTGRES,
            _ => FENCE_SQLITE,
        };
        let held = txn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [
                    self.job_id.into(),
                    self.owner.clone().into(),
                    self.token.into(),
                ],
            ))
            .await?;
        match held {
            Some(_) => Ok(()),
            None => {
                self.mark_lost();
                Err(LeaseError::Lost)
            }
        }
    }

    /// The same check on a raw PostgreSQL transaction (the bulk writer's).
    ///
    /// # Errors
    /// As [`Self::fence`].
    pub async fn fence_postgres(
        &self,
        txn: &mut sea_orm::sqlx::PgConnection,
    ) -> Result<(), LeaseError> {
        let held = sea_orm::sqlx::query(FENCE_POSTGRES)
            .bind(self.job_id)
            .bind(&self.owner)
            .bind(self.token)
            .fetch_optional(txn)
            .await
            .map_err(|e| DbErr::Custom(format!("lease check: {e}")))?;
        match held {
            Some(_) => Ok(()),
            None => {
                self.mark_lost();
                Err(LeaseError::Lost)
            }
        }
    }
}

/// Queues a job (inside the caller's transaction, so a scan and its job appear together).
/// `request_id` names the request that asked for it, for the job's traces.
///
/// # Errors
/// Only on database failure.
pub async fn enqueue(
    db: &impl ConnectionTrait,
    kind: &str,
    org_id: Uuid,
    scan_id: Uuid,
    max_attempts: i32,
    request_id: &str,
) -> AppResult<job::Model> {
    let payload = serde_json::json!({ "request_id": request_id });
    enqueue_with(db, kind, org_id, scan_id, max_attempts, payload).await
}

/// Queues a job with a payload of its own (which should carry `request_id`).
///
/// # Errors
/// Only on database failure.
pub async fn enqueue_with(
    db: &impl ConnectionTrait,
    kind: &str,
    org_id: Uuid,
    scan_id: Uuid,
    max_attempts: i32,
    payload: serde_json::Value,
) -> AppResult<job::Model> {
    let now = Utc::now();
    Ok(job::ActiveModel {
        id: Set(Uuid::now_v7()),
        kind: Set(kind.into()),
        org_id: Set(Some(org_id)),
        scan_id: Set(Some(scan_id)),
        payload: Set(payload),
        status: Set("queued".into()),
        attempts: Set(0),
        max_attempts: Set(max_attempts),
        run_at: Set(now),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?)
}

/// Takes the next due job, or one whose worker's lease ran out.
///
/// # Errors
/// Only on database failure.
pub async fn claim(
    db: &DatabaseConnection,
    worker: &str,
    lease: Duration,
) -> AppResult<Option<job::Model>> {
    let now = Utc::now();
    let until = now + lease;
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            r#"UPDATE "job" SET "status" = 'running', "lease_owner" = $1, "lease_expires_at" = $2,
                   "attempts" = "attempts" + 1, "updated_at" = $3
               WHERE "id" = (
                   SELECT "id" FROM "job"
                   WHERE ("status" = 'queued' AND "run_at" <= $3)
                      OR ("status" = 'running' AND "lease_expires_at" < $3)
                   ORDER BY "run_at" LIMIT 1
                   FOR UPDATE SKIP LOCKED)
               RETURNING *"#
        }
        _ => {
            r#"UPDATE "job" SET "status" = 'running', "lease_owner" = ?, "lease_expires_at" = ?,
                   "attempts" = "attempts" + 1, "updated_at" = ?
               WHERE "id" = (
                   SELECT "id" FROM "job"
                   WHERE ("status" = 'queued' AND "run_at" <= ?)
                      OR ("status" = 'running' AND "lease_expires_at" < ?)
                   ORDER BY "run_at" LIMIT 1)
               RETURNING *"#
        }
    };
    let values: Vec<sea_orm::Value> = match backend {
        DbBackend::Postgres => vec![worker.into(), until.into(), now.into()],
        _ => vec![
            worker.into(),
            until.into(),
            now.into(),
            now.into(),
            now.into(),
        ],
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(match row {
        Some(row) => Some(job::Model::from_query_result(&row, "")?),
        None => None,
    })
}

/// Extends the lease; false when the job is no longer this worker's.
///
/// # Errors
/// Only on database failure.
pub async fn renew(db: &DatabaseConnection, lease: &Lease, length: Duration) -> AppResult<bool> {
    let res = held(job::Entity::update_many(), lease)
        .col_expr(
            job::Column::LeaseExpiresAt,
            Expr::value(Some(Utc::now() + length)),
        )
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// An update of the job row that matches only while `lease` holds it: the fencing token is
/// checked in the update's own statement.
fn held(
    update: sea_orm::UpdateMany<job::Entity>,
    lease: &Lease,
) -> sea_orm::UpdateMany<job::Entity> {
    update
        .filter(job::Column::Id.eq(lease.job_id))
        .filter(job::Column::LeaseOwner.eq(lease.owner.as_str()))
        .filter(job::Column::Attempts.eq(lease.token))
        .filter(job::Column::Status.eq("running"))
}

/// Marks a job done, if `lease` still holds it.
///
/// # Errors
/// [`LeaseError::Lost`] when it does not (nothing is written).
pub async fn complete(db: &impl ConnectionTrait, lease: &Lease) -> Result<(), LeaseError> {
    let res = held(job::Entity::update_many(), lease)
        .col_expr(job::Column::Status, Expr::value("done"))
        .col_expr(job::Column::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(job::Column::UpdatedAt, Expr::value(Utc::now()))
        .exec(db)
        .await?;
    if res.rows_affected == 1 {
        Ok(())
    } else {
        lease.mark_lost();
        Err(LeaseError::Lost)
    }
}

/// Hands a job back to the queue, due now, if `lease` still holds it: a process shutting down
/// does this once the work under the lease has stopped, so another worker resumes the job at
/// once instead of after the lease. The attempt still counts (`attempts` is the fencing token).
///
/// # Errors
/// [`LeaseError::Lost`] when the lease no longer holds the job (nothing is written).
pub async fn release(db: &impl ConnectionTrait, lease: &Lease) -> Result<(), LeaseError> {
    let now = Utc::now();
    let res = held(job::Entity::update_many(), lease)
        .col_expr(job::Column::Status, Expr::value("queued"))
        .col_expr(job::Column::RunAt, Expr::value(now))
        .col_expr(job::Column::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(
            job::Column::LeaseExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .exec(db)
        .await?;
    if res.rows_affected == 1 {
        Ok(())
    } else {
        Err(LeaseError::Lost)
    }
}

/// When a failed job is tried again. Delays double from `base` up to `max_delay`, and each is
/// drawn at random from the upper half of its bound ("equal jitter"): jobs that failed together
/// (one outage) come back spread out, and the retries of one job still span a known minimum
/// window, minutes by default, so an outage or a restart of a backend does not use them all up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The policy the configuration names.
    pub fn of(config: &crate::config::Config) -> Self {
        Self {
            base: Duration::seconds(config.job_retry_base_secs.max(1) as i64),
            max_delay: Duration::seconds(config.job_retry_max_delay_secs.max(1) as i64),
        }
    }

    /// Upper bound of the delay after the `attempts`-th failed attempt: `base`, `2·base`,
    /// `4·base`, ..., at most `max_delay`.
    pub fn ceiling(&self, attempts: i32) -> Duration {
        let doublings = attempts.clamp(1, 32) as u32 - 1;
        let ms = self
            .base
            .num_milliseconds()
            .saturating_mul(2_i64.saturating_pow(doublings));
        Duration::milliseconds(ms.min(self.max_delay.num_milliseconds()))
    }

    /// The delay after the `attempts`-th failed attempt: uniform in `[ceiling/2, ceiling]`.
    pub fn delay(&self, attempts: i32, rng: &mut impl rand::Rng) -> Duration {
        let ceiling = self.ceiling(attempts).num_milliseconds().max(1);
        Duration::milliseconds(rng.gen_range(ceiling / 2..=ceiling))
    }

    /// When the job is due again after its `attempts`-th failed attempt.
    pub fn next_run(&self, attempts: i32, now: DateTime<Utc>) -> DateTime<Utc> {
        now + self.delay(attempts, &mut rand::thread_rng())
    }
}

/// Whether a failed attempt of `job` was its last.
pub fn exhausted(job: &job::Model) -> bool {
    job.attempts >= job.max_attempts
}

/// Records a failed attempt, if `lease` still holds the job: it is queued again for
/// `retry_at` (see [`RetryPolicy`]), or, out of attempts ([`exhausted`]), failed for good.
///
/// # Errors
/// [`LeaseError::Lost`] when the lease no longer holds the job (nothing is written).
pub async fn fail(
    db: &impl ConnectionTrait,
    job: &job::Model,
    lease: &Lease,
    error: &str,
    retry_at: DateTime<Utc>,
) -> Result<(), LeaseError> {
    let now = Utc::now();
    let status = if exhausted(job) { "failed" } else { "queued" };
    let res = held(job::Entity::update_many(), lease)
        .col_expr(job::Column::Status, Expr::value(status))
        .col_expr(job::Column::RunAt, Expr::value(retry_at))
        .col_expr(job::Column::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(
            job::Column::LeaseExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            job::Column::LastError,
            Expr::value(Some(error.chars().take(2000).collect::<String>())),
        )
        .col_expr(job::Column::UpdatedAt, Expr::value(now))
        .exec(db)
        .await?;
    if res.rows_affected == 1 {
        Ok(())
    } else {
        lease.mark_lost();
        Err(LeaseError::Lost)
    }
}

#[cfg(test)]
mod tests {
    use super::RetryPolicy;
    use chrono::Duration;
    use rand::SeedableRng;

    #[test]
    fn retry_delays_grow_with_jitter_inside_their_bounds_over_minutes() {
        let policy = RetryPolicy::of(&crate::config::Config::with_data_dir("/tmp/x"));
        let attempts = crate::config::Config::with_data_dir("/tmp/x").job_max_attempts;
        assert_eq!(policy.ceiling(1), Duration::seconds(5));
        assert_eq!(policy.ceiling(3), Duration::seconds(20));
        assert_eq!(policy.ceiling(30), Duration::seconds(300));

        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (mut shortest, mut longest) = (Duration::zero(), Duration::zero());
        for attempt in 1..attempts {
            let ceiling = policy.ceiling(attempt);
            assert!(
                ceiling >= policy.ceiling(attempt - 1),
                "bounds never shrink"
            );
            let delays: Vec<Duration> = (0..200).map(|_| policy.delay(attempt, &mut rng)).collect();
            for delay in &delays {
                assert!(
                    *delay >= ceiling / 2 && *delay <= ceiling,
                    "{delay} outside {ceiling}"
                );
            }
            let distinct: std::collections::HashSet<_> = delays.iter().collect();
            assert!(distinct.len() > 100, "delays are spread, not fixed");
            shortest += ceiling / 2;
            longest += ceiling;
        }
        // Every retry of a job together: at least minutes, so an outage of a minute or a
        // restart of a backend does not fail a scan for good; at most a quarter of an hour.
        assert!(shortest >= Duration::minutes(5), "{shortest}");
        assert!(longest <= Duration::minutes(15), "{longest}");
    }
}

/// A job that runs once per period across every replica: its id is fixed per period (`tag` in
/// the high half, the period's number in the low half), so whichever process queues a period
/// first queues it, and the others find it there.
#[derive(Clone, Copy, Debug)]
pub struct Periodic {
    pub kind: &'static str,
    pub tag: u64,
    /// Seconds.
    pub period: u64,
}

impl Periodic {
    /// The id of period `slot`'s job.
    pub fn job_id(&self, slot: u64) -> Uuid {
        Uuid::from_u64_pair(self.tag, slot)
    }

    /// Queues the current period's job unless a process did already, every minute or so (or
    /// every period, when shorter), for as long as the workers run; wakes a worker when it
    /// queued one.
    pub async fn schedule(self, db: DatabaseConnection, wake: Arc<tokio::sync::Notify>) {
        let period = Ord::max(self.period, 1);
        let tick = std::time::Duration::from_secs(Ord::min(period, 60));
        loop {
            let slot = Ord::max(Utc::now().timestamp(), 0) as u64 / period;
            match self.enqueue(&db, slot).await {
                Ok(true) => wake.notify_one(),
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(error = ?err, kind = self.kind, "could not queue a periodic job")
                }
            }
            tokio::time::sleep(tick).await;
        }
    }

    /// Queues period `slot`'s job; false when it was queued already.
    ///
    /// # Errors
    /// Only on database failure.
    pub async fn enqueue(&self, db: &DatabaseConnection, slot: u64) -> AppResult<bool> {
        let now = Utc::now();
        let period = Ord::max(self.period, 1);
        let run_at = DateTime::from_timestamp((slot * period) as i64, 0).unwrap_or(now);
        let row = job::ActiveModel {
            id: sea_orm::Set(self.job_id(slot)),
            kind: sea_orm::Set(self.kind.into()),
            org_id: sea_orm::Set(None),
            scan_id: sea_orm::Set(None),
            payload: sea_orm::Set(serde_json::json!({})),
            status: sea_orm::Set("queued".into()),
            attempts: sea_orm::Set(0),
            max_attempts: sea_orm::Set(3),
            run_at: sea_orm::Set(run_at),
            lease_owner: sea_orm::Set(None),
            lease_expires_at: sea_orm::Set(None),
            last_error: sea_orm::Set(None),
            created_at: sea_orm::Set(now),
            updated_at: sea_orm::Set(now),
        };
        let inserted = job::Entity::insert(row)
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(job::Column::Id)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
        Ok(inserted > 0)
    }

    /// Forgets this kind's finished jobs older than a day.
    pub async fn forget_old(&self, db: &DatabaseConnection) {
        let _ = job::Entity::delete_many()
            .filter(job::Column::Kind.eq(self.kind))
            .filter(job::Column::Status.is_in(["done", "failed"]))
            .filter(job::Column::UpdatedAt.lt(Utc::now() - Duration::days(1)))
            .exec(db)
            .await;
    }
}
