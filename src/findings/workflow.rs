//! Remediation workflow: who is to fix a finding (assignment), and decisions taken on many
//! findings at once (bulk triage), atomically and audited as one event.

use chrono::Utc;
use entity::{comment, finding, membership};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use super::model::Finding;
use super::service::{filtered, find_in_org, FindingFilter, TriageChange};
use crate::app::AppState;
use crate::audit::{self, AuditEntry};
use crate::context::{Ctx, Permission};
use crate::error::{AppError, AppResult};
use crate::notifications;
use crate::validate::bounded_text;

/// Most findings one bulk request may change: one transaction holds them all.
pub const BULK_LIMIT: usize = 10_000;

/// Ids per statement when updating many findings.
const IDS_PER_STATEMENT: usize = 500;

/// Checks that `user_id` is a member of the caller's org.
///
/// # Errors
/// `VALIDATION_FAILED` on `assigneeId` otherwise (nothing about other orgs' users is told).
async fn ensure_member(ctx: &Ctx, state: &AppState, user_id: Uuid) -> AppResult<()> {
    let member = membership::Entity::find()
        .filter(membership::Column::OrgId.eq(ctx.org_id))
        .filter(membership::Column::UserId.eq(user_id))
        .count(&state.db)
        .await?;
    if member == 0 {
        return Err(AppError::invalid(
            "assigneeId",
            "is not a member of this organization",
        ));
    }
    Ok(())
}

/// Assigns a finding to a member of the org, or unassigns it (`None`). Members; audited.
///
/// # Errors
/// `NOT_FOUND`, `FORBIDDEN`, `VALIDATION_FAILED` for a user outside the org.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn assign(
    ctx: &Ctx,
    state: &AppState,
    id: Uuid,
    assignee: Option<Uuid>,
) -> AppResult<Finding> {
    ctx.require(Permission::Write)?;
    let (row, rule) = find_in_org(&state.db, ctx, id).await?;
    if let Some(user_id) = assignee {
        ensure_member(ctx, state, user_id).await?;
    }
    let now = Utc::now();
    let before = row.assignee_id;
    let txn = crate::db::begin_write(&state.db).await?;
    let mut active: finding::ActiveModel = row.into();
    active.assignee_id = Set(assignee);
    active.updated_at = Set(now);
    let row = active.update(&txn).await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "finding.assign", "finding", row.id)
            .with_details(serde_json::json!({"from": before, "to": assignee})),
    )
    .await?;
    let told = match assignee.filter(|a| Some(*a) != before) {
        Some(user_id) => {
            notifications::events::findings_assigned(
                &txn,
                state,
                ctx,
                user_id,
                std::slice::from_ref(&row),
            )
            .await?
        }
        None => None,
    };
    txn.commit().await?;
    if let Some(added) = told {
        notifications::events::publish(state.bus.as_ref(), &[added]).await;
    }
    Ok(Finding::from_model(row, rule, now))
}

/// Which findings a bulk request changes.
#[derive(Clone, Debug)]
pub enum BulkSelection {
    /// These findings, all of the caller's org.
    Ids(Vec<Uuid>),
    /// Every finding the filter selects.
    Filter(Box<FindingFilter>),
}

/// What a bulk request does to each finding; at least one part.
#[derive(Clone, Debug, Default)]
pub struct BulkChange {
    pub triage: Option<TriageChange>,
    /// `Some(None)` unassigns.
    pub assignee: Option<Option<Uuid>>,
    /// A comment added to each.
    pub comment: Option<String>,
}

/// Applies one change to up to [`BULK_LIMIT`] findings in one transaction, recorded as one
/// audit event with the count. Returns how many findings it changed.
///
/// # Errors
/// `FORBIDDEN` below member; `NOT_FOUND` when an id is not one of the org's findings;
/// `VALIDATION_FAILED` for an empty change, an invalid decision, an assignee outside the org,
/// or more than [`BULK_LIMIT`] findings. Nothing changes on any error.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn bulk_triage(
    ctx: &Ctx,
    state: &AppState,
    selection: BulkSelection,
    change: BulkChange,
) -> AppResult<u64> {
    ctx.require(Permission::Write)?;
    let now = Utc::now();
    if change.triage.is_none() && change.assignee.is_none() && change.comment.is_none() {
        return Err(AppError::invalid(
            "input",
            "give a state, an assignee or a comment to apply",
        ));
    }
    let note = change
        .triage
        .as_ref()
        .map(|t| t.checked_note(now))
        .transpose()?
        .flatten();
    let comment_body = change
        .comment
        .as_deref()
        .map(|c| bounded_text("comment", c, 10_000))
        .transpose()?;
    if let Some(Some(user_id)) = change.assignee {
        ensure_member(ctx, state, user_id).await?;
    }
    let ids = selected_ids(ctx, state, &selection).await?;

    let txn = crate::db::begin_write(&state.db).await?;
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let mut update = finding::Entity::update_many()
            .col_expr(finding::Column::UpdatedAt, Expr::value(now))
            .filter(finding::Column::OrgId.eq(ctx.org_id))
            .filter(finding::Column::Id.is_in(chunk.iter().copied()));
        if let Some(triage) = &change.triage {
            update = update
                .col_expr(
                    finding::Column::TriageState,
                    Expr::value(triage.state.as_str()),
                )
                .col_expr(finding::Column::TriageNote, Expr::value(note.clone()))
                .col_expr(
                    finding::Column::TriageExpiresAt,
                    Expr::value(triage.expires_at),
                )
                .col_expr(
                    finding::Column::TriagedBy,
                    Expr::value(Some(ctx.actor_label())),
                )
                .col_expr(finding::Column::TriagedAt, Expr::value(Some(now)));
        }
        if let Some(assignee) = change.assignee {
            update = update.col_expr(finding::Column::AssigneeId, Expr::value(assignee));
        }
        update.exec(&txn).await?;
        if let Some(body) = &comment_body {
            comment::Entity::insert_many(chunk.iter().map(|finding_id| comment::ActiveModel {
                id: Set(Uuid::now_v7()),
                org_id: Set(ctx.org_id),
                finding_id: Set(*finding_id),
                author_id: Set(ctx.user_id()),
                author_label: Set(ctx.actor_label()),
                body: Set(body.clone()),
                created_at: Set(now),
            }))
            .exec_without_returning(&txn)
            .await?;
        }
    }
    let count = ids.len() as u64;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "finding.bulk_triage", "finding", "bulk").with_details(
            serde_json::json!({
                "count": count,
                "state": change.triage.as_ref().map(|t| t.state.as_str()),
                "expires_at": change.triage.as_ref().and_then(|t| t.expires_at),
                "assignee": change.assignee,
                "comment": comment_body.is_some(),
                "by": match &selection {
                    BulkSelection::Ids(_) => "ids",
                    BulkSelection::Filter(_) => "filter",
                },
            }),
        ),
    )
    .await?;
    let told = match change.assignee {
        Some(Some(user_id)) => {
            // The notification names a few; it counts them all.
            let named = ids
                .iter()
                .take(notifications::events::LISTED_FINDINGS as usize)
                .copied();
            let assigned = finding::Entity::find()
                .filter(finding::Column::Id.is_in(named))
                .order_by_asc(finding::Column::Id)
                .all(&txn)
                .await?;
            notifications::events::findings_assigned_count(
                &txn,
                state,
                ctx,
                user_id,
                &assigned,
                ids.len(),
            )
            .await?
        }
        _ => None,
    };
    txn.commit().await?;
    if let Some(added) = told {
        notifications::events::publish(state.bus.as_ref(), &[added]).await;
    }
    Ok(count)
}

/// The ids a selection names, all of the caller's org, at most [`BULK_LIMIT`].
async fn selected_ids(
    ctx: &Ctx,
    state: &AppState,
    selection: &BulkSelection,
) -> AppResult<Vec<Uuid>> {
    let too_many = || {
        AppError::invalid(
            "findings",
            format!("at most {BULK_LIMIT} findings per request; narrow the selection"),
        )
    };
    match selection {
        BulkSelection::Ids(ids) => {
            let mut ids = ids.clone();
            ids.sort_unstable();
            ids.dedup();
            if ids.is_empty() {
                return Err(AppError::invalid("ids", "name at least one finding"));
            }
            if ids.len() > BULK_LIMIT {
                return Err(too_many());
            }
            let mut found = 0usize;
            for chunk in ids.chunks(IDS_PER_STATEMENT) {
                found += finding::Entity::find()
                    .filter(finding::Column::OrgId.eq(ctx.org_id))
                    .filter(finding::Column::Id.is_in(chunk.iter().copied()))
                    .count(&state.db)
                    .await? as usize;
            }
            if found != ids.len() {
                return Err(AppError::not_found("finding"));
            }
            Ok(ids)
        }
        BulkSelection::Filter(filter) => {
            let ids: Vec<Uuid> = filtered(ctx, state, filter, Utc::now())
                .await?
                .select_only()
                .column(finding::Column::Id)
                .limit(BULK_LIMIT as u64 + 1)
                .into_tuple()
                .all(&state.db)
                .await?;
            if ids.len() > BULK_LIMIT {
                return Err(too_many());
            }
            Ok(ids)
        }
    }
}
