//! How well a target, or the whole org, meets a framework: each control's open and fixed
//! findings and its state, a score, and the score over time. The rules (docs/compliance.md):
//!
//! - A finding maps to a control through its rule's CWE ids, its CVE ids (controls of known
//!   vulnerabilities) or, in frameworks of native checks, its check id (`rule_id`) when its
//!   scanner is the framework's. Findings triaged `false_positive` are left out.
//! - **failed**: at least one open finding maps to the control.
//! - **passed**: none open, and the control was tested: a finding that maps to it was fixed, or
//!   a scanner able to detect it completed a scan in scope. A scanner is able to detect a CWE
//!   control once the org holds a rule of that scanner naming one of its CWEs (it has reported
//!   that weakness somewhere); known vulnerabilities are detected by dependency scans
//!   (CycloneDX and Trivy reports); a native check by a scan of a policy tier that runs it.
//! - **not tested**: otherwise.
//! - score = passed / (passed + failed) × 100, one decimal; absent when nothing was tested.
//!
//! Everything is counted in SQL, grouped (finding ⟕ rule by CWE list, first-seen and fixed
//! bucket), so the rows read are a handful per distinct CWE list, never one per finding. A
//! trend point at time t uses the same rules with what was known at t: findings first seen by
//! t and not fixed by t are open, fixed by t are fixed, scans finished by t test.

use std::collections::HashMap;

use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Duration, Utc};
use entity::{finding, rule, scan};
use sea_orm::sea_query::{Asterisk, Expr, ExprTrait, Func, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, JoinType, QueryFilter, QuerySelect, RelationTrait,
};
use uuid::Uuid;

use super::frameworks::{self, Framework};
use crate::app::AppState;
use crate::context::{Ctx, Permission};
use crate::error::{AppError, AppResult};
use crate::trends::Period;

/// Report formats whose scans look for known vulnerabilities in components.
const DEPENDENCY_FORMATS: &[&str] = &["cyclonedx", "trivy"];

/// Where a control stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
pub enum ControlState {
    /// Tested, and no open finding maps to it.
    Passed,
    /// At least one open finding maps to it.
    Failed,
    /// Nothing in scope could have found a problem with it.
    NotTested,
}

/// A framework as listed.
#[derive(Clone, Debug, SimpleObject)]
pub struct ComplianceFramework {
    /// The id to ask `compliance` for (`owasp-top10-2021`).
    pub id: String,
    pub name: String,
    pub version: String,
    pub description: String,
    /// Where the framework is published.
    pub source: String,
    /// How findings map to the controls, and on whose authority.
    pub mapping: String,
    /// For frameworks of native checks: the policy tier they describe.
    pub policy_tier: Option<String>,
    pub control_count: i32,
}

impl From<&Framework> for ComplianceFramework {
    fn from(f: &Framework) -> Self {
        Self {
            id: f.id.clone(),
            name: f.name.clone(),
            version: f.version.clone(),
            description: f.description.clone(),
            source: f.source.clone(),
            mapping: f.mapping.clone(),
            policy_tier: f.policy_tier.clone(),
            control_count: i32::try_from(f.controls.len()).unwrap_or(i32::MAX),
        }
    }
}

/// One control and what the findings in scope say of it.
#[derive(Clone, Debug, SimpleObject)]
pub struct ControlCoverage {
    /// The control's id in its framework (`A03:2021`, `6.2.4-injection`, `SI-10`, `KG-014`).
    pub id: String,
    pub title: String,
    /// Where the control is published.
    pub source: String,
    /// The CWE ids that map to it.
    pub cwe_ids: Vec<String>,
    /// The native check ids that map to it.
    pub check_ids: Vec<String>,
    /// Whether findings with a CVE id map to it.
    pub known_vulnerabilities: bool,
    pub state: ControlState,
    /// Open findings mapped to it (a finding can map to several controls).
    pub open_findings: i64,
    /// Fixed findings mapped to it.
    pub fixed_findings: i64,
}

/// A framework's coverage for a target or the org.
#[derive(Clone, Debug, SimpleObject)]
pub struct ComplianceCoverage {
    pub framework: ComplianceFramework,
    /// The target asked for; absent for the whole org.
    pub target_id: Option<Uuid>,
    /// passed / (passed + failed) × 100, one decimal; absent when no control was tested.
    pub score: Option<f64>,
    pub passed: i32,
    pub failed: i32,
    pub not_tested: i32,
    /// Open findings that map to at least one control, each counted once.
    pub open_findings: i64,
    /// Fixed findings that map to at least one control, each counted once.
    pub fixed_findings: i64,
    pub controls: Vec<ControlCoverage>,
    pub computed_at: DateTime<Utc>,
}

/// The framework's standing at one moment of a trend.
#[derive(Clone, Debug, PartialEq, SimpleObject)]
pub struct ComplianceTrendPoint {
    /// The end of the day or week this point describes.
    pub at: DateTime<Utc>,
    pub score: Option<f64>,
    pub passed: i32,
    pub failed: i32,
    pub not_tested: i32,
    pub open_findings: i64,
    pub fixed_findings: i64,
}

/// Spacing of trend points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interval {
    Day,
    Week,
}

impl Interval {
    /// # Errors
    /// `VALIDATION_FAILED` on `interval` for anything but `day` or `week`.
    pub fn parse(value: &str) -> AppResult<Self> {
        match value {
            "day" => Ok(Self::Day),
            "week" => Ok(Self::Week),
            other => Err(AppError::invalid(
                "interval",
                format!("unknown interval {other:?}; expected day or week"),
            )),
        }
    }

    fn duration(self) -> Duration {
        match self {
            Self::Day => Duration::days(1),
            Self::Week => Duration::days(7),
        }
    }
}

/// The moments a trend describes, oldest first, the last being `now`: one per interval back
/// to the start of the period.
pub fn boundaries(period: Period, interval: Interval, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let steps = period.duration().num_days() / interval.duration().num_days();
    (0..=steps)
        .rev()
        .map(|k| now - interval.duration() * i32::try_from(k).unwrap_or(0))
        .collect()
}

/// What the findings and scans in scope say of each control at each boundary.
#[derive(Debug, Default, PartialEq)]
struct Tally {
    /// Per control, per boundary.
    open: Vec<Vec<i64>>,
    fixed: Vec<Vec<i64>>,
    /// Per control: since when a scan in scope was able to find a problem with it.
    tested_since: Vec<Option<DateTime<Utc>>>,
    /// Per boundary: findings mapped to any control, each once.
    open_total: Vec<i64>,
    fixed_total: Vec<i64>,
}

/// One group of findings: the controls they map to, the boundary index by which they were
/// first seen, the one by which they were fixed (`n` = not by the last), how many.
struct Group {
    controls: Vec<usize>,
    seen: usize,
    fixed: usize,
    count: i64,
}

impl Tally {
    fn new(controls: usize, points: usize) -> Self {
        Self {
            open: vec![vec![0; points]; controls],
            fixed: vec![vec![0; points]; controls],
            tested_since: vec![None; controls],
            open_total: vec![0; points],
            fixed_total: vec![0; points],
        }
    }

    fn add(&mut self, group: &Group) {
        if group.controls.is_empty() {
            return;
        }
        for i in 0..self.open_total.len() {
            let (open, fixed) = (group.seen <= i && group.fixed > i, group.fixed <= i);
            for &c in &group.controls {
                if open {
                    self.open[c][i] += group.count;
                }
                if fixed {
                    self.fixed[c][i] += group.count;
                }
            }
            if open {
                self.open_total[i] += group.count;
            }
            if fixed {
                self.fixed_total[i] += group.count;
            }
        }
    }

    fn tested(&mut self, control: usize, since: DateTime<Utc>) {
        let slot = &mut self.tested_since[control];
        *slot = Some(slot.map_or(since, |s| Ord::min(s, since)));
    }

    fn state(&self, control: usize, point: usize, at: DateTime<Utc>) -> ControlState {
        if self.open[control][point] > 0 {
            ControlState::Failed
        } else if self.fixed[control][point] > 0
            || self.tested_since[control].is_some_and(|since| since <= at)
        {
            ControlState::Passed
        } else {
            ControlState::NotTested
        }
    }

    fn point(&self, point: usize, at: DateTime<Utc>) -> ComplianceTrendPoint {
        let (mut passed, mut failed, mut not_tested) = (0, 0, 0);
        for control in 0..self.open.len() {
            match self.state(control, point, at) {
                ControlState::Passed => passed += 1,
                ControlState::Failed => failed += 1,
                ControlState::NotTested => not_tested += 1,
            }
        }
        ComplianceTrendPoint {
            at,
            score: score(passed, failed),
            passed,
            failed,
            not_tested,
            open_findings: self.open_total[point],
            fixed_findings: self.fixed_total[point],
        }
    }
}

/// passed / (passed + failed) × 100 to one decimal, absent when nothing was tested.
pub fn score(passed: i32, failed: i32) -> Option<f64> {
    let tested = passed + failed;
    (tested > 0).then(|| (f64::from(passed) * 1000.0 / f64::from(tested)).round() / 10.0)
}

/// The index of the first boundary by which the moment in `col` had passed (`n` when after
/// the last, or NULL), as nested `CASE WHEN col <= b_mid THEN … ELSE … END`: a binary search,
/// so each row costs about log2(n) comparisons however many points the trend has.
fn bucket(col: finding::Column, boundaries: &[DateTime<Utc>]) -> SimpleExpr {
    fn search(
        col: finding::Column,
        boundaries: &[DateTime<Utc>],
        lo: usize,
        hi: usize,
    ) -> SimpleExpr {
        if lo >= hi {
            return Expr::value(i32::try_from(lo).unwrap_or(i32::MAX));
        }
        let mid = (lo + hi) / 2;
        Expr::case(col.lte(boundaries[mid]), search(col, boundaries, lo, mid))
            .finally(search(col, boundaries, mid + 1, hi))
            .into()
    }
    search(col, boundaries, 0, boundaries.len())
}

fn index(value: i32) -> usize {
    usize::try_from(value).unwrap_or(0)
}

/// Findings of the org (and target) that count: all but false positives.
fn findings_in_scope(ctx: &Ctx, target_id: Option<Uuid>) -> Condition {
    let mut scope = Condition::all()
        .add(finding::Column::OrgId.eq(ctx.org_id))
        .add(finding::Column::TriageState.ne("false_positive"));
    if let Some(target_id) = target_id {
        scope = scope.add(finding::Column::TargetId.eq(target_id));
    }
    scope
}

/// Complete scans of the org (and target).
fn scans_in_scope(ctx: &Ctx, target_id: Option<Uuid>) -> Condition {
    let mut scope = Condition::all()
        .add(scan::Column::OrgId.eq(ctx.org_id))
        .add(scan::Column::Status.eq("complete"));
    if let Some(target_id) = target_id {
        scope = scope.add(scan::Column::TargetId.eq(target_id));
    }
    scope
}

fn lower(col: impl sea_orm::sea_query::IntoColumnRef) -> SimpleExpr {
    Func::lower(Expr::col(col)).into()
}

/// Reads the findings and scans in scope into a [`Tally`] at each boundary.
async fn tally(
    ctx: &Ctx,
    state: &AppState,
    framework: &Framework,
    target_id: Option<Uuid>,
    boundaries: &[DateTime<Utc>],
) -> AppResult<Tally> {
    let mut tally = Tally::new(framework.controls.len(), boundaries.len());
    let seen = bucket(finding::Column::FirstSeenAt, boundaries);
    let fixed = bucket(finding::Column::FixedAt, boundaries);
    match framework.scanner.as_deref() {
        Some(scanner) => {
            let scanner = scanner.to_lowercase();
            let rows: Vec<(String, i32, i32, i64)> = finding::Entity::find()
                .select_only()
                .column(finding::Column::RuleId)
                .column_as(seen, "seen")
                .column_as(fixed, "fixed")
                .column_as(Expr::col(Asterisk).count(), "n")
                .filter(findings_in_scope(ctx, target_id))
                .filter(lower((finding::Entity, finding::Column::Scanner)).eq(scanner.as_str()))
                .filter(finding::Column::RuleId.is_in(framework.check_ids()))
                .group_by(finding::Column::RuleId)
                .group_by(Expr::cust("seen"))
                .group_by(Expr::cust("fixed"))
                .into_tuple()
                .all(&state.db)
                .await?;
            for (check, seen, fixed, count) in rows {
                tally.add(&Group {
                    controls: framework.controls_for_check(&check),
                    seen: index(seen),
                    fixed: index(fixed),
                    count,
                });
            }
            let tiers = frameworks::tier_checks(&scanner);
            let scans: Vec<(Option<String>, Option<DateTime<Utc>>)> = scan::Entity::find()
                .select_only()
                .column(scan::Column::PolicyTier)
                .column_as(scan::Column::ScannedAt.min(), "since")
                .filter(scans_in_scope(ctx, target_id))
                .filter(lower((scan::Entity, scan::Column::ScannerName)).eq(scanner.as_str()))
                .group_by(scan::Column::PolicyTier)
                .into_tuple()
                .all(&state.db)
                .await?;
            for (tier, since) in scans {
                let (Some(runs), Some(since)) = (tier.and_then(|t| tiers.get(t.as_str())), since)
                else {
                    continue;
                };
                for (i, control) in framework.controls.iter().enumerate() {
                    if control.checks.iter().any(|c| runs.contains(c.as_str())) {
                        tally.tested(i, since);
                    }
                }
            }
        }
        None => {
            let has_cve: SimpleExpr = Expr::case(finding::Column::CveIds.ne("[]"), 1)
                .finally(0)
                .into();
            let rows: Vec<(Option<String>, i32, i32, i32, i64)> = finding::Entity::find()
                .select_only()
                .column(rule::Column::CweIds)
                .column_as(has_cve, "has_cve")
                .column_as(seen, "seen")
                .column_as(fixed, "fixed")
                .column_as(Expr::col(Asterisk).count(), "n")
                .join(JoinType::LeftJoin, finding::Relation::Rule.def())
                .filter(findings_in_scope(ctx, target_id))
                .filter(
                    Condition::any()
                        .add(rule::Column::CweIds.ne("[]"))
                        .add(finding::Column::CveIds.ne("[]")),
                )
                .group_by(rule::Column::CweIds)
                .group_by(Expr::cust("has_cve"))
                .group_by(Expr::cust("seen"))
                .group_by(Expr::cust("fixed"))
                .into_tuple()
                .all(&state.db)
                .await?;
            let mut mapped: HashMap<(Option<String>, bool), Vec<usize>> = HashMap::new();
            for (cwes, has_cve, seen, fixed, count) in rows {
                let has_cve = has_cve != 0;
                let controls = mapped
                    .entry((cwes.clone(), has_cve))
                    .or_insert_with(|| {
                        let list: Vec<String> = cwes
                            .as_deref()
                            .and_then(|text| serde_json::from_str(text).ok())
                            .unwrap_or_default();
                        framework.controls_for_cwes(list.iter().map(String::as_str), has_cve)
                    })
                    .clone();
                tally.add(&Group {
                    controls,
                    seen: index(seen),
                    fixed: index(fixed),
                    count,
                });
            }
            // Which scanners ran in scope, and since when; which CWE lists each has reported
            // in the org, and since when.
            let ran: HashMap<String, DateTime<Utc>> = scan::Entity::find()
                .select_only()
                .column(scan::Column::ScannerName)
                .column_as(scan::Column::ScannedAt.min(), "since")
                .filter(scans_in_scope(ctx, target_id))
                .group_by(scan::Column::ScannerName)
                .into_tuple::<(String, Option<DateTime<Utc>>)>()
                .all(&state.db)
                .await?
                .into_iter()
                .filter_map(|(scanner, since)| Some((scanner, since?)))
                .collect();
            let known: Vec<(String, String, Option<DateTime<Utc>>)> = rule::Entity::find()
                .select_only()
                .column(rule::Column::Scanner)
                .column(rule::Column::CweIds)
                .column_as(rule::Column::CreatedAt.min(), "since")
                .filter(rule::Column::OrgId.eq(ctx.org_id))
                .filter(rule::Column::CweIds.ne("[]"))
                .filter(rule::Column::Scanner.is_in(ran.keys().map(String::as_str)))
                .group_by(rule::Column::Scanner)
                .group_by(rule::Column::CweIds)
                .into_tuple()
                .all(&state.db)
                .await?;
            for (scanner, cwes, since) in known {
                let (Some(ran_since), Some(since)) = (ran.get(&scanner), since) else {
                    continue;
                };
                let list: Vec<String> = serde_json::from_str(&cwes).unwrap_or_default();
                for control in framework.controls_for_cwes(list.iter().map(String::as_str), false) {
                    tally.tested(control, Ord::max(since, *ran_since));
                }
            }
            if framework.controls.iter().any(|c| c.known_vulnerabilities) {
                let since: Option<Option<DateTime<Utc>>> = scan::Entity::find()
                    .select_only()
                    .column_as(scan::Column::ScannedAt.min(), "since")
                    .filter(scans_in_scope(ctx, target_id))
                    .filter(scan::Column::Format.is_in(DEPENDENCY_FORMATS.iter().copied()))
                    .into_tuple()
                    .one(&state.db)
                    .await?;
                if let Some(since) = since.flatten() {
                    for (i, control) in framework.controls.iter().enumerate() {
                        if control.known_vulnerabilities {
                            tally.tested(i, since);
                        }
                    }
                }
            }
        }
    }
    Ok(tally)
}

async fn framework_in_scope(
    ctx: &Ctx,
    state: &AppState,
    framework: &str,
    target_id: Option<Uuid>,
) -> AppResult<&'static Framework> {
    ctx.require(Permission::Read)?;
    let framework = frameworks::find(framework).ok_or_else(|| AppError::not_found("framework"))?;
    if let Some(target_id) = target_id {
        crate::targets::get(ctx, state, target_id).await?;
    }
    Ok(framework)
}

/// Every shipped framework.
///
/// # Errors
/// `UNAUTHENTICATED` only (through the caller).
pub fn list(ctx: &Ctx) -> AppResult<Vec<ComplianceFramework>> {
    ctx.require(Permission::Read)?;
    Ok(frameworks::all().iter().map(Into::into).collect())
}

/// A framework's coverage now, for a target or the org.
///
/// # Errors
/// `NOT_FOUND` for an unknown framework or a target outside the org.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id, framework))]
pub async fn coverage(
    ctx: &Ctx,
    state: &AppState,
    framework: &str,
    target_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> AppResult<ComplianceCoverage> {
    let framework = framework_in_scope(ctx, state, framework, target_id).await?;
    let tally = tally(ctx, state, framework, target_id, &[now]).await?;
    let summary = tally.point(0, now);
    let controls = framework
        .controls
        .iter()
        .enumerate()
        .map(|(i, c)| ControlCoverage {
            id: c.id.clone(),
            title: c.title.clone(),
            source: c.source.clone(),
            cwe_ids: c.cwes.clone(),
            check_ids: c.checks.clone(),
            known_vulnerabilities: c.known_vulnerabilities,
            state: tally.state(i, 0, now),
            open_findings: tally.open[i][0],
            fixed_findings: tally.fixed[i][0],
        })
        .collect();
    Ok(ComplianceCoverage {
        framework: framework.into(),
        target_id,
        score: summary.score,
        passed: summary.passed,
        failed: summary.failed,
        not_tested: summary.not_tested,
        open_findings: summary.open_findings,
        fixed_findings: summary.fixed_findings,
        controls,
        computed_at: now,
    })
}

/// A framework's standing at the end of each day or week of the period, oldest first.
///
/// # Errors
/// `NOT_FOUND` for an unknown framework or a target outside the org.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id, framework))]
pub async fn trend(
    ctx: &Ctx,
    state: &AppState,
    framework: &str,
    target_id: Option<Uuid>,
    period: Period,
    interval: Interval,
    now: DateTime<Utc>,
) -> AppResult<Vec<ComplianceTrendPoint>> {
    let framework = framework_in_scope(ctx, state, framework, target_id).await?;
    let at = boundaries(period, interval, now);
    let tally = tally(ctx, state, framework, target_id, &at).await?;
    Ok(at
        .iter()
        .enumerate()
        .map(|(i, at)| tally.point(i, *at))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap() + Duration::days(day)
    }

    #[test]
    fn scores() {
        assert_eq!(score(0, 0), None);
        assert_eq!(score(3, 0), Some(100.0));
        assert_eq!(score(2, 1), Some(66.7));
        assert_eq!(score(0, 4), Some(0.0));
    }

    #[test]
    fn boundaries_end_now_one_interval_apart() {
        let now = at(100);
        let days = boundaries(Period::parse("7d").unwrap(), Interval::Day, now);
        assert_eq!(days.len(), 8);
        assert_eq!((days[0], days[7]), (at(93), now));
        let weeks = boundaries(Period::parse("30d").unwrap(), Interval::Week, now);
        assert_eq!(weeks, vec![at(72), at(79), at(86), at(93), now]);
        assert!(Interval::parse("month").is_err());
    }

    #[test]
    fn states_follow_open_fixed_and_tested() {
        // Three controls, three points (days 0, 1, 2).
        let mut t = Tally::new(3, 3);
        // Two findings of control 0 first seen by point 0, fixed by point 2.
        t.add(&Group {
            controls: vec![0],
            seen: 0,
            fixed: 2,
            count: 2,
        });
        // One finding of controls 0 and 1, seen by point 1, never fixed.
        t.add(&Group {
            controls: vec![0, 1],
            seen: 1,
            fixed: 3,
            count: 1,
        });
        // Unmapped findings count nowhere.
        t.add(&Group {
            controls: vec![],
            seen: 0,
            fixed: 3,
            count: 9,
        });
        // Control 2 tested by a scan on day 1.
        t.tested(2, at(1));
        assert_eq!(t.open[0], [2, 3, 1]);
        assert_eq!(t.fixed[0], [0, 0, 2]);
        assert_eq!(t.open_total, [2, 3, 1]);
        assert_eq!(t.fixed_total, [0, 0, 2]);
        let p0 = t.point(0, at(0));
        assert_eq!(
            (p0.passed, p0.failed, p0.not_tested, p0.score),
            (0, 1, 2, Some(0.0))
        );
        let p1 = t.point(1, at(1));
        assert_eq!(
            (p1.passed, p1.failed, p1.not_tested, p1.score),
            (1, 2, 0, Some(33.3))
        );
        // Fixing control 0's pair leaves the never-fixed one open: still failed.
        assert_eq!(t.state(0, 2, at(2)), ControlState::Failed);
        assert_eq!(t.state(1, 2, at(2)), ControlState::Failed);
        assert_eq!(t.state(2, 2, at(2)), ControlState::Passed);
        assert_eq!(t.state(2, 0, at(0)), ControlState::NotTested);
    }

    #[test]
    fn all_fixed_is_passed_without_a_scan() {
        let mut t = Tally::new(1, 1);
        t.add(&Group {
            controls: vec![0],
            seen: 0,
            fixed: 0,
            count: 4,
        });
        assert_eq!(t.state(0, 0, at(0)), ControlState::Passed);
        assert_eq!(t.point(0, at(0)).fixed_findings, 4);
    }
}
