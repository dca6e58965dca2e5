//! Every rule about findings, triage and comments lives here.

use chrono::{DateTime, Utc};
use entity::{comment, finding, rule, scan_finding};
use sea_orm::sea_query::{Expr, ExprTrait, Query, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use super::model::{Comment, Finding, FindingStatus, Severity, SeverityCounts, TriageState};
use crate::app::AppState;
use crate::audit::{self, AuditEntry};
use crate::context::{Ctx, Permission};
use crate::error::{AppError, AppResult};
use crate::graphql::pagination::{OrderDirection, Paged, Window};
use crate::targets::contains_ci;
use crate::validate::bounded_text;

/// `CASE severity WHEN 'critical' THEN 5 ... END`, so "worst first" sorts in SQL.
pub fn severity_rank_expr() -> SimpleExpr {
    let mut case = Expr::case(
        finding::Column::Severity.eq(Severity::Critical.as_str()),
        Severity::Critical.rank(),
    );
    for severity in &Severity::ALL[1..] {
        case = case.case(
            finding::Column::Severity.eq(severity.as_str()),
            severity.rank(),
        );
    }
    case.finally(0).into()
}

/// Which findings to list.
#[derive(Clone, Debug, Default)]
pub struct FindingFilter {
    pub target_id: Option<Uuid>,
    /// Findings this scan saw.
    pub scan_id: Option<Uuid>,
    /// Findings new (or reopened) in this scan: what its `finding.new` webhook lists.
    pub new_in_scan: Option<Uuid>,
    pub severity: Vec<Severity>,
    pub status: Option<FindingStatus>,
    pub triage_state: Option<TriageState>,
    pub rule_id: Option<String>,
    pub cve: Option<String>,
    /// Case-insensitive substring of title, description, rule or path.
    pub search: Option<String>,
    /// Findings assigned to this member.
    pub assignee_id: Option<Uuid>,
    /// Findings assigned to the caller (a session's user).
    pub assigned_to_me: bool,
    /// Suppressed findings are left out unless asked for.
    pub suppression: SuppressionFilter,
    /// Open findings in this SLA state (docs/sla.md).
    pub sla_state: Option<crate::sla::SlaState>,
}

/// Which findings to list by suppression.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, async_graphql::Enum)]
pub enum SuppressionFilter {
    /// Findings no active suppression rule hides (the default).
    #[default]
    Active,
    /// Only suppressed findings.
    Suppressed,
    /// Both.
    All,
}

/// Findings no active suppression hides at `now`: never suppressed, or their rule lapsed.
pub fn unsuppressed_condition(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(finding::Column::SuppressedBy.is_null())
        .add(finding::Column::SuppressedUntil.lte(now))
}

fn suppressed_condition(now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(finding::Column::SuppressedBy.is_not_null())
        .add(
            Condition::any()
                .add(finding::Column::SuppressedUntil.is_null())
                .add(finding::Column::SuppressedUntil.gt(now)),
        )
}

/// Sort keys for findings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, async_graphql::Enum)]
pub enum FindingOrderField {
    /// Worst first when descending.
    #[default]
    Severity,
    LastSeenAt,
    FirstSeenAt,
    Title,
}

/// The condition for a triage state as readers see it: an accepted risk past its expiry counts
/// as untriaged.
fn triage_condition(state: TriageState, now: DateTime<Utc>) -> Condition {
    let accepted = finding::Column::TriageState.eq(TriageState::AcceptedRisk.as_str());
    let lapsed = Condition::all()
        .add(accepted.clone())
        .add(finding::Column::TriageExpiresAt.lte(now));
    match state {
        TriageState::Untriaged => Condition::any()
            .add(finding::Column::TriageState.eq(TriageState::Untriaged.as_str()))
            .add(lapsed),
        TriageState::AcceptedRisk => Condition::all().add(accepted).add(
            Condition::any()
                .add(finding::Column::TriageExpiresAt.is_null())
                .add(finding::Column::TriageExpiresAt.gt(now)),
        ),
        other => Condition::all().add(finding::Column::TriageState.eq(other.as_str())),
    }
}

/// Findings a person has settled for now: a false positive, a risk accepted until an expiry
/// still ahead, or a finding an active suppression rule hides. They leave the risk score and
/// the SLA (docs/risk-score.md, docs/sla.md).
pub fn settled_condition(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(finding::Column::TriageState.eq(TriageState::FalsePositive.as_str()))
        .add(triage_condition(TriageState::AcceptedRisk, now))
        .add(suppressed_condition(now))
}

/// Open findings per severity of each of `targets` (all of the org) that `counted` keeps, in
/// one grouped query; a target with none counts zero.
///
/// # Errors
/// Only on database failure.
pub async fn open_counts_by_target(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    targets: &[Uuid],
    counted: Condition,
) -> AppResult<std::collections::HashMap<Uuid, SeverityCounts>> {
    let rows: Vec<(Uuid, String, i64)> = finding::Entity::find()
        .select_only()
        .column(finding::Column::TargetId)
        .column(finding::Column::Severity)
        .column_as(finding::Column::Id.count(), "n")
        .filter(finding::Column::OrgId.eq(org_id))
        .filter(finding::Column::TargetId.is_in(targets.iter().copied()))
        .filter(finding::Column::Status.eq(FindingStatus::Open.as_str()))
        .filter(counted)
        .group_by(finding::Column::TargetId)
        .group_by(finding::Column::Severity)
        .into_tuple()
        .all(db)
        .await?;
    let mut out: std::collections::HashMap<Uuid, SeverityCounts> = targets
        .iter()
        .map(|t| (*t, SeverityCounts::default()))
        .collect();
    for (target_id, severity, n) in rows {
        if let (Some(counts), Ok(severity)) = (out.get_mut(&target_id), Severity::parse(&severity))
        {
            counts.add(severity, n);
        }
    }
    Ok(out)
}

/// The org's findings.
///
/// # Errors
/// Only on database failure.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn list(
    ctx: &Ctx,
    state: &AppState,
    filter: &FindingFilter,
    order: (FindingOrderField, OrderDirection),
    window: Window,
) -> AppResult<Paged<Finding>> {
    ctx.require(Permission::Read)?;
    let now = Utc::now();
    let query = filtered(ctx, state, filter, now).await?;
    let total = query.clone().count(&state.db).await?;
    let query = match order.0 {
        FindingOrderField::Severity => query.order_by(severity_rank_expr(), order.1.order()),
        FindingOrderField::LastSeenAt => {
            query.order_by(finding::Column::LastSeenAt, order.1.order())
        }
        FindingOrderField::FirstSeenAt => {
            query.order_by(finding::Column::FirstSeenAt, order.1.order())
        }
        FindingOrderField::Title => query.order_by(finding::Column::Title, order.1.order()),
    };
    let items = query
        .order_by_asc(finding::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .find_also_related(rule::Entity)
        .all(&state.db)
        .await?
        .into_iter()
        .map(|(m, r)| Finding::from_model(m, r, now))
        .collect();
    Ok(Paged {
        items,
        total,
        window,
    })
}

/// The org's findings that `filter` selects, unordered.
///
/// # Errors
/// `VALIDATION_FAILED` when "assigned to me" is asked by an API key (no user).
pub(super) async fn filtered(
    ctx: &Ctx,
    state: &AppState,
    filter: &FindingFilter,
    now: DateTime<Utc>,
) -> AppResult<sea_orm::Select<finding::Entity>> {
    let mut query = finding::Entity::find();
    // A scan's findings are reached from its sightings (which carry the org), so the plan
    // starts from the scan, not from every finding of the org (docs/benchmarks.md).
    let sightings = |scan_id: Uuid| {
        Query::select()
            .column(scan_finding::Column::FindingId)
            .from(scan_finding::Entity)
            .and_where(Expr::col(scan_finding::Column::ScanId).eq(scan_id))
            .and_where(Expr::col(scan_finding::Column::OrgId).eq(ctx.org_id))
            .to_owned()
    };
    match (filter.scan_id, filter.new_in_scan) {
        (None, None) => query = query.filter(finding::Column::OrgId.eq(ctx.org_id)),
        (seen_by, new_in) => {
            if let Some(scan_id) = seen_by {
                query = query.filter(finding::Column::Id.in_subquery(sightings(scan_id)));
            }
            if let Some(scan_id) = new_in {
                let new = sightings(scan_id)
                    .and_where(Expr::col(scan_finding::Column::Change).is_in(["new", "reopened"]))
                    .to_owned();
                query = query.filter(finding::Column::Id.in_subquery(new));
            }
        }
    }
    if let Some(target_id) = filter.target_id {
        query = query.filter(finding::Column::TargetId.eq(target_id));
    }
    if !filter.severity.is_empty() {
        query = query
            .filter(finding::Column::Severity.is_in(filter.severity.iter().map(|s| s.as_str())));
    }
    if let Some(status) = filter.status {
        query = query.filter(finding::Column::Status.eq(status.as_str()));
    }
    if let Some(triage) = filter.triage_state {
        query = query.filter(triage_condition(triage, now));
    }
    if let Some(sla) = filter.sla_state {
        let policy = crate::sla::load_policy(&state.db, ctx.org_id).await?;
        query = query.filter(crate::sla::state_condition(&policy, sla, now));
    }
    if let Some(rule) = filter.rule_id.as_deref() {
        query = query.filter(finding::Column::RuleId.eq(rule));
    }
    if let Some(cve) = filter.cve.as_deref() {
        let quoted = serde_json::to_string(&cve.to_uppercase()).unwrap_or_default();
        query = query.filter(finding::Column::CveIds.contains(quoted));
    }
    if let Some(search) = filter.search.as_deref().filter(|s| !s.is_empty()) {
        query = query.filter(
            Condition::any()
                .add(contains_ci(
                    (finding::Entity, finding::Column::Title),
                    search,
                ))
                .add(contains_ci(
                    (finding::Entity, finding::Column::Description),
                    search,
                ))
                .add(
                    finding::Column::RuleRef.in_subquery(
                        Query::select()
                            .column(rule::Column::Id)
                            .from(rule::Entity)
                            .and_where(rule::Column::OrgId.eq(ctx.org_id))
                            .and_where(contains_ci(
                                (rule::Entity, rule::Column::Description),
                                search,
                            ))
                            .to_owned(),
                    ),
                )
                .add(contains_ci(
                    (finding::Entity, finding::Column::RuleId),
                    search,
                ))
                .add(contains_ci(
                    (finding::Entity, finding::Column::LocationPath),
                    search,
                )),
        );
    }
    if let Some(assignee) = filter.assignee_id {
        query = query.filter(finding::Column::AssigneeId.eq(assignee));
    }
    if filter.assigned_to_me {
        let me = ctx.user_id().ok_or_else(|| {
            AppError::invalid("assignedToMe", "needs a signed-in user, not an API key")
        })?;
        query = query.filter(finding::Column::AssigneeId.eq(me));
    }
    match filter.suppression {
        SuppressionFilter::Active => query = query.filter(unsuppressed_condition(now)),
        SuppressionFilter::Suppressed => query = query.filter(suppressed_condition(now)),
        SuppressionFilter::All => {}
    }
    Ok(query)
}

pub(super) async fn find_in_org(
    db: &impl ConnectionTrait,
    ctx: &Ctx,
    id: Uuid,
) -> AppResult<(finding::Model, Option<rule::Model>)> {
    finding::Entity::find_by_id(id)
        .filter(finding::Column::OrgId.eq(ctx.org_id))
        .find_also_related(rule::Entity)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("finding"))
}

/// One finding of the org.
///
/// # Errors
/// `NOT_FOUND`.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn get(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<Finding> {
    ctx.require(Permission::Read)?;
    let (row, rule) = find_in_org(&state.db, ctx, id).await?;
    Ok(Finding::from_model(row, rule, Utc::now()))
}

/// A triage decision.
#[derive(Clone, Debug)]
pub struct TriageChange {
    pub state: TriageState,
    pub note: Option<String>,
    /// Required for `accepted_risk`, refused otherwise.
    pub expires_at: Option<DateTime<Utc>>,
}

impl TriageChange {
    /// The note, once the decision is known to be consistent: an accepted risk needs a future
    /// expiry, and only an accepted risk has one.
    ///
    /// # Errors
    /// `VALIDATION_FAILED`.
    pub(super) fn checked_note(&self, now: DateTime<Utc>) -> AppResult<Option<String>> {
        match (self.state, self.expires_at) {
            (TriageState::AcceptedRisk, None) => {
                return Err(AppError::invalid(
                    "expires_at",
                    "is required to accept a risk",
                ))
            }
            (TriageState::AcceptedRisk, Some(at)) if at <= now => {
                return Err(AppError::invalid("expires_at", "must be in the future"))
            }
            (TriageState::AcceptedRisk, Some(_)) | (_, None) => {}
            (_, Some(_)) => {
                return Err(AppError::invalid(
                    "expires_at",
                    "only applies to accepted_risk",
                ))
            }
        }
        self.note
            .as_deref()
            .map(|n| bounded_text("note", n, 4000))
            .transpose()
    }
}

/// Records a triage decision (members), in the audit log too.
///
/// # Errors
/// `NOT_FOUND`, `FORBIDDEN`, `VALIDATION_FAILED`.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn set_state(
    ctx: &Ctx,
    state: &AppState,
    id: Uuid,
    change: TriageChange,
) -> AppResult<Finding> {
    ctx.require(Permission::Write)?;
    let now = Utc::now();
    let note = change.checked_note(now)?;
    let (row, rule) = find_in_org(&state.db, ctx, id).await?;
    let before = Finding::from_model(row.clone(), None, now).triage.state;
    let txn = crate::db::begin_write(&state.db).await?;
    let mut active: finding::ActiveModel = row.into();
    active.triage_state = Set(change.state.as_str().into());
    active.triage_note = Set(note);
    active.triage_expires_at = Set(change.expires_at);
    active.triaged_by = Set(Some(ctx.actor_label()));
    active.triaged_at = Set(Some(now));
    active.updated_at = Set(now);
    let row = active.update(&txn).await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "finding.triage", "finding", row.id).with_details(serde_json::json!({
            "from": before.as_str(),
            "to": change.state.as_str(),
            "expires_at": change.expires_at,
        })),
    )
    .await?;
    crate::webhooks::finding_triaged(&txn, &state.config, &row, before.as_str()).await?;
    txn.commit().await?;
    Ok(Finding::from_model(row, rule, now))
}

/// Comments on a finding, oldest first, a page at a time.
///
/// # Errors
/// `NOT_FOUND`.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn comments(
    ctx: &Ctx,
    state: &AppState,
    finding_id: Uuid,
    window: Window,
) -> AppResult<Paged<Comment>> {
    ctx.require(Permission::Read)?;
    find_in_org(&state.db, ctx, finding_id).await?;
    let query = comment::Entity::find().filter(comment::Column::FindingId.eq(finding_id));
    let total = query.clone().count(&state.db).await?;
    let items = query
        .order_by_asc(comment::Column::CreatedAt)
        .order_by_asc(comment::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .all(&state.db)
        .await?
        .into_iter()
        .map(Comment::from)
        .collect();
    Ok(Paged {
        items,
        total,
        window,
    })
}

/// Adds a comment (members).
///
/// # Errors
/// `NOT_FOUND`, `FORBIDDEN`, `VALIDATION_FAILED`.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn add_comment(
    ctx: &Ctx,
    state: &AppState,
    finding_id: Uuid,
    body: &str,
) -> AppResult<Comment> {
    ctx.require(Permission::Write)?;
    let body = bounded_text("body", body, 10_000)?;
    find_in_org(&state.db, ctx, finding_id).await?;
    let txn = crate::db::begin_write(&state.db).await?;
    let row = comment::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(ctx.org_id),
        finding_id: Set(finding_id),
        author_id: Set(ctx.user_id()),
        author_label: Set(ctx.actor_label()),
        body: Set(body),
        created_at: Set(Utc::now()),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "comment.create", "comment", row.id)
            .with_details(serde_json::json!({"finding_id": finding_id})),
    )
    .await?;
    txn.commit().await?;
    Ok(row.into())
}

/// Deletes a comment: its author may, and admins may.
///
/// # Errors
/// `NOT_FOUND`, `FORBIDDEN`.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn delete_comment(
    ctx: &Ctx,
    state: &AppState,
    id: Uuid,
    on_finding: Option<Uuid>,
) -> AppResult<()> {
    ctx.require(Permission::Write)?;
    let row = comment::Entity::find_by_id(id)
        .filter(comment::Column::OrgId.eq(ctx.org_id))
        .one(&state.db)
        .await?
        .filter(|c| on_finding.is_none_or(|f| c.finding_id == f))
        .ok_or_else(|| AppError::not_found("comment"))?;
    let own = row.author_id.is_some() && row.author_id == ctx.user_id();
    if !own {
        ctx.require(Permission::Admin)?;
    }
    let txn = crate::db::begin_write(&state.db).await?;
    comment::Entity::delete_by_id(row.id).exec(&txn).await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "comment.delete", "comment", row.id)
            .with_details(serde_json::json!({"finding_id": row.finding_id})),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}
