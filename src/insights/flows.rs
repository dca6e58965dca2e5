//! Time series of the findings: buckets of days or weeks, findings first seen and fixed per
//! bucket, and how long fixing took.

use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use sea_orm::ConnectionTrait;

use super::sql::Sql;
use super::stats::Scope;
use crate::error::{AppError, AppResult};
use crate::findings::{FindingStatus, Severity};
use crate::trends::Period;

/// How long each bucket of a series is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Enum)]
pub enum TrendInterval {
    /// UTC days.
    #[default]
    Day,
    /// ISO weeks, Monday 00:00 UTC to the next.
    Week,
}

/// The buckets of a series ending now: aligned to UTC days (or Mondays), the first holding the
/// period's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buckets {
    pub start: DateTime<Utc>,
    pub seconds: i64,
    pub count: i64,
}

impl Buckets {
    pub fn new(period: Period, interval: TrendInterval, now: DateTime<Utc>) -> Self {
        let from = (now - period.duration()).date_naive();
        let (day, seconds) = match interval {
            TrendInterval::Day => (from, 86_400),
            TrendInterval::Week => (
                from - Duration::days(i64::from(from.weekday().num_days_from_monday())),
                7 * 86_400,
            ),
        };
        let start = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default());
        let count = (now - start).num_seconds() / seconds + 1;
        Self {
            start,
            seconds,
            count,
        }
    }

    pub fn start_of(&self, index: i64) -> DateTime<Utc> {
        self.start + Duration::seconds(index * self.seconds)
    }

    /// The bucket index of a timestamp column (rows before `start` must be filtered out).
    pub(crate) fn index_sql(&self, sql: &Sql, column: &str) -> String {
        format!(
            "(({}) - {}) / {}",
            sql.epoch(column),
            self.start.timestamp(),
            self.seconds
        )
    }
}

/// Findings first seen, and findings fixed, in one bucket of time.
#[derive(Clone, Debug, PartialEq, Eq, SimpleObject)]
pub struct FlowPoint {
    /// The bucket's start (UTC midnight; for weeks, a Monday).
    pub start: DateTime<Utc>,
    /// Findings first seen in the bucket.
    pub new: i64,
    /// Findings fixed in the bucket (and still fixed).
    pub fixed: i64,
}

/// How long fixing took, for the findings of one severity fixed in the period.
#[derive(Clone, Debug, PartialEq, SimpleObject)]
pub struct TimeToFix {
    pub severity: Severity,
    /// Findings fixed in the period.
    pub fixed: i64,
    /// Mean hours from first seen to fixed.
    pub mean_hours: f64,
    /// Median hours from first seen to fixed (the mean of the middle two for an even count).
    pub median_hours: f64,
}

/// Findings first seen (`new`) and fixed per bucket and severity: `(bucket, severity, n)`.
pub(crate) async fn flows(
    db: &impl ConnectionTrait,
    scope: &Scope,
    buckets: &Buckets,
    column: &str,
) -> AppResult<Vec<(i64, String, i64)>> {
    let mut sql = Sql::new(db.get_database_backend());
    let index = buckets.index_sql(&sql, &format!("f.{column}"));
    sql.push(&format!(
        "SELECT {index} AS b, f.severity AS severity, COUNT(*) AS n FROM finding f"
    ));
    scope.push_where(&mut sql);
    sql.push(&format!(" AND f.{column} >= "))
        .bind(buckets.start);
    if column == "fixed_at" {
        sql.push(" AND f.status = ")
            .bind(FindingStatus::Fixed.as_str());
    }
    sql.push(" GROUP BY b, f.severity");
    let rows = db.query_all_raw(sql.build()).await?;
    rows.into_iter()
        .map(|row| {
            Ok((
                row.try_get::<i64>("", "b")?,
                row.try_get::<String>("", "severity")?,
                row.try_get::<i64>("", "n")?,
            ))
        })
        .collect::<Result<_, sea_orm::DbErr>>()
        .map_err(AppError::from)
}

/// New and fixed findings per bucket, every bucket of the period present.
///
/// # Errors
/// Database failure.
pub async fn new_vs_fixed(
    db: &impl ConnectionTrait,
    scope: &Scope,
    buckets: &Buckets,
) -> AppResult<Vec<FlowPoint>> {
    let mut points: Vec<FlowPoint> = (0..buckets.count)
        .map(|i| FlowPoint {
            start: buckets.start_of(i),
            new: 0,
            fixed: 0,
        })
        .collect();
    for (b, _, n) in flows(db, scope, buckets, "first_seen_at").await? {
        if let Some(p) = usize::try_from(b).ok().and_then(|b| points.get_mut(b)) {
            p.new += n;
        }
    }
    for (b, _, n) in flows(db, scope, buckets, "fixed_at").await? {
        if let Some(p) = usize::try_from(b).ok().and_then(|b| points.get_mut(b)) {
            p.fixed += n;
        }
    }
    Ok(points)
}

/// Mean and median time to fix per severity, of the findings fixed since `since`.
///
/// # Errors
/// Database failure.
pub async fn time_to_fix(
    db: &impl ConnectionTrait,
    scope: &Scope,
    since: DateTime<Utc>,
) -> AppResult<Vec<TimeToFix>> {
    let mut sql = Sql::new(db.get_database_backend());
    let took = format!(
        "({}) - ({})",
        sql.epoch("f.fixed_at"),
        sql.epoch("f.first_seen_at")
    );
    sql.push(
        "SELECT severity, MAX(n) AS n, CAST(AVG(d) AS DOUBLE PRECISION) AS mean, \
         CAST(AVG(CASE WHEN rn IN ((n + 1) / 2, (n + 2) / 2) THEN d END) AS DOUBLE PRECISION) AS median \
         FROM (SELECT severity, d, ROW_NUMBER() OVER (PARTITION BY severity ORDER BY d) AS rn, \
         COUNT(*) OVER (PARTITION BY severity) AS n FROM (SELECT f.severity AS severity, ",
    );
    sql.push(&took).push(" AS d FROM finding f");
    scope.push_where(&mut sql);
    sql.push(" AND f.status = ")
        .bind(FindingStatus::Fixed.as_str())
        .push(" AND f.fixed_at >= ")
        .bind(since)
        .push(") AS fixed) AS ranked GROUP BY severity");
    let rows = db.query_all_raw(sql.build()).await?;
    let mut out = Vec::new();
    for row in rows {
        let severity: String = row.try_get("", "severity")?;
        let Ok(severity) = Severity::parse(&severity) else {
            continue;
        };
        let mean: f64 = row.try_get("", "mean")?;
        let median: f64 = row.try_get("", "median")?;
        out.push(TimeToFix {
            severity,
            fixed: row.try_get("", "n")?,
            mean_hours: mean / 3600.0,
            median_hours: median / 3600.0,
        });
    }
    out.sort_by_key(|t| -t.severity.rank());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_align_to_days_and_mondays() {
        // Tuesday 2026-12-01 06:00 UTC.
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 6, 0, 0).unwrap();
        let days = Buckets::new(Period::Days7, TrendInterval::Day, now);
        assert_eq!(
            days.start,
            Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap()
        );
        assert_eq!(days.count, 8);
        let weeks = Buckets::new(Period::Days30, TrendInterval::Week, now);
        // 2026-11-01 is a Sunday: its week began Monday 2026-10-26.
        assert_eq!(
            weeks.start,
            Utc.with_ymd_and_hms(2026, 10, 26, 0, 0, 0).unwrap()
        );
        assert_eq!(weeks.count, 6);
        assert_eq!(
            weeks.start_of(5),
            Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap()
        );
    }
}
