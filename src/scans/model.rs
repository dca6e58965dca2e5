use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use entity::scan;
use uuid::Uuid;

use crate::findings::SeverityCounts;
use crate::stored_enum;

stored_enum! {
    /// Where a scan is in its life.
    ScanStatus, "status" {
        Queued => "queued",
        Running => "running",
        Complete => "complete",
        Failed => "failed",
        Cancelled => "cancelled",
    }
}

impl ScanStatus {
    /// Complete, failed or cancelled: nothing will change any more.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Complete | Self::Failed | Self::Cancelled)
    }
}

/// One run of one scanner against one target.
#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex)]
pub struct Scan {
    pub id: Uuid,
    pub target_id: Uuid,
    pub status: ScanStatus,
    /// `upload` or `engine` (run by Rampart, see `engines`).
    pub source: String,
    pub scanner_name: String,
    pub scanner_version: Option<String>,
    /// Report format: `native`, `sarif`, `cyclonedx`, `trivy` or `detect_secrets`.
    pub format: Option<String>,
    pub policy_tier: Option<String>,
    /// 0–100; absent until the scan completes.
    pub score: Option<f64>,
    /// Findings this scan saw, per severity.
    pub counts: SeverityCounts,
    /// Findings first seen (or seen again after a fix) in this scan.
    pub findings_new: i32,
    /// Open findings of the same scanner this scan no longer saw.
    pub findings_fixed: i32,
    pub findings_unchanged: i32,
    /// Size of the raw report in bytes.
    pub raw_size: Option<i64>,
    /// SHA-256 of the raw report (hex).
    pub raw_sha256: Option<String>,
    /// Why the scan failed.
    pub error: Option<String>,
    pub scanned_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Shared by the scans one `startScan` request queued (one per engine).
    pub group_id: Option<Uuid>,
    #[graphql(skip)]
    pub raw_key: Option<String>,
    #[graphql(skip)]
    pub progress: Option<crate::live::ScanProgress>,
}

impl From<scan::Model> for Scan {
    fn from(m: scan::Model) -> Self {
        let counts = SeverityCounts {
            critical: m.count_critical.into(),
            high: m.count_high.into(),
            medium: m.count_medium.into(),
            low: m.count_low.into(),
            info: m.count_info.into(),
            total: i64::from(m.count_critical)
                + i64::from(m.count_high)
                + i64::from(m.count_medium)
                + i64::from(m.count_low)
                + i64::from(m.count_info),
        };
        let progress = m.progress.is_some().then(|| crate::live::progress_of(&m));
        Self {
            id: m.id,
            target_id: m.target_id,
            status: ScanStatus::parse(&m.status).unwrap_or(ScanStatus::Failed),
            source: m.source,
            scanner_name: m.scanner_name,
            scanner_version: m.scanner_version,
            format: m.format,
            policy_tier: m.policy_tier,
            score: m.score,
            counts,
            findings_new: m.findings_new,
            findings_fixed: m.findings_fixed,
            findings_unchanged: m.findings_unchanged,
            raw_size: m.raw_size,
            raw_sha256: m.raw_sha256,
            error: m.error,
            scanned_at: m.scanned_at,
            created_at: m.created_at,
            started_at: m.started_at,
            finished_at: m.finished_at,
            group_id: m.group_id,
            raw_key: m.raw_key,
            progress,
        }
    }
}

/// Counts, score and timings of one scan.
#[derive(Clone, Debug, SimpleObject)]
pub struct ScanSummary {
    pub scan_id: Uuid,
    pub status: ScanStatus,
    pub score: Option<f64>,
    pub counts: SeverityCounts,
    pub findings_new: i32,
    pub findings_fixed: i32,
    pub findings_unchanged: i32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Processing time in milliseconds.
    pub duration_ms: Option<i64>,
}

impl From<&Scan> for ScanSummary {
    fn from(s: &Scan) -> Self {
        Self {
            scan_id: s.id,
            status: s.status,
            score: s.score,
            counts: s.counts,
            findings_new: s.findings_new,
            findings_fixed: s.findings_fixed,
            findings_unchanged: s.findings_unchanged,
            started_at: s.started_at,
            finished_at: s.finished_at,
            duration_ms: match (s.started_at, s.finished_at) {
                (Some(a), Some(b)) => Some((b - a).num_milliseconds()),
                _ => None,
            },
        }
    }
}
