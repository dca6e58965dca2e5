//! Who works and what waits. Each process running background workers keeps a heartbeat row
//! fresh in the shared database; health reads the live workers of every process from those
//! rows, and the queue's depth and age from the job rows, so any replica tells the same truth.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{job, worker_heartbeat};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

/// How often a worker process renews its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// A process is alive while its latest heartbeat is younger than this: three missed beats.
const ALIVE_FOR: chrono::Duration = chrono::Duration::seconds(15);

/// Rows of processes unseen this long are removed by any live one (a process that crashed
/// cannot remove its own).
const FORGET_AFTER: chrono::Duration = chrono::Duration::hours(1);

/// The heartbeat of this process's workers.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    pub process: String,
    pub workers: i32,
    pub started_at: DateTime<Utc>,
}

impl Heartbeat {
    pub fn new(process: String, workers: usize) -> Self {
        Self {
            process,
            workers: i32::try_from(workers).unwrap_or(i32::MAX),
            started_at: Utc::now(),
        }
    }

    /// Records that the process is alive now, and forgets processes long dead.
    ///
    /// # Errors
    /// Only on database failure.
    pub async fn beat(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let now = Utc::now();
        worker_heartbeat::Entity::insert(worker_heartbeat::ActiveModel {
            id: Set(self.process.clone()),
            workers: Set(self.workers),
            started_at: Set(self.started_at),
            seen_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(worker_heartbeat::Column::Id)
                .update_columns([
                    worker_heartbeat::Column::SeenAt,
                    worker_heartbeat::Column::Workers,
                ])
                .to_owned(),
        )
        .exec(db)
        .await?;
        worker_heartbeat::Entity::delete_many()
            .filter(worker_heartbeat::Column::SeenAt.lt(now - FORGET_AFTER))
            .exec(db)
            .await?;
        Ok(())
    }

    /// Removes the row when the workers stop cleanly, so they stop counting at once.
    ///
    /// # Errors
    /// Only on database failure.
    pub async fn end(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        worker_heartbeat::Entity::delete_by_id(self.process.clone())
            .exec(db)
            .await?;
        Ok(())
    }
}

/// Live workers and the queue, as health reports them.
#[derive(Clone, Debug, PartialEq)]
pub struct Census {
    /// Processes whose heartbeat is fresh.
    pub processes: u64,
    /// Workers across those processes.
    pub workers: i64,
    /// Jobs waiting for a worker (due now or later).
    pub queued: u64,
    /// Jobs held by a worker.
    pub running: u64,
    /// When the longest-waiting due job became due.
    pub oldest_due: Option<DateTime<Utc>>,
}

/// Counts live workers and queued and running jobs: a handful of indexed reads.
///
/// # Errors
/// Only on database failure.
pub async fn census(db: &DatabaseConnection) -> Result<Census, DbErr> {
    let now = Utc::now();
    let live: Vec<i32> = worker_heartbeat::Entity::find()
        .select_only()
        .column(worker_heartbeat::Column::Workers)
        .filter(worker_heartbeat::Column::SeenAt.gte(now - ALIVE_FOR))
        .into_tuple()
        .all(db)
        .await?;
    let by_status: Vec<(String, i64)> = job::Entity::find()
        .select_only()
        .column(job::Column::Status)
        .column_as(Expr::col(job::Column::Id).count(), "n")
        .filter(job::Column::Status.is_in(["queued", "running"]))
        .group_by(job::Column::Status)
        .into_tuple()
        .all(db)
        .await?;
    let count = |status: &str| {
        by_status
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| u64::try_from(*n).unwrap_or(0))
    };
    let oldest_due = job::Entity::find()
        .filter(job::Column::Status.eq("queued"))
        .filter(job::Column::RunAt.lte(now))
        .order_by_asc(job::Column::RunAt)
        .one(db)
        .await?
        .map(|job| job.run_at);
    Ok(Census {
        processes: live.len() as u64,
        workers: live.iter().map(|w| i64::from(*w)).sum(),
        queued: count("queued"),
        running: count("running"),
        oldest_due,
    })
}
