//! Every rule about scans lives here.

use chrono::{DateTime, Utc};
use entity::{finding, job, scan, scan_finding};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::model::{Scan, ScanStatus, ScanSummary};
use crate::app::AppState;
use crate::audit::{self, AuditEntry};
use crate::context::{Ctx, Permission};
use crate::error::{AppError, AppResult};
use crate::findings::Finding;
use crate::graphql::pagination::{OrderDirection, Paged, Window};

/// Which scans to list.
#[derive(Clone, Debug, Default)]
pub struct ScanFilter {
    pub target_id: Option<Uuid>,
    pub status: Vec<ScanStatus>,
    pub group_id: Option<Uuid>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// Sort keys for scans.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, async_graphql::Enum)]
pub enum ScanOrderField {
    #[default]
    ScannedAt,
    CreatedAt,
    Score,
}

/// The org's scans.
///
/// # Errors
/// Only on database failure.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn list(
    ctx: &Ctx,
    state: &AppState,
    filter: &ScanFilter,
    order: (ScanOrderField, OrderDirection),
    window: Window,
) -> AppResult<Paged<Scan>> {
    ctx.require(Permission::Read)?;
    let mut query = scan::Entity::find().filter(scan::Column::OrgId.eq(ctx.org_id));
    if let Some(target_id) = filter.target_id {
        query = query.filter(scan::Column::TargetId.eq(target_id));
    }
    if !filter.status.is_empty() {
        query = query.filter(scan::Column::Status.is_in(filter.status.iter().map(|s| s.as_str())));
    }
    if let Some(group_id) = filter.group_id {
        query = query.filter(scan::Column::GroupId.eq(group_id));
    }
    if let Some(since) = filter.since {
        query = query.filter(scan::Column::ScannedAt.gte(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(scan::Column::ScannedAt.lt(until));
    }
    let total = query.clone().count(&state.db).await?;
    let column = match order.0 {
        ScanOrderField::ScannedAt => scan::Column::ScannedAt,
        ScanOrderField::CreatedAt => scan::Column::CreatedAt,
        ScanOrderField::Score => scan::Column::Score,
    };
    let items = query
        .order_by(column, order.1.order())
        .order_by(scan::Column::Id, order.1.order())
        .offset(window.offset)
        .limit(window.limit)
        .all(&state.db)
        .await?
        .into_iter()
        .map(Scan::from)
        .collect();
    Ok(Paged {
        items,
        total,
        window,
    })
}

pub(crate) async fn find_in_org(
    db: &impl ConnectionTrait,
    ctx: &Ctx,
    id: Uuid,
) -> AppResult<scan::Model> {
    scan::Entity::find_by_id(id)
        .filter(scan::Column::OrgId.eq(ctx.org_id))
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("scan"))
}

/// One scan of the org.
///
/// # Errors
/// `NOT_FOUND`.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn get(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<Scan> {
    ctx.require(Permission::Read)?;
    Ok(find_in_org(&state.db, ctx, id).await?.into())
}

/// Counts, score and timings of a scan.
///
/// # Errors
/// `NOT_FOUND`.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn summary(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<ScanSummary> {
    Ok(ScanSummary::from(&get(ctx, state, id).await?))
}

/// The findings a scan saw.
///
/// # Errors
/// `NOT_FOUND` for a scan outside the org.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn findings(
    ctx: &Ctx,
    state: &AppState,
    scan_id: Uuid,
    severity: &[crate::findings::Severity],
    window: Window,
) -> AppResult<Paged<Finding>> {
    ctx.require(Permission::Read)?;
    find_in_org(&state.db, ctx, scan_id).await?;
    let seen = Query::select()
        .column(scan_finding::Column::FindingId)
        .from(scan_finding::Entity)
        .and_where(Expr::col(scan_finding::Column::ScanId).eq(scan_id))
        .to_owned();
    // From the scan's sightings (the scan is the org's, checked above): the plan does not
    // walk the org's other findings.
    let mut query = finding::Entity::find().filter(finding::Column::Id.in_subquery(seen));
    if !severity.is_empty() {
        query = query.filter(finding::Column::Severity.is_in(severity.iter().map(|s| s.as_str())));
    }
    let total = query.clone().count(&state.db).await?;
    let now = Utc::now();
    let items = query
        .order_by_desc(crate::findings::severity_rank_expr())
        .order_by_asc(finding::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .find_also_related(entity::rule::Entity)
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

/// Two scans of one target to compare; its lists are read a page at a time
/// ([`compare_list`]).
#[derive(Clone, Copy, Debug)]
pub struct ScanComparison {
    pub scan_a: Uuid,
    pub scan_b: Uuid,
    pub target_id: Uuid,
}

/// One list of a comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Seen by `scanB`, not by `scanA`.
    New,
    /// Seen by `scanA`, not by `scanB`.
    Fixed,
    /// Seen by both.
    Unchanged,
}

/// Checks that two scans of the caller's org can be compared.
///
/// # Errors
/// `NOT_FOUND`; `BAD_REQUEST` when the scans belong to different targets.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn compare(ctx: &Ctx, state: &AppState, a: Uuid, b: Uuid) -> AppResult<ScanComparison> {
    ctx.require(Permission::Read)?;
    let scan_a = find_in_org(&state.db, ctx, a).await?;
    let scan_b = find_in_org(&state.db, ctx, b).await?;
    if scan_a.target_id != scan_b.target_id {
        return Err(AppError::bad_request(
            "the two scans belong to different targets",
        ));
    }
    Ok(ScanComparison {
        scan_a: a,
        scan_b: b,
        target_id: scan_a.target_id,
    })
}

/// A sighting of the outer query's finding by `scan`, for `[NOT] EXISTS`.
fn seen_by(scan: Uuid) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .expr(Expr::val(1))
        .from(scan_finding::Entity)
        .and_where(
            Expr::col((scan_finding::Entity, scan_finding::Column::FindingId))
                .equals((finding::Entity, finding::Column::Id)),
        )
        .and_where(Expr::col((scan_finding::Entity, scan_finding::Column::ScanId)).eq(scan))
        .to_owned()
}

/// One page of one list of a comparison, worst first.
///
/// # Errors
/// Only on database failure.
pub async fn compare_list(
    ctx: &Ctx,
    state: &AppState,
    pair: &ScanComparison,
    change: Change,
    window: Window,
) -> AppResult<Paged<Finding>> {
    ctx.require(Permission::Read)?;
    let (in_a, in_b) = (
        Expr::exists(seen_by(pair.scan_a)),
        Expr::exists(seen_by(pair.scan_b)),
    );
    let (in_a, in_b) = match change {
        Change::New => (in_a.not(), in_b),
        Change::Fixed => (in_a, in_b.not()),
        Change::Unchanged => (in_a, in_b),
    };
    let query = finding::Entity::find()
        .filter(finding::Column::OrgId.eq(ctx.org_id))
        .filter(finding::Column::TargetId.eq(pair.target_id))
        .filter(in_a)
        .filter(in_b);
    let total = query.clone().count(&state.db).await?;
    let now = Utc::now();
    let items = query
        .order_by_desc(crate::findings::severity_rank_expr())
        .order_by_asc(finding::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .find_also_related(entity::rule::Entity)
        .all(&state.db)
        .await?
        .into_iter()
        .map(|(row, rule)| Finding::from_model(row, rule, now))
        .collect();
    Ok(Paged {
        items,
        total,
        window,
    })
}

/// Asks a queued or running scan to stop; the worker honours it between batches.
///
/// # Errors
/// `NOT_FOUND`, `FORBIDDEN`, `CONFLICT` when it has already finished.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn cancel(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<Scan> {
    ctx.require(Permission::Write)?;
    let row = find_in_org(&state.db, ctx, id).await?;
    let now = Utc::now();
    // Followers end on a terminal event; a queued scan never reaches a worker that would send
    // one, so the cancellation is recorded and published here.
    let mut progress = crate::live::ScanProgress::new(
        row.id,
        row.target_id,
        ScanStatus::Cancelled,
        ScanStatus::Cancelled.as_str(),
    );
    progress.message = Some("cancelled".into());
    let update = scan::Entity::update_many()
        .col_expr(
            scan::Column::Status,
            Expr::value(ScanStatus::Cancelled.as_str()),
        )
        .col_expr(scan::Column::FinishedAt, Expr::value(Some(now)))
        .col_expr(scan::Column::Error, Expr::value(Some("cancelled")))
        .filter(
            scan::Column::Status.is_in([ScanStatus::Queued.as_str(), ScanStatus::Running.as_str()]),
        );
    let txn = crate::db::begin_write(&state.db).await?;
    if !crate::live::store_progress(&txn, update, &mut progress).await? {
        return Err(AppError::conflict(format!("scan already {}", row.status)));
    }
    audit::record(&txn, AuditEntry::by(ctx, "scan.cancel", "scan", row.id)).await?;
    txn.commit().await?;
    crate::live::publish(state.bus.as_ref(), row.org_id, &progress).await;
    Ok(find_in_org(&state.db, ctx, id).await?.into())
}

/// Runs a failed or cancelled scan again from its stored report (admins): the scan is queued
/// afresh (its error, counts and timings cleared) with a new job. A complete scan is never
/// re-run (its findings are history; upload the report again instead), and a scan whose old
/// job is still winding up (a cancellation its worker has not seen yet) must wait for it.
///
/// # Errors
/// `NOT_FOUND`, `FORBIDDEN`; `CONFLICT` unless the scan is failed or cancelled, when its raw
/// report is no longer stored, or while its old job is still queued or running;
/// `SERVICE_UNAVAILABLE` when the object store cannot say whether the report is there.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn retry(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<Scan> {
    ctx.require(Permission::Admin)?;
    let row = find_in_org(&state.db, ctx, id).await?;
    let retryable = [ScanStatus::Failed.as_str(), ScanStatus::Cancelled.as_str()];
    if !retryable.contains(&row.status.as_str()) {
        return Err(AppError::conflict(format!(
            "only a failed or cancelled scan can be retried; this one is {}",
            row.status
        )));
    }
    let Some(key) = row.raw_key.as_deref() else {
        return Err(AppError::conflict("the scan has no stored report"));
    };
    match state.store.get(key).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Err(AppError::conflict(
                "the scan's raw report is no longer stored",
            ))
        }
        Err(err) => {
            return Err(AppError::unavailable(format!(
                "the object store cannot be read: {err}"
            )))
        }
    }
    let txn = crate::db::begin_write(&state.db).await?;
    let winding_up = job::Entity::find()
        .filter(job::Column::ScanId.eq(row.id))
        .filter(job::Column::Status.is_in(["queued", "running"]))
        .count(&txn)
        .await?;
    if winding_up > 0 {
        return Err(AppError::conflict(
            "the scan's previous run is still winding up; retry in a moment",
        ));
    }
    let mut progress = crate::live::ScanProgress::new(
        row.id,
        row.target_id,
        ScanStatus::Queued,
        ScanStatus::Queued.as_str(),
    );
    let none = |c: scan::Column| (c, Expr::value(Option::<i32>::None));
    let zero = |c: scan::Column| (c, Expr::value(0));
    let mut update = scan::Entity::update_many()
        .col_expr(
            scan::Column::Status,
            Expr::value(ScanStatus::Queued.as_str()),
        )
        .col_expr(scan::Column::Error, Expr::value(Option::<String>::None))
        .col_expr(
            scan::Column::StartedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            scan::Column::FinishedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        );
    let (score, value) = none(scan::Column::Score);
    update = update.col_expr(score, value);
    for column in [
        scan::Column::CountCritical,
        scan::Column::CountHigh,
        scan::Column::CountMedium,
        scan::Column::CountLow,
        scan::Column::CountInfo,
        scan::Column::FindingsTotal,
        scan::Column::FindingsNew,
        scan::Column::FindingsFixed,
        scan::Column::FindingsUnchanged,
    ] {
        let (column, value) = zero(column);
        update = update.col_expr(column, value);
    }
    let update = update.filter(scan::Column::Status.is_in(retryable));
    if !crate::live::store_progress(&txn, update, &mut progress).await? {
        return Err(AppError::conflict("the scan changed meanwhile; look again"));
    }
    crate::ingest::jobs::enqueue(
        &txn,
        crate::ingest::jobs::INGEST,
        row.org_id,
        row.id,
        state.config.job_max_attempts,
        &ctx.meta.request_id,
    )
    .await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "scan.retry", "scan", row.id)
            .with_details(serde_json::json!({ "previous_status": row.status })),
    )
    .await?;
    // Answered as queued, as committed: a worker may pick it up the moment it is.
    let queued = find_in_org(&txn, ctx, id).await?;
    txn.commit().await?;
    crate::live::publish(state.bus.as_ref(), row.org_id, &progress).await;
    state.jobs_wake.notify_waiters();
    Ok(queued.into())
}

/// Deletes a finished scan, its sightings, the findings only it saw, and its raw report; then
/// recomputes the target's latest state (admins).
///
/// # Errors
/// `NOT_FOUND`, `FORBIDDEN`, `CONFLICT` while it is queued or running.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn delete(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<()> {
    ctx.require(Permission::Admin)?;
    let row = find_in_org(&state.db, ctx, id).await?;
    if !ScanStatus::parse(&row.status)?.is_finished() {
        return Err(AppError::conflict(
            "the scan is still running; cancel it first",
        ));
    }
    let txn = crate::db::begin_write(&state.db).await?;
    let seen: Vec<Uuid> = scan_finding::Entity::find()
        .select_only()
        .column(scan_finding::Column::FindingId)
        .filter(scan_finding::Column::ScanId.eq(row.id))
        .into_tuple()
        .all(&txn)
        .await?;
    scan::Entity::delete_by_id(row.id).exec(&txn).await?;
    // Soft references (no foreign key on PostgreSQL, see migration 000005): cleared here.
    for column in [finding::Column::FirstScanId, finding::Column::LastScanId] {
        finding::Entity::update_many()
            .col_expr(column, Expr::value(Option::<Uuid>::None))
            .filter(finding::Column::TargetId.eq(row.target_id))
            .filter(column.eq(row.id))
            .exec(&txn)
            .await?;
    }
    for chunk in seen.chunks(500) {
        let still_seen = Query::select()
            .column(scan_finding::Column::FindingId)
            .from(scan_finding::Entity)
            .and_where(Expr::col(scan_finding::Column::FindingId).is_in(chunk.iter().copied()))
            .to_owned();
        finding::Entity::delete_many()
            .filter(finding::Column::Id.is_in(chunk.iter().copied()))
            .filter(finding::Column::Id.not_in_subquery(still_seen))
            .exec(&txn)
            .await?;
    }
    crate::targets::refresh_latest(&txn, row.target_id).await?;
    audit::record(&txn, AuditEntry::by(ctx, "scan.delete", "scan", row.id)).await?;
    txn.commit().await?;
    if let Some(key) = row.raw_key {
        if let Err(err) = state.store.delete(&key).await {
            tracing::warn!(%key, %err, "raw report left behind after deleting its scan");
        }
    }
    Ok(())
}
