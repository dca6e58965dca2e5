//! Reminders: accepted risks about to lapse are announced once each, a configurable number of
//! days before (`risk_acceptance.expiring` webhooks and notifications), and open findings past
//! their SLA due date once each (`sla.breached`). A `reminders` job runs
//! once per period across all replicas (the period's job has a fixed id, as the store sweep's),
//! and each finding remembers what was announced (`finding.risk_notice_for`, the expiry;
//! `finding.sla_breach_noticed_at`), in the transaction that queues the announcement, so no run
//! announces it twice.

use chrono::Utc;
use entity::{finding, job, organization};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::model::TriageState;
use crate::app::AppState;
use crate::error::AppResult;
use crate::ingest::jobs::{self, Lease};

/// High half of every reminder job's id; the low half is the period's number.
const REMINDER_ID_TAG: u64 = 0x7265_6d69_6e64_0000;

/// Findings announced per transaction.
const BATCH: u64 = 200;

/// The reminder run: one job per period across all replicas.
pub fn periodic(state: &AppState) -> jobs::Periodic {
    jobs::Periodic {
        kind: jobs::REMINDERS,
        tag: REMINDER_ID_TAG,
        period: state.config.reminder_interval_secs,
    }
}

/// Runs a claimed reminder job and records its outcome; finished runs older than a day are
/// forgotten.
pub async fn run_job(state: &AppState, job: &job::Model, lease: &Lease) {
    let outcome = remind(state, lease).await;
    let recorded = match &outcome {
        Ok(_) => jobs::complete(&state.db, lease).await,
        Err(err) => {
            tracing::warn!(error = ?err, "reminders failed");
            let retry_at = jobs::RetryPolicy::of(&state.config).next_run(job.attempts, Utc::now());
            jobs::fail(&state.db, job, lease, &format!("{err:?}"), retry_at).await
        }
    };
    if let Err(err) = recorded {
        tracing::warn!(error = ?err, "could not record the reminders' outcome");
    }
    periodic(state).forget_old(&state.db).await;
}

/// Announces every accepted risk lapsing within the notice period that has not been announced
/// for its current expiry. Returns how many it announced.
///
/// # Errors
/// On database failure or a lost lease; what was announced before stays announced.
pub async fn remind(state: &AppState, lease: &Lease) -> AppResult<u64> {
    Ok(expiring_risks(state, lease).await? + sla_breaches(state, lease).await?)
}

/// Announces accepted risks lapsing within the notice period; returns how many.
async fn expiring_risks(state: &AppState, lease: &Lease) -> AppResult<u64> {
    let now = Utc::now();
    let horizon = now + chrono::Duration::days(i64::from(state.config.risk_expiry_notice_days));
    let mut announced = 0;
    loop {
        let due = finding::Entity::find()
            .filter(finding::Column::TriageState.eq(TriageState::AcceptedRisk.as_str()))
            .filter(finding::Column::TriageExpiresAt.gt(now))
            .filter(finding::Column::TriageExpiresAt.lte(horizon))
            .filter(
                Condition::any()
                    .add(finding::Column::RiskNoticeFor.is_null())
                    .add(
                        Expr::col(finding::Column::RiskNoticeFor)
                            .ne(Expr::col(finding::Column::TriageExpiresAt)),
                    ),
            )
            .order_by_asc(finding::Column::Id)
            .limit(BATCH)
            .all(&state.db)
            .await?;
        if due.is_empty() {
            return Ok(announced);
        }
        let txn = crate::db::begin_write(&state.db).await?;
        lease
            .fence(&txn)
            .await
            .map_err(|e| anyhow::anyhow!("reminders: {e}"))?;
        let mut told = Vec::new();
        for row in &due {
            let Some(expires_at) = row.triage_expires_at else {
                continue;
            };
            crate::webhooks::risk_acceptance_expiring(&txn, &state.config, row, now).await?;
            told.extend(crate::notifications::events::risk_expiring(&txn, state, row, now).await?);
            finding::Entity::update_many()
                .col_expr(
                    finding::Column::RiskNoticeFor,
                    Expr::value(Some(expires_at)),
                )
                .filter(finding::Column::Id.eq(row.id))
                .exec(&txn)
                .await?;
            announced += 1;
        }
        txn.commit().await?;
        crate::notifications::events::publish(state.bus.as_ref(), &told).await;
    }
}

/// Announces open findings past their SLA due date (each org's policy, or a due date set by
/// hand), once per finding; returns how many.
async fn sla_breaches(state: &AppState, lease: &Lease) -> AppResult<u64> {
    let now = Utc::now();
    let orgs: Vec<Uuid> = organization::Entity::find()
        .select_only()
        .column(organization::Column::Id)
        .into_tuple()
        .all(&state.db)
        .await?;
    let mut announced = 0;
    for org_id in orgs {
        let policy = crate::sla::load_policy(&state.db, org_id).await?;
        loop {
            let due = finding::Entity::find()
                .filter(finding::Column::OrgId.eq(org_id))
                .filter(finding::Column::SlaBreachNoticedAt.is_null())
                .filter(crate::sla::state_condition(
                    &policy,
                    crate::sla::SlaState::Breached,
                    now,
                ))
                .order_by_asc(finding::Column::Id)
                .limit(BATCH)
                .all(&state.db)
                .await?;
            if due.is_empty() {
                break;
            }
            let txn = crate::db::begin_write(&state.db).await?;
            lease
                .fence(&txn)
                .await
                .map_err(|e| anyhow::anyhow!("reminders: {e}"))?;
            let mut told = Vec::new();
            for row in &due {
                let severity = crate::findings::Severity::parse(&row.severity)
                    .unwrap_or(crate::findings::Severity::Info);
                let due_at = crate::sla::due_at(&policy, severity, row.first_seen_at, row.due_at);
                crate::webhooks::sla_breached(&txn, &state.config, row, due_at).await?;
                told.extend(
                    crate::notifications::events::sla_breached(&txn, state, row, due_at).await?,
                );
                finding::Entity::update_many()
                    .col_expr(finding::Column::SlaBreachNoticedAt, Expr::value(Some(now)))
                    .filter(finding::Column::Id.eq(row.id))
                    .exec(&txn)
                    .await?;
                announced += 1;
            }
            txn.commit().await?;
            crate::notifications::events::publish(state.bus.as_ref(), &told).await;
        }
    }
    Ok(announced)
}
