//! Live scan events: what workers publish while a scan moves, and where it goes (the event bus
//! topics and the scan row, so a late subscriber starts from the truth).

pub mod feed;
pub mod graphql;
pub mod shared;
pub mod sse;
pub mod ws;
pub mod ws_rights;

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use graphql::follow_scan_stream;

use entity::scan;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QuerySelect, UpdateMany,
};

use crate::events::EventBus;
use crate::scans::ScanStatus;

/// Topic of one scan's events.
pub fn scan_topic(scan_id: Uuid) -> String {
    format!("scan:{scan_id}")
}

/// Topic of every scan event of an org.
pub fn org_topic(org_id: Uuid) -> String {
    format!("org:{org_id}:scans")
}

/// Where a scan is, as workers report it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, SimpleObject)]
pub struct ScanProgress {
    pub scan_id: Uuid,
    pub target_id: Uuid,
    pub status: ScanStatus,
    /// `queued`, `storing`, `parsing`, `matching`, `finalizing`, then `complete`, `failed` or
    /// `cancelled`.
    pub phase: String,
    /// 0–100.
    pub percent: f64,
    /// Findings processed so far.
    pub processed: u64,
    /// Findings expected, when known.
    pub total: Option<u64>,
    pub findings_new: u64,
    pub findings_fixed: u64,
    pub message: Option<String>,
    /// When the event was made, by the clock of the process that made it (informative only).
    pub at: DateTime<Utc>,
    /// The scan's event sequence number: a later event of the scan has a larger one, whichever
    /// process sent it. Subscribers order and resume by it, never by `at`.
    #[serde(default)]
    pub seq: u64,
}

impl ScanProgress {
    pub fn new(scan_id: Uuid, target_id: Uuid, status: ScanStatus, phase: &str) -> Self {
        Self {
            scan_id,
            target_id,
            status,
            phase: phase.into(),
            percent: 0.0,
            processed: 0,
            total: None,
            findings_new: 0,
            findings_fixed: 0,
            message: None,
            at: Utc::now(),
            seq: 0,
        }
    }

    pub fn is_terminal(&self) -> bool {
        self.status.is_finished()
    }
}

/// The progress a scan row holds, numbered by the row's sequence (the stored copy may predate
/// it); a scan with none yet is at the start of its status.
pub fn progress_of(row: &scan::Model) -> ScanProgress {
    let mut progress = row
        .progress
        .clone()
        .and_then(|p| serde_json::from_value::<ScanProgress>(p).ok())
        .unwrap_or_else(|| {
            let status = ScanStatus::parse(&row.status).unwrap_or(ScanStatus::Queued);
            ScanProgress::new(row.id, row.target_id, status, status.as_str())
        });
    progress.seq = u64::try_from(row.progress_seq).unwrap_or(0);
    progress
}

/// Sends a progress event to the scan's and the org's subscribers. Events may be lost (the
/// scan row holds the truth), so a bus failure is logged, never fatal.
pub async fn publish(bus: &dyn EventBus, org_id: Uuid, progress: &ScanProgress) {
    let Ok(payload) = serde_json::to_string(progress) else {
        return;
    };
    for topic in [scan_topic(progress.scan_id), org_topic(org_id)] {
        if let Err(err) = bus.publish(&topic, &payload).await {
            tracing::warn!(%err, %topic, "could not publish a scan event");
        }
    }
}

/// Runs `update` (an update of one scan row, with whatever filters the caller needs) with the
/// progress stored on the row and the scan's sequence number incremented in the same
/// statement, then gives `progress` the number it got. Run it inside the caller's write
/// transaction: the re-read of the number then sees this write and no later one. Returns
/// whether the row was updated.
///
/// # Errors
/// Only on database failure.
pub async fn store_progress(
    txn: &DatabaseTransaction,
    update: UpdateMany<scan::Entity>,
    progress: &mut ScanProgress,
) -> Result<bool, DbErr> {
    let updated = update
        .col_expr(
            scan::Column::Progress,
            Expr::value(serde_json::to_value(&*progress).ok()),
        )
        .col_expr(
            scan::Column::ProgressSeq,
            Expr::col(scan::Column::ProgressSeq).add(1),
        )
        .filter(scan::Column::Id.eq(progress.scan_id))
        .exec(txn)
        .await?;
    if updated.rows_affected == 0 {
        return Ok(false);
    }
    let seq: Option<i64> = scan::Entity::find_by_id(progress.scan_id)
        .select_only()
        .column(scan::Column::ProgressSeq)
        .into_tuple()
        .one(txn)
        .await?;
    progress.seq = seq.map_or(0, |s| u64::try_from(s).unwrap_or(0));
    Ok(true)
}
