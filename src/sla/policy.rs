//! The org's SLA policy: days to fix per severity, readable by members, changed by admins.

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use entity::sla_policy;
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};
use uuid::Uuid;

use crate::app::AppState;
use crate::audit::{self, AuditEntry};
use crate::context::{Ctx, Permission};
use crate::error::{AppError, AppResult};
use crate::findings::Severity;

/// Days to fix a finding per severity, counted from when it was first seen; absent means no
/// SLA for that severity. Defaults: critical 7, high 30, medium 90, low 180, info none.
#[derive(Clone, Debug, PartialEq, Eq, SimpleObject, serde::Serialize)]
pub struct SlaPolicy {
    pub critical_days: Option<i32>,
    pub high_days: Option<i32>,
    pub medium_days: Option<i32>,
    pub low_days: Option<i32>,
    pub info_days: Option<i32>,
    /// When an admin last changed it; absent while the defaults apply.
    #[serde(skip)]
    pub updated_at: Option<DateTime<Utc>>,
    /// Who last changed it.
    #[serde(skip)]
    pub updated_by: Option<String>,
}

impl Default for SlaPolicy {
    fn default() -> Self {
        Self {
            critical_days: Some(7),
            high_days: Some(30),
            medium_days: Some(90),
            low_days: Some(180),
            info_days: None,
            updated_at: None,
            updated_by: None,
        }
    }
}

impl From<sla_policy::Model> for SlaPolicy {
    fn from(m: sla_policy::Model) -> Self {
        Self {
            critical_days: m.critical_days,
            high_days: m.high_days,
            medium_days: m.medium_days,
            low_days: m.low_days,
            info_days: m.info_days,
            updated_at: Some(m.updated_at),
            updated_by: m.updated_by,
        }
    }
}

impl SlaPolicy {
    /// Days to fix a finding of this severity.
    pub fn days(&self, severity: Severity) -> Option<i32> {
        match severity {
            Severity::Critical => self.critical_days,
            Severity::High => self.high_days,
            Severity::Medium => self.medium_days,
            Severity::Low => self.low_days,
            Severity::Info => self.info_days,
        }
    }

    fn days_mut(&mut self, severity: Severity) -> &mut Option<i32> {
        match severity {
            Severity::Critical => &mut self.critical_days,
            Severity::High => &mut self.high_days,
            Severity::Medium => &mut self.medium_days,
            Severity::Low => &mut self.low_days,
            Severity::Info => &mut self.info_days,
        }
    }
}

/// The most days a policy may give (ten years).
pub const MAX_DAYS: i32 = 3650;

/// A change to the policy: per severity, `None` leaves it, `Some(None)` removes the SLA,
/// `Some(Some(days))` sets it.
pub type PolicyChange = Vec<(Severity, Option<Option<i32>>)>;

/// The org's policy as stored, or the defaults.
///
/// # Errors
/// Database failure.
pub async fn load_policy(db: &impl ConnectionTrait, org_id: Uuid) -> AppResult<SlaPolicy> {
    Ok(sla_policy::Entity::find_by_id(org_id)
        .one(db)
        .await?
        .map(SlaPolicy::from)
        .unwrap_or_default())
}

/// The caller's org's policy (any member or key).
///
/// # Errors
/// Database failure.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn policy(ctx: &Ctx, state: &AppState) -> AppResult<SlaPolicy> {
    ctx.require(Permission::Read)?;
    load_policy(&state.db, ctx.org_id).await
}

/// Changes the policy (admins), in the audit log with the policy before and after.
///
/// # Errors
/// `FORBIDDEN`, `VALIDATION_FAILED` for days outside 1–3650.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn update_policy(
    ctx: &Ctx,
    state: &AppState,
    change: PolicyChange,
) -> AppResult<SlaPolicy> {
    ctx.require(Permission::Admin)?;
    for (severity, days) in &change {
        if let Some(Some(d)) = days {
            if !(1..=MAX_DAYS).contains(d) {
                return Err(AppError::invalid(
                    &format!("{}_days", severity.as_str()),
                    format!("must be between 1 and {MAX_DAYS} days"),
                ));
            }
        }
    }
    let txn = crate::db::begin_write(&state.db).await?;
    let existing = sla_policy::Entity::find_by_id(ctx.org_id).one(&txn).await?;
    let before = existing.clone().map(SlaPolicy::from).unwrap_or_default();
    let mut after = before.clone();
    for (severity, days) in change {
        if let Some(days) = days {
            *after.days_mut(severity) = days;
        }
    }
    let now = Utc::now();
    let row = sla_policy::ActiveModel {
        org_id: Set(ctx.org_id),
        critical_days: Set(after.critical_days),
        high_days: Set(after.high_days),
        medium_days: Set(after.medium_days),
        low_days: Set(after.low_days),
        info_days: Set(after.info_days),
        updated_by: Set(Some(ctx.actor_label())),
        updated_at: Set(now),
    };
    let row = match existing {
        Some(_) => row.update(&txn).await?,
        None => row.insert(&txn).await?,
    };
    audit::record(
        &txn,
        AuditEntry::by(ctx, "sla_policy.update", "sla_policy", ctx.org_id)
            .with_details(serde_json::json!({"from": before, "to": after})),
    )
    .await?;
    txn.commit().await?;
    Ok(row.into())
}
