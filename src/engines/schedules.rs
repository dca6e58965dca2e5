//! Schedules: engine scans of one target started by a cron expression read in a time zone.
//!
//! Every worker process polls for due schedules. A firing is claimed in the transaction that
//! queues its scans, by moving `next_run_at` from the value the poller saw to the next
//! occurrence after now (`UPDATE ... WHERE next_run_at = <seen>`): of any number of replicas,
//! one updates the row and the others match nothing, so each firing runs once. The next
//! occurrence is counted from now, not from the missed one, so a deployment that was down
//! fires once for everything it missed.

use std::str::FromStr;
use std::time::Duration;

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use entity::{scan_schedule, target};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use super::service::{self, Origin, SourceRequest};
use super::sources::SourceSpec;
use crate::app::AppState;
use crate::audit::{self, AuditEntry};
use crate::context::{Ctx, Permission};
use crate::error::{AppError, AppResult};

/// How often a worker process looks for due schedules.
const POLL: Duration = Duration::from_secs(2);

/// A schedule as clients see it.
#[derive(Clone, Debug, SimpleObject)]
pub struct ScanSchedule {
    pub id: Uuid,
    pub target_id: Uuid,
    pub engines: Vec<String>,
    /// A server directory, when the source is one.
    pub path: Option<String>,
    /// A git repository (URL or server path), when the source is one.
    pub git_url: Option<String>,
    pub git_reference: Option<String>,
    /// Five fields (minute hour day-of-month month day-of-week), or six with seconds first.
    pub cron: String,
    /// The IANA time zone `cron` is read in.
    pub time_zone: String,
    pub enabled: bool,
    pub next_run_at: Option<DateTime<Utc>>,
    pub last_run_at: Option<DateTime<Utc>>,
    /// The scans of the latest firing (`scans(groupId:)`).
    pub last_group_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl From<scan_schedule::Model> for ScanSchedule {
    fn from(m: scan_schedule::Model) -> Self {
        let source: Option<SourceSpec> = serde_json::from_value(m.source).ok();
        let (path, git_url, git_reference) = match source {
            Some(SourceSpec::Path { path }) => (Some(path.display().to_string()), None, None),
            Some(SourceSpec::Git { url, reference }) => (None, Some(url), reference),
            _ => (None, None, None),
        };
        Self {
            id: m.id,
            target_id: m.target_id,
            engines: serde_json::from_value(m.engines).unwrap_or_default(),
            path,
            git_url,
            git_reference,
            cron: m.cron,
            time_zone: m.time_zone,
            enabled: m.enabled,
            next_run_at: m.next_run_at,
            last_run_at: m.last_run_at,
            last_group_id: m.last_group_id,
            created_at: m.created_at,
        }
    }
}

/// A cron expression and the time zone it is read in.
#[derive(Clone, Debug)]
pub struct When {
    cron: croner::Cron,
    zone: chrono_tz::Tz,
}

impl When {
    /// # Errors
    /// `VALIDATION_FAILED` on `cron` or `time_zone`.
    pub fn parse(cron: &str, zone: &str) -> AppResult<Self> {
        let parsed = croner::Cron::from_str(cron.trim())
            .map_err(|e| AppError::invalid("cron", format!("not a cron expression: {e}")))?;
        let zone = chrono_tz::Tz::from_str(zone.trim())
            .map_err(|_| AppError::invalid("time_zone", format!("unknown time zone {zone:?}")))?;
        Ok(Self { cron: parsed, zone })
    }

    /// The first occurrence strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.zone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// What a client sets on a schedule.
pub struct ScheduleInput {
    pub target_id: Uuid,
    pub engines: Vec<String>,
    pub source: SourceRequest,
    pub cron: String,
    pub time_zone: String,
    pub enabled: bool,
}

/// Creates a schedule (write; a server directory or local repository needs `Engines`).
///
/// # Errors
/// `VALIDATION_FAILED` for the cron, time zone, engines or an archive source; as `startScan`
/// for the source; `NOT_FOUND` for another org's target.
pub async fn create(ctx: &Ctx, state: &AppState, input: ScheduleInput) -> AppResult<ScanSchedule> {
    ctx.require(Permission::Write)?;
    if matches!(input.source, SourceRequest::Archive(_)) {
        return Err(AppError::invalid(
            "source",
            "a schedule scans a server directory or a git repository",
        ));
    }
    let when = When::parse(&input.cron, &input.time_zone)?;
    let source = service::resolve_source(ctx, state, &input.source).await?;
    let engines = service::check_engines(state, &input.engines).await?;
    let target = target::Entity::find_by_id(input.target_id)
        .filter(target::Column::OrgId.eq(ctx.org_id))
        .one(&state.db)
        .await?
        .ok_or_else(|| AppError::not_found("target"))?;
    let now = Utc::now();
    let txn = crate::db::begin_write(&state.db).await?;
    let row = scan_schedule::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(ctx.org_id),
        target_id: Set(target.id),
        engines: Set(serde_json::json!(engines
            .iter()
            .map(|e| e.name())
            .collect::<Vec<_>>())),
        source: Set(serde_json::to_value(&source).map_err(|e| AppError::Internal(e.into()))?),
        cron: Set(input.cron.trim().to_string()),
        time_zone: Set(input.time_zone.trim().to_string()),
        enabled: Set(input.enabled),
        next_run_at: Set(input.enabled.then(|| when.next_after(now)).flatten()),
        last_run_at: Set(None),
        last_group_id: Set(None),
        created_by: Set(Some(ctx.actor_label())),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "scan_schedule.create", "scan_schedule", row.id).with_details(
            serde_json::json!({"target_id": target.id, "engines": row.engines, "source": source.kind(), "cron": row.cron, "time_zone": row.time_zone}),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(row.into())
}

/// The org's schedules.
///
/// # Errors
/// `FORBIDDEN` without read.
pub async fn list(ctx: &Ctx, state: &AppState) -> AppResult<Vec<ScanSchedule>> {
    ctx.require(Permission::Read)?;
    Ok(scan_schedule::Entity::find()
        .filter(scan_schedule::Column::OrgId.eq(ctx.org_id))
        .order_by_asc(scan_schedule::Column::CreatedAt)
        .all(&state.db)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

async fn find(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<scan_schedule::Model> {
    scan_schedule::Entity::find_by_id(id)
        .filter(scan_schedule::Column::OrgId.eq(ctx.org_id))
        .one(&state.db)
        .await?
        .ok_or_else(|| AppError::not_found("schedule"))
}

/// The right a schedule's source needs to be changed.
fn require_for(ctx: &Ctx, row: &scan_schedule::Model) -> AppResult<()> {
    ctx.require(Permission::Write)?;
    match serde_json::from_value::<SourceSpec>(row.source.clone()) {
        Ok(SourceSpec::Git { url, .. }) if !url.starts_with('/') => Ok(()),
        _ => ctx.require(Permission::Engines),
    }
}

/// Changes a schedule's timing or turns it on or off.
///
/// # Errors
/// `NOT_FOUND`, `FORBIDDEN`, `VALIDATION_FAILED`.
pub async fn update(
    ctx: &Ctx,
    state: &AppState,
    id: Uuid,
    cron: Option<String>,
    time_zone: Option<String>,
    enabled: Option<bool>,
) -> AppResult<ScanSchedule> {
    let row = find(ctx, state, id).await?;
    require_for(ctx, &row)?;
    let cron = cron.map_or(row.cron.clone(), |c| c.trim().to_string());
    let zone = time_zone.map_or(row.time_zone.clone(), |z| z.trim().to_string());
    let when = When::parse(&cron, &zone)?;
    let enabled = enabled.unwrap_or(row.enabled);
    let now = Utc::now();
    let txn = crate::db::begin_write(&state.db).await?;
    let mut active: scan_schedule::ActiveModel = row.clone().into();
    active.cron = Set(cron.clone());
    active.time_zone = Set(zone.clone());
    active.enabled = Set(enabled);
    active.next_run_at = Set(enabled.then(|| when.next_after(now)).flatten());
    active.updated_at = Set(now);
    let updated = active.update(&txn).await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "scan_schedule.update", "scan_schedule", id).with_details(
            serde_json::json!({
                "cron": {"from": row.cron, "to": cron},
                "time_zone": {"from": row.time_zone, "to": zone},
                "enabled": {"from": row.enabled, "to": enabled},
            }),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(updated.into())
}

/// Deletes a schedule (its past scans stay).
///
/// # Errors
/// `NOT_FOUND`, `FORBIDDEN`.
pub async fn delete(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<bool> {
    let row = find(ctx, state, id).await?;
    require_for(ctx, &row)?;
    let txn = crate::db::begin_write(&state.db).await?;
    scan_schedule::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "scan_schedule.delete", "scan_schedule", id),
    )
    .await?;
    txn.commit().await?;
    Ok(true)
}

/// Fires due schedules until the process shuts down (run beside the workers).
pub async fn run(state: AppState) {
    loop {
        if let Err(err) = fire_due(&state).await {
            tracing::warn!(error = ?err, "firing scan schedules failed");
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = state.shutdown.cancelled() => return,
        }
    }
}

/// Fires every due schedule this process can claim; returns how many it fired.
///
/// # Errors
/// On database failure.
pub async fn fire_due(state: &AppState) -> AppResult<usize> {
    let now = Utc::now();
    let due = scan_schedule::Entity::find()
        .filter(scan_schedule::Column::Enabled.eq(true))
        .filter(scan_schedule::Column::NextRunAt.lte(now))
        .order_by_asc(scan_schedule::Column::NextRunAt)
        .limit(100)
        .all(&state.db)
        .await?;
    let mut fired = 0;
    for schedule in due {
        match fire(state, &schedule, now).await {
            Ok(true) => fired += 1,
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(schedule = %schedule.id, error = ?err, "a scan schedule could not fire")
            }
        }
    }
    if fired > 0 {
        state.jobs_wake.notify_waiters();
    }
    Ok(fired)
}

/// Claims one firing and queues its scans in the same transaction; false when another
/// replica claimed it first.
async fn fire(
    state: &AppState,
    schedule: &scan_schedule::Model,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let next = When::parse(&schedule.cron, &schedule.time_zone)
        .ok()
        .and_then(|w| w.next_after(now));
    let group_id = Uuid::now_v7();
    let txn = crate::db::begin_write(&state.db).await?;
    let claimed = scan_schedule::Entity::update_many()
        .col_expr(scan_schedule::Column::NextRunAt, Expr::value(next))
        .col_expr(scan_schedule::Column::LastRunAt, Expr::value(Some(now)))
        .col_expr(
            scan_schedule::Column::LastGroupId,
            Expr::value(Some(group_id)),
        )
        .col_expr(scan_schedule::Column::UpdatedAt, Expr::value(now))
        .filter(scan_schedule::Column::Id.eq(schedule.id))
        .filter(scan_schedule::Column::Enabled.eq(true))
        .filter(scan_schedule::Column::NextRunAt.eq(schedule.next_run_at))
        .exec(&txn)
        .await?;
    if claimed.rows_affected != 1 {
        txn.rollback().await?;
        return Ok(false);
    }
    let queued = queue(state, &txn, schedule, group_id, now).await;
    match queued {
        Ok(scans) => {
            txn.commit().await?;
            for scan in &scans {
                let progress = crate::live::ScanProgress::new(
                    scan.id,
                    scan.target_id,
                    crate::scans::ScanStatus::Queued,
                    "queued",
                );
                crate::live::publish(state.bus.as_ref(), schedule.org_id, &progress).await;
            }
            Ok(true)
        }
        Err(err) => {
            // The firing is spent all the same (the next one is due at `next`): a schedule
            // that cannot queue (its target or engine gone) does not retry every poll.
            tracing::warn!(schedule = %schedule.id, error = ?err, "a scan schedule's firing queued nothing");
            txn.rollback().await?;
            scan_schedule::Entity::update_many()
                .col_expr(scan_schedule::Column::NextRunAt, Expr::value(next))
                .col_expr(scan_schedule::Column::LastRunAt, Expr::value(Some(now)))
                .filter(scan_schedule::Column::Id.eq(schedule.id))
                .filter(scan_schedule::Column::NextRunAt.eq(schedule.next_run_at))
                .exec(&state.db)
                .await?;
            Ok(false)
        }
    }
}

async fn queue(
    state: &AppState,
    txn: &sea_orm::DatabaseTransaction,
    schedule: &scan_schedule::Model,
    group_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<Vec<crate::scans::Scan>> {
    let source: SourceSpec = serde_json::from_value(schedule.source.clone())
        .map_err(|e| AppError::Internal(e.into()))?;
    let names: Vec<String> = serde_json::from_value(schedule.engines.clone()).unwrap_or_default();
    let target = target::Entity::find_by_id(schedule.target_id)
        .one(txn)
        .await?
        .ok_or_else(|| AppError::not_found("target"))?;
    let planned: Vec<service::Planned> = names
        .iter()
        .filter_map(|name| super::by_name(name))
        .map(|engine| (Uuid::now_v7(), engine, source.clone()))
        .collect();
    if planned.is_empty() {
        return Err(AppError::invalid(
            "engines",
            "the schedule names no known engine",
        ));
    }
    let label = format!("schedule:{}", schedule.id);
    let origin = Origin {
        org_id: schedule.org_id,
        created_by: label.clone(),
        request_id: format!("schedule-{}", group_id.simple()),
        audit: AuditEntry {
            org_id: schedule.org_id,
            actor_user_id: None,
            actor_api_key_id: None,
            actor_label: label,
            action: "scan.start",
            resource_type: "scan_group",
            resource_id: Some(group_id.to_string()),
            details: None,
            ip: None,
            request_id: None,
        },
    };
    service::record_in(txn, state, origin, &target, group_id, now, &planned).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn occurrences_follow_the_time_zone() {
        let when = When::parse("30 9 * * *", "Europe/Paris").unwrap();
        // 1 December: Paris is UTC+1, so 09:30 there is 08:30 UTC.
        let after = Utc.with_ymd_and_hms(2026, 12, 1, 6, 0, 0).unwrap();
        assert_eq!(
            when.next_after(after),
            Some(Utc.with_ymd_and_hms(2026, 12, 1, 8, 30, 0).unwrap())
        );
        // July: UTC+2.
        let after = Utc.with_ymd_and_hms(2026, 7, 1, 6, 0, 0).unwrap();
        assert_eq!(
            when.next_after(after),
            Some(Utc.with_ymd_and_hms(2026, 7, 1, 7, 30, 0).unwrap())
        );
        assert!(When::parse("every day", "UTC").is_err());
        assert!(When::parse("* * * * *", "Mars/Olympus").is_err());
    }
}
