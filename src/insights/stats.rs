//! Dashboard statistics of the org's findings, or one target's: each figure is one grouped
//! query, run only when its field is asked for.

use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use entity::{finding, target};
use sea_orm::sea_query::{Alias, Expr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect,
    RelationTrait, Select,
};
use uuid::Uuid;

use super::sql::Sql;
use crate::app::AppState;
use crate::context::{Ctx, Permission};
use crate::error::{AppError, AppResult};
use crate::findings::{FindingStatus, Severity, SeverityCounts};
use crate::targets::TargetKind;
use crate::trends::Period;

/// Whose findings: the caller's org, or one of its targets.
#[derive(Clone, Copy, Debug)]
pub struct Scope {
    pub org_id: Uuid,
    pub target_id: Option<Uuid>,
}

impl Scope {
    /// The caller's org, or one target of it (`NOT_FOUND` for another org's).
    ///
    /// # Errors
    /// `NOT_FOUND`, or database failure.
    pub async fn of(ctx: &Ctx, state: &AppState, target_id: Option<Uuid>) -> AppResult<Self> {
        ctx.require(Permission::Read)?;
        if let Some(id) = target_id {
            crate::targets::get(ctx, state, id).await?;
        }
        Ok(Self {
            org_id: ctx.org_id,
            target_id,
        })
    }

    /// The scope's findings.
    pub fn findings(&self) -> Select<finding::Entity> {
        let query = finding::Entity::find().filter(finding::Column::OrgId.eq(self.org_id));
        match self.target_id {
            Some(t) => query.filter(finding::Column::TargetId.eq(t)),
            None => query,
        }
    }

    /// The same condition in raw SQL over `finding` aliased `f`.
    pub(crate) fn push_where(&self, sql: &mut Sql) {
        sql.push(" WHERE f.org_id = ").bind(self.org_id);
        if let Some(t) = self.target_id {
            sql.push(" AND f.target_id = ").bind(t);
        }
    }
}

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

/// How many findings of one severity are in one status.
#[derive(Clone, Debug, PartialEq, Eq, SimpleObject)]
pub struct SeverityStatusCount {
    pub severity: Severity,
    pub status: FindingStatus,
    pub count: i64,
}

/// Open findings on targets of one kind.
#[derive(Clone, Debug, PartialEq, SimpleObject)]
pub struct KindCounts {
    pub kind: TargetKind,
    pub counts: SeverityCounts,
}

/// Open findings one scanner reports.
#[derive(Clone, Debug, PartialEq, SimpleObject)]
pub struct ScannerCounts {
    pub scanner: String,
    pub counts: SeverityCounts,
}

/// A rule with the number of its open findings.
#[derive(Clone, Debug, PartialEq, Eq, SimpleObject)]
pub struct RuleCount {
    pub scanner: String,
    pub rule_id: String,
    pub count: i64,
}

/// A CWE with the number of open findings whose rule names it.
#[derive(Clone, Debug, PartialEq, Eq, SimpleObject)]
pub struct CweCount {
    /// E.g. `CWE-79`.
    pub cwe: String,
    pub count: i64,
}

/// Open findings by how long ago they were first seen.
#[derive(Clone, Debug, PartialEq, SimpleObject)]
pub struct AgeBucket {
    /// `0-7`, `8-30`, `31-90` or `>90` (whole days since first seen).
    pub bucket: String,
    pub min_days: i32,
    /// Absent for the last bucket.
    pub max_days: Option<i32>,
    pub counts: SeverityCounts,
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

/// The age buckets: label, first day, last day.
const AGES: [(&str, i32, Option<i32>); 4] = [
    ("0-7", 0, Some(7)),
    ("8-30", 8, Some(30)),
    ("31-90", 31, Some(90)),
    (">90", 91, None),
];

fn by_severity<K: Ord + Clone>(rows: Vec<(K, String, i64)>) -> Vec<(K, SeverityCounts)> {
    let mut out: std::collections::BTreeMap<K, SeverityCounts> = Default::default();
    for (key, severity, n) in rows {
        if let Ok(severity) = Severity::parse(&severity) {
            out.entry(key).or_default().add(severity, n);
        }
    }
    out.into_iter().collect()
}

fn open(scope: &Scope) -> Select<finding::Entity> {
    scope
        .findings()
        .filter(finding::Column::Status.eq(FindingStatus::Open.as_str()))
}

/// Open findings per severity.
///
/// # Errors
/// Database failure.
pub async fn open_counts(db: &impl ConnectionTrait, scope: &Scope) -> AppResult<SeverityCounts> {
    let rows: Vec<(String, i64)> = open(scope)
        .select_only()
        .column(finding::Column::Severity)
        .column_as(finding::Column::Id.count(), "n")
        .group_by(finding::Column::Severity)
        .into_tuple()
        .all(db)
        .await?;
    let mut counts = SeverityCounts::default();
    for (severity, n) in rows {
        if let Ok(severity) = Severity::parse(&severity) {
            counts.add(severity, n);
        }
    }
    Ok(counts)
}

/// Findings by severity and status.
///
/// # Errors
/// Database failure.
pub async fn by_severity_status(
    db: &impl ConnectionTrait,
    scope: &Scope,
) -> AppResult<Vec<SeverityStatusCount>> {
    let rows: Vec<(String, String, i64)> = scope
        .findings()
        .select_only()
        .column(finding::Column::Severity)
        .column(finding::Column::Status)
        .column_as(finding::Column::Id.count(), "n")
        .group_by(finding::Column::Severity)
        .group_by(finding::Column::Status)
        .into_tuple()
        .all(db)
        .await?;
    let mut out: Vec<SeverityStatusCount> = rows
        .into_iter()
        .filter_map(|(severity, status, count)| {
            Some(SeverityStatusCount {
                severity: Severity::parse(&severity).ok()?,
                status: FindingStatus::parse(&status).ok()?,
                count,
            })
        })
        .collect();
    out.sort_by_key(|c| (-c.severity.rank(), c.status.as_str()));
    Ok(out)
}

/// Open findings per target kind.
///
/// # Errors
/// Database failure.
pub async fn by_target_kind(db: &impl ConnectionTrait, scope: &Scope) -> AppResult<Vec<KindCounts>> {
    let rows: Vec<(String, String, i64)> = open(scope)
        .select_only()
        .column(target::Column::Kind)
        .column(finding::Column::Severity)
        .column_as(finding::Column::Id.count(), "n")
        .join(JoinType::InnerJoin, finding::Relation::Target.def())
        .filter(target::Column::OrgId.eq(scope.org_id))
        .group_by(target::Column::Kind)
        .group_by(finding::Column::Severity)
        .into_tuple()
        .all(db)
        .await?;
    Ok(by_severity(rows)
        .into_iter()
        .map(|(kind, counts)| KindCounts {
            kind: TargetKind::parse(&kind).unwrap_or(TargetKind::Other),
            counts,
        })
        .collect())
}

/// Open findings per scanner.
///
/// # Errors
/// Database failure.
pub async fn by_scanner(db: &impl ConnectionTrait, scope: &Scope) -> AppResult<Vec<ScannerCounts>> {
    let rows: Vec<(String, String, i64)> = open(scope)
        .select_only()
        .column(finding::Column::Scanner)
        .column(finding::Column::Severity)
        .column_as(finding::Column::Id.count(), "n")
        .group_by(finding::Column::Scanner)
        .group_by(finding::Column::Severity)
        .into_tuple()
        .all(db)
        .await?;
    Ok(by_severity(rows)
        .into_iter()
        .map(|(scanner, counts)| ScannerCounts { scanner, counts })
        .collect())
}

/// The rules with the most open findings, most first (ties by scanner and rule id).
///
/// # Errors
/// Database failure.
pub async fn top_rules(
    db: &impl ConnectionTrait,
    scope: &Scope,
    limit: u64,
) -> AppResult<Vec<RuleCount>> {
    let rows: Vec<(String, String, i64)> = open(scope)
        .select_only()
        .column(finding::Column::Scanner)
        .column(finding::Column::RuleId)
        .column_as(finding::Column::Id.count(), "n")
        .group_by(finding::Column::Scanner)
        .group_by(finding::Column::RuleId)
        .order_by_desc(Expr::col(Alias::new("n")))
        .order_by_asc(finding::Column::Scanner)
        .order_by_asc(finding::Column::RuleId)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(scanner, rule_id, count)| RuleCount {
            scanner,
            rule_id,
            count,
        })
        .collect())
}

/// The CWEs with the most open findings (through each finding's rule), most first.
///
/// # Errors
/// Database failure.
pub async fn top_cwes(
    db: &impl ConnectionTrait,
    scope: &Scope,
    limit: u64,
) -> AppResult<Vec<CweCount>> {
    let backend = db.get_database_backend();
    let mut sql = Sql::new(backend);
    sql.push("SELECT j.value AS cwe, COUNT(*) AS n FROM finding f JOIN \"rule\" r ON r.id = f.rule_ref");
    sql.push(match backend {
        sea_orm::DatabaseBackend::Postgres => {
            " CROSS JOIN LATERAL jsonb_array_elements_text(CAST(r.cwe_ids AS jsonb)) AS j(value)"
        }
        _ => " CROSS JOIN json_each(r.cwe_ids) AS j",
    });
    scope.push_where(&mut sql);
    sql.push(" AND f.status = ")
        .bind(FindingStatus::Open.as_str())
        .push(" AND r.org_id = ")
        .bind(scope.org_id)
        .push(" GROUP BY j.value ORDER BY n DESC, cwe ASC LIMIT ")
        .bind(i64::try_from(limit).unwrap_or(i64::MAX));
    let rows = db.query_all_raw(sql.build()).await?;
    rows.into_iter()
        .map(|row| {
            Ok(CweCount {
                cwe: row.try_get("", "cwe")?,
                count: row.try_get("", "n")?,
            })
        })
        .collect::<Result<_, sea_orm::DbErr>>()
        .map_err(AppError::from)
}

/// Open findings by age (whole days since first seen, at `now`) and severity.
///
/// # Errors
/// Database failure.
pub async fn age_buckets(
    db: &impl ConnectionTrait,
    scope: &Scope,
    now: DateTime<Utc>,
) -> AppResult<Vec<AgeBucket>> {
    // A finding is `d` whole days old when first seen in (now - (d+1) days, now - d days].
    let older_than = |days: i32| now - Duration::days(i64::from(days));
    let mut case = Expr::case(
        finding::Column::FirstSeenAt.gt(older_than(AGES[1].1)),
        AGES[0].0,
    );
    for (i, (label, _, _)) in AGES.iter().enumerate().skip(1).take(AGES.len() - 2) {
        case = case.case(finding::Column::FirstSeenAt.gt(older_than(AGES[i + 1].1)), *label);
    }
    let case: sea_orm::sea_query::SimpleExpr = case.finally(AGES[AGES.len() - 1].0).into();
    let rows: Vec<(String, String, i64)> = open(scope)
        .select_only()
        .column_as(case, "bucket")
        .column(finding::Column::Severity)
        .column_as(finding::Column::Id.count(), "n")
        .group_by(Expr::col(Alias::new("bucket")))
        .group_by(finding::Column::Severity)
        .into_tuple()
        .all(db)
        .await?;
    let grouped = by_severity(rows);
    Ok(AGES
        .iter()
        .map(|(label, min_days, max_days)| AgeBucket {
            bucket: (*label).to_string(),
            min_days: *min_days,
            max_days: *max_days,
            counts: grouped
                .iter()
                .find(|(k, _)| k == label)
                .map(|(_, c)| *c)
                .unwrap_or_default(),
        })
        .collect())
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
    sql.push(&format!("SELECT {index} AS b, f.severity AS severity, COUNT(*) AS n FROM finding f"));
    scope.push_where(&mut sql);
    sql.push(&format!(" AND f.{column} >= ")).bind(buckets.start);
    if column == "fixed_at" {
        sql.push(" AND f.status = ").bind(FindingStatus::Fixed.as_str());
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
        assert_eq!(days.start, Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap());
        assert_eq!(days.count, 8);
        let weeks = Buckets::new(Period::Days30, TrendInterval::Week, now);
        // 2026-11-01 is a Sunday: its week began Monday 2026-10-26.
        assert_eq!(weeks.start, Utc.with_ymd_and_hms(2026, 10, 26, 0, 0, 0).unwrap());
        assert_eq!(weeks.count, 6);
        assert_eq!(weeks.start_of(5), Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap());
    }
}

/// Open findings per severity that count toward the risk score: neither false positives nor
/// risks accepted until an expiry still ahead.
///
/// # Errors
/// Database failure.
pub async fn risk_counts(
    db: &impl ConnectionTrait,
    scope: &Scope,
    now: DateTime<Utc>,
) -> AppResult<SeverityCounts> {
    let rows: Vec<(String, i64)> = open(scope)
        .filter(sea_orm::Condition::not(crate::findings::settled_condition(now)))
        .select_only()
        .column(finding::Column::Severity)
        .column_as(finding::Column::Id.count(), "n")
        .group_by(finding::Column::Severity)
        .into_tuple()
        .all(db)
        .await?;
    let mut counts = SeverityCounts::default();
    for (severity, n) in rows {
        if let Ok(severity) = Severity::parse(&severity) {
            counts.add(severity, n);
        }
    }
    Ok(counts)
}
