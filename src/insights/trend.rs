//! Open findings by severity over time, per target or for the org: the count side of the score
//! trends. Computed from the findings' own history (`first_seen_at`, `fixed_at`), so every day
//! has a point whether or not a scan ran: a baseline at the period's start plus, per bucket, the
//! findings first seen minus those fixed, summed up.

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use entity::finding;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, QueryFilter, QuerySelect};

use super::flows::{flows, Buckets};
use super::sql::count_all;
use super::stats::Scope;
use crate::error::AppResult;
use crate::findings::{Severity, SeverityCounts};

/// Open findings at the end of one bucket of time.
#[derive(Clone, Debug, PartialEq, Eq, SimpleObject)]
pub struct FindingCountPoint {
    /// The bucket's start (UTC midnight; for weeks, a Monday).
    pub start: DateTime<Utc>,
    /// When the counts hold: the bucket's end, or now for the current bucket.
    pub at: DateTime<Utc>,
    /// Findings open at `at`, per severity.
    pub open: SeverityCounts,
}

/// Open findings per severity at the end of each bucket, oldest first.
///
/// A fixed finding counts as open from its first sighting until it was fixed; a finding that
/// was fixed and then reopened counts as open since its first sighting (its history before the
/// reopening is not kept).
///
/// # Errors
/// Database failure.
pub async fn finding_trend(
    db: &impl ConnectionTrait,
    scope: &Scope,
    buckets: &Buckets,
    now: DateTime<Utc>,
) -> AppResult<Vec<FindingCountPoint>> {
    let baseline: Vec<(String, i64)> = scope
        .findings()
        .select_only()
        .column(finding::Column::Severity)
        .column_as(count_all(), "n")
        .filter(finding::Column::FirstSeenAt.lt(buckets.start))
        .filter(
            Condition::any()
                .add(finding::Column::FixedAt.is_null())
                .add(finding::Column::FixedAt.gte(buckets.start)),
        )
        .group_by(finding::Column::Severity)
        .into_tuple()
        .all(db)
        .await?;
    let size = usize::try_from(buckets.count).unwrap_or(0);
    let mut delta: Vec<[i64; 5]> = vec![[0; 5]; size];
    let slot = |s: &str| Severity::ALL.iter().position(|x| x.as_str() == s);
    for (sign, column) in [(1, "first_seen_at"), (-1, "fixed_at")] {
        for (b, severity, n) in flows(db, scope, buckets, column).await? {
            if let (Some(row), Some(i)) = (
                usize::try_from(b).ok().and_then(|b| delta.get_mut(b)),
                slot(&severity),
            ) {
                row[i] += sign * n;
            }
        }
    }
    let mut running = [0_i64; 5];
    for (severity, n) in baseline {
        if let Some(i) = slot(&severity) {
            running[i] += n;
        }
    }
    let mut points = Vec::with_capacity(size);
    for (index, change) in (0_i64..).zip(delta) {
        let mut open = SeverityCounts::default();
        for (i, severity) in Severity::ALL.iter().enumerate() {
            running[i] += change[i];
            open.add(*severity, running[i]);
        }
        points.push(FindingCountPoint {
            start: buckets.start_of(index),
            at: buckets.start_of(index + 1).min(now),
            open,
        });
    }
    Ok(points)
}
