//! Dashboard statistics of the org's findings, or one target's: each figure is one grouped
//! query, run only when its field is asked for.

use async_graphql::SimpleObject;
use chrono::{DateTime, Duration, Utc};
use entity::{finding, target};
use sea_orm::sea_query::{Alias, Expr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect,
    RelationTrait, Select,
};
use uuid::Uuid;

use super::sql::{count_all, Sql};
use crate::app::AppState;
use crate::context::{Ctx, Permission};
use crate::error::{AppError, AppResult};
use crate::findings::{FindingStatus, Severity, SeverityCounts};
use crate::targets::TargetKind;

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
        .column_as(count_all(), "n")
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
        .filter(sea_orm::Condition::not(crate::findings::settled_condition(
            now,
        )))
        .select_only()
        .column(finding::Column::Severity)
        .column_as(count_all(), "n")
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
        .column_as(count_all(), "n")
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
pub async fn by_target_kind(
    db: &impl ConnectionTrait,
    scope: &Scope,
) -> AppResult<Vec<KindCounts>> {
    let rows: Vec<(String, String, i64)> = open(scope)
        .select_only()
        .column(target::Column::Kind)
        .column(finding::Column::Severity)
        .column_as(count_all(), "n")
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
        .column_as(count_all(), "n")
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
        .column_as(count_all(), "n")
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
    sql.push(
        "SELECT j.value AS cwe, COUNT(*) AS n FROM finding f JOIN \"rule\" r ON r.id = f.rule_ref",
    );
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
        case = case.case(
            finding::Column::FirstSeenAt.gt(older_than(AGES[i + 1].1)),
            *label,
        );
    }
    let case: sea_orm::sea_query::SimpleExpr = case.finally(AGES[AGES.len() - 1].0).into();
    let rows: Vec<(String, String, i64)> = open(scope)
        .select_only()
        .column_as(case, "bucket")
        .column(finding::Column::Severity)
        .column_as(count_all(), "n")
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
