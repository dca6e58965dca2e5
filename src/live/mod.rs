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
    pub at: DateTime<Utc>,
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
        }
    }

    pub fn is_terminal(&self) -> bool {
        self.status.is_finished()
    }
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
