//! SLA counts and compliance of the org or one target, and explicit due dates.

use async_graphql::SimpleObject;
use chrono::{DateTime, Duration, Utc};
use entity::finding;
use sea_orm::sea_query::{Expr, ExprTrait, Func, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect, Set,
};
use uuid::Uuid;

use super::{load_policy, state_condition, SlaPolicy, SlaState};
use crate::app::AppState;
use crate::audit::{self, AuditEntry};
use crate::context::{Ctx, Permission};
use crate::error::{AppError, AppResult};
use crate::findings::{settled_condition, Finding, FindingStatus, Severity};
use crate::insights::sql::epoch;
use crate::insights::Scope;
use crate::trends::Period;

/// Where the open findings stand, and how the period went.
#[derive(Clone, Debug, PartialEq, SimpleObject)]
pub struct SlaSummary {
    /// The target, when the figures are one target's.
    pub target_id: Option<Uuid>,
    /// The compliance period: `7d`, `30d`, `90d` or `1y`.
    pub period: String,
    /// Open findings due later than the due-soon margin.
    pub on_time: i64,
    /// Open findings due within the margin.
    pub due_soon: i64,
    /// Open findings past their due date.
    pub breached: i64,
    /// Findings fixed in the period by their due date.
    pub met: i64,
    /// Findings fixed in the period after their due date.
    pub missed: i64,
    /// `met / (met + missed + breached) × 100`; absent when all three are 0.
    pub compliance_pct: Option<f64>,
}

fn count_if(condition: Condition) -> SimpleExpr {
    let case: SimpleExpr = Expr::case(condition, 1).finally(Expr::null()).into();
    Func::count(case).into()
}

/// Fixed by the due date: on or before the explicit date, or within the policy's days of
/// first seen (whole seconds, the same on both engines).
fn fixed_in_time(policy: &SlaPolicy, backend: sea_orm::DatabaseBackend) -> Condition {
    let mut by_policy = Condition::any().add(Expr::val(1).eq(0));
    let took = format!(
        "({}) - ({})",
        epoch(backend, "\"finding\".\"fixed_at\""),
        epoch(backend, "\"finding\".\"first_seen_at\"")
    );
    for severity in Severity::ALL {
        if let Some(days) = policy.days(severity) {
            by_policy = by_policy.add(
                Condition::all()
                    .add(finding::Column::Severity.eq(severity.as_str()))
                    .add(Expr::cust(took.clone()).lte(i64::from(days) * 86_400)),
            );
        }
    }
    Condition::any()
        .add(
            Condition::all()
                .add(finding::Column::DueAt.is_not_null())
                .add(
                    Expr::col((finding::Entity, finding::Column::FixedAt))
                        .lte(Expr::col((finding::Entity, finding::Column::DueAt))),
                ),
        )
        .add(
            Condition::all()
                .add(finding::Column::DueAt.is_null())
                .add(by_policy),
        )
}

/// Has a due date at all: an explicit one, or a severity the policy covers.
fn has_due_date(policy: &SlaPolicy) -> Condition {
    let covered: Vec<&str> = Severity::ALL
        .into_iter()
        .filter(|s| policy.days(*s).is_some())
        .map(|s| s.as_str())
        .collect();
    Condition::any()
        .add(finding::Column::DueAt.is_not_null())
        .add(finding::Column::Severity.is_in(covered))
}

/// Counts per SLA state now, and compliance over the period: of the findings fixed in the
/// period and the open ones past due, the share fixed by their due date. One grouped query.
///
/// # Errors
/// `NOT_FOUND` for another org's target; database failure.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn summary(
    ctx: &Ctx,
    state: &AppState,
    target_id: Option<Uuid>,
    period: Period,
    period_text: String,
    now: DateTime<Utc>,
) -> AppResult<SlaSummary> {
    let scope = Scope::of(ctx, state, target_id).await?;
    let policy = load_policy(&state.db, ctx.org_id).await?;
    let backend = state.db.get_database_backend();
    let fixed_in_period = Condition::all()
        .add(finding::Column::Status.eq(FindingStatus::Fixed.as_str()))
        .add(finding::Column::FixedAt.gte(now - period.duration()))
        .add(Condition::not(settled_condition(now)))
        .add(has_due_date(&policy));
    let row: Option<(i64, i64, i64, i64, i64)> = scope
        .findings()
        .select_only()
        .column_as(
            count_if(state_condition(&policy, SlaState::OnTime, now)),
            "on_time",
        )
        .column_as(
            count_if(state_condition(&policy, SlaState::DueSoon, now)),
            "due_soon",
        )
        .column_as(
            count_if(state_condition(&policy, SlaState::Breached, now)),
            "breached",
        )
        .column_as(
            count_if(fixed_in_period.clone().add(fixed_in_time(&policy, backend))),
            "met",
        )
        .column_as(
            count_if(fixed_in_period.add(Condition::not(fixed_in_time(&policy, backend)))),
            "missed",
        )
        .into_tuple()
        .one(&state.db)
        .await?;
    let (on_time, due_soon, breached, met, missed) = row.unwrap_or_default();
    let due = met + missed + breached;
    Ok(SlaSummary {
        target_id,
        period: period_text,
        on_time,
        due_soon,
        breached,
        met,
        missed,
        compliance_pct: (due > 0).then(|| met as f64 * 100.0 / due as f64),
    })
}

/// Sets (or, with `None`, removes) a finding's explicit due date (members); audited.
///
/// # Errors
/// `NOT_FOUND`, `FORBIDDEN`.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn set_due_date(
    ctx: &Ctx,
    state: &AppState,
    id: Uuid,
    due_at: Option<DateTime<Utc>>,
) -> AppResult<Finding> {
    ctx.require(Permission::Write)?;
    let (row, rule) = finding::Entity::find_by_id(id)
        .filter(finding::Column::OrgId.eq(ctx.org_id))
        .find_also_related(entity::rule::Entity)
        .one(&state.db)
        .await?
        .ok_or_else(|| AppError::not_found("finding"))?;
    // Whole seconds, so the date reads back as it was written on both engines.
    let due_at = due_at.map(|d| d - Duration::nanoseconds(i64::from(d.timestamp_subsec_nanos())));
    let before = row.due_at;
    let now = Utc::now();
    let txn = crate::db::begin_write(&state.db).await?;
    let mut active: finding::ActiveModel = row.into();
    active.due_at = Set(due_at);
    active.updated_at = Set(now);
    let row = active.update(&txn).await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "finding.due_date", "finding", row.id)
            .with_details(serde_json::json!({"from": before, "to": due_at})),
    )
    .await?;
    txn.commit().await?;
    Ok(Finding::from_model(row, rule, now))
}
