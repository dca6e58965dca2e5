//! The durable work queue: `job` rows claimed under a lease. PostgreSQL claims with
//! `FOR UPDATE SKIP LOCKED`, so any number of workers in any number of processes share it;
//! SQLite has one writer at a time, so its single atomic `UPDATE ... RETURNING` is the claim.

use chrono::{DateTime, Duration, Utc};
use entity::job;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    FromQueryResult, QueryFilter, Set, Statement,
};
use uuid::Uuid;

use crate::error::AppResult;

pub const INGEST: &str = "ingest";

/// Queues a job (inside the caller's transaction, so a scan and its job appear together).
///
/// # Errors
/// Only on database failure.
pub async fn enqueue(
    db: &impl ConnectionTrait,
    kind: &str,
    org_id: Uuid,
    scan_id: Uuid,
    max_attempts: i32,
) -> AppResult<job::Model> {
    let now = Utc::now();
    Ok(job::ActiveModel {
        id: Set(Uuid::now_v7()),
        kind: Set(kind.into()),
        org_id: Set(Some(org_id)),
        scan_id: Set(Some(scan_id)),
        payload: Set(serde_json::json!({})),
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
pub async fn renew(
    db: &DatabaseConnection,
    id: Uuid,
    worker: &str,
    lease: Duration,
) -> AppResult<bool> {
    let res = job::Entity::update_many()
        .col_expr(
            job::Column::LeaseExpiresAt,
            Expr::value(Some(Utc::now() + lease)),
        )
        .filter(job::Column::Id.eq(id))
        .filter(job::Column::LeaseOwner.eq(worker))
        .filter(job::Column::Status.eq("running"))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Marks a job done.
///
/// # Errors
/// Only on database failure.
pub async fn complete(db: &impl ConnectionTrait, id: Uuid) -> AppResult<()> {
    job::Entity::update_many()
        .col_expr(job::Column::Status, Expr::value("done"))
        .col_expr(job::Column::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(job::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(job::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Delay before attempt `attempts + 1`: 2, 4, 8, ... seconds, at most 5 minutes.
pub fn backoff(attempts: i32) -> Duration {
    Duration::seconds(2_i64.saturating_pow(attempts.clamp(1, 20) as u32).min(300))
}

/// Records a failed attempt: the job is queued again after a backoff, or, out of attempts,
/// failed for good. Returns true when it will not run again.
///
/// # Errors
/// Only on database failure.
pub async fn fail(
    db: &impl ConnectionTrait,
    job: &job::Model,
    error: &str,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let exhausted = job.attempts >= job.max_attempts;
    let mut active: job::ActiveModel = job.clone().into();
    active.status = Set(if exhausted { "failed" } else { "queued" }.into());
    active.run_at = Set(now + backoff(job.attempts));
    active.lease_owner = Set(None);
    active.lease_expires_at = Set(None);
    active.last_error = Set(Some(error.chars().take(2000).collect()));
    active.updated_at = Set(now);
    active.update(db).await?;
    Ok(exhausted)
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use chrono::Duration;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::seconds(2));
        assert_eq!(backoff(3), Duration::seconds(8));
        assert_eq!(backoff(30), Duration::seconds(300));
    }
}
