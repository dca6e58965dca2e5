//! Reminders: accepted risks about to lapse are announced once each, a configurable number of
//! days before (`risk_acceptance.expiring` webhooks and notifications). A `reminders` job runs
//! once per period across all replicas (the period's job has a fixed id, as the store sweep's),
//! and each finding remembers the expiry it was announced for (`finding.risk_notice_for`), in
//! the transaction that queues the announcement, so no run announces it twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{finding, job};
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use uuid::Uuid;

use super::model::TriageState;
use crate::app::AppState;
use crate::error::AppResult;
use crate::ingest::jobs::{self, Lease};

/// High half of every reminder job's id; the low half is the period's number.
const REMINDER_ID_TAG: u64 = 0x7265_6d69_6e64_0000;

/// Findings announced per transaction.
const BATCH: u64 = 200;

/// Queues the current period's reminder run unless a process did already, every minute or
/// so, for as long as the workers run.
pub async fn schedule(state: AppState) {
    let period = Ord::max(state.config.reminder_interval_secs, 1);
    let tick = Duration::from_secs(Ord::min(period, 60));
    loop {
        let slot = Ord::max(Utc::now().timestamp(), 0) as u64 / period;
        match enqueue(&state, slot, period).await {
            Ok(true) => state.jobs_wake.notify_one(),
            Ok(false) => {}
            Err(err) => tracing::warn!(error = ?err, "could not queue the reminders"),
        }
        tokio::time::sleep(tick).await;
    }
}

async fn enqueue(state: &AppState, slot: u64, period: u64) -> AppResult<bool> {
    let now = Utc::now();
    let run_at = DateTime::from_timestamp((slot * period) as i64, 0).unwrap_or(now);
    let row = job::ActiveModel {
        id: Set(Uuid::from_u64_pair(REMINDER_ID_TAG, slot)),
        kind: Set(jobs::REMINDERS.into()),
        org_id: Set(None),
        scan_id: Set(None),
        payload: Set(serde_json::json!({})),
        status: Set("queued".into()),
        attempts: Set(0),
        max_attempts: Set(3),
        run_at: Set(run_at),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let inserted = job::Entity::insert(row)
        .on_conflict(OnConflict::column(job::Column::Id).do_nothing().to_owned())
        .exec_without_returning(&state.db)
        .await?;
    Ok(inserted > 0)
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
    let _ = job::Entity::delete_many()
        .filter(job::Column::Kind.eq(jobs::REMINDERS))
        .filter(job::Column::Status.is_in(["done", "failed"]))
        .filter(job::Column::UpdatedAt.lt(Utc::now() - chrono::Duration::days(1)))
        .exec(&state.db)
        .await;
}

/// Announces every accepted risk lapsing within the notice period that has not been announced
/// for its current expiry. Returns how many it announced.
///
/// # Errors
/// On database failure or a lost lease; what was announced before stays announced.
pub async fn remind(state: &AppState, lease: &Lease) -> AppResult<u64> {
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
