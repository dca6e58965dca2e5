//! Turning domain events into deliveries. Each matching webhook gets a `webhook_delivery` row
//! and a `webhook` job, written in the caller's transaction: the event's own write (a scan
//! ending, a triage decision) and its deliveries commit together or not at all, so none is
//! lost to a crash in between.

use chrono::{DateTime, Utc};
use entity::{job, webhook, webhook_delivery};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde_json::json;
use uuid::Uuid;

use super::model::{events_of, WebhookEventType};
use crate::config::Config;
use crate::error::AppResult;
use crate::findings::Severity;
use crate::ingest::jobs;

/// An event, before it is fitted to each webhook.
pub struct Event {
    pub org_id: Uuid,
    pub kind: WebhookEventType,
    /// The target it is about, for webhooks filtered on one.
    pub target_id: Option<Uuid>,
}

/// Whether `hook` is told about `event` (its event list and target filter; severity filters
/// are the caller's, through the data it builds).
fn wants(hook: &webhook::Model, event: &Event) -> bool {
    events_of(&hook.events).contains(&event.kind)
        && match (hook.target_id, event.target_id) {
            (Some(wanted), Some(actual)) => wanted == actual,
            (Some(_), None) => false,
            (None, _) => true,
        }
}

/// The minimum severity a webhook asks for (`info` when none).
pub fn min_severity(hook: &webhook::Model) -> Severity {
    hook.min_severity
        .as_deref()
        .and_then(|s| Severity::parse(s).ok())
        .unwrap_or(Severity::Info)
}

/// Queues `event` for every enabled webhook of its org that wants it. `data` builds the
/// event's `data` for one webhook, or `None` when its filters leave nothing to say.
///
/// # Errors
/// Only on database failure.
pub async fn emit(
    db: &impl ConnectionTrait,
    config: &Config,
    event: Event,
    mut data: impl FnMut(&webhook::Model) -> Option<serde_json::Value>,
) -> AppResult<usize> {
    let hooks = webhook::Entity::find()
        .filter(webhook::Column::OrgId.eq(event.org_id))
        .filter(webhook::Column::Active.eq(true))
        .all(db)
        .await?;
    let now = Utc::now();
    let mut queued = 0;
    for hook in hooks.iter().filter(|h| wants(h, &event)) {
        if let Some(data) = data(hook) {
            queue(db, config, hook, event.kind, data, now).await?;
            queued += 1;
        }
    }
    Ok(queued)
}

/// Writes one delivery of `kind` to `hook` and the job that sends it.
///
/// # Errors
/// Only on database failure.
pub async fn queue(
    db: &impl ConnectionTrait,
    config: &Config,
    hook: &webhook::Model,
    kind: WebhookEventType,
    data: serde_json::Value,
    now: DateTime<Utc>,
) -> AppResult<webhook_delivery::Model> {
    let body = json!({
        "type": kind.as_str(),
        "timestamp": now,
        "data": data,
    });
    let delivery = webhook_delivery::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(hook.org_id),
        webhook_id: Set(hook.id),
        event: Set(kind.as_str().into()),
        payload: Set(body.to_string()),
        status_code: Set(None),
        attempt: Set(0),
        error: Set(None),
        delivered_at: Set(None),
        created_at: Set(now),
        status: Set("pending".into()),
        latency_ms: Set(None),
        response_excerpt: Set(None),
        last_attempt_at: Set(None),
    }
    .insert(db)
    .await?;
    enqueue_send(db, config, &delivery).await?;
    Ok(delivery)
}

/// Queues the job that sends `delivery` (again): one attempt more than the retry schedule has
/// delays.
///
/// # Errors
/// Only on database failure.
pub async fn enqueue_send(
    db: &impl ConnectionTrait,
    config: &Config,
    delivery: &webhook_delivery::Model,
) -> AppResult<()> {
    let now = Utc::now();
    let attempts = i32::try_from(config.webhook_retry_schedule_secs.len()).unwrap_or(i32::MAX - 1);
    job::ActiveModel {
        id: Set(Uuid::now_v7()),
        kind: Set(jobs::WEBHOOK.into()),
        org_id: Set(Some(delivery.org_id)),
        scan_id: Set(None),
        payload: Set(json!({ "delivery": delivery.id })),
        status: Set("queued".into()),
        attempts: Set(0),
        max_attempts: Set(attempts + 1),
        run_at: Set(now),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(())
}
