//! Every rule about managing webhooks lives here. All of it needs an admin signed in: a
//! webhook sends the org's data wherever its URL says, so a leaked API key must not be able to
//! aim one (as it cannot mint keys or users).

use chrono::{Duration, Utc};
use entity::{target, webhook, webhook_delivery};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde_json::json;
use uuid::Uuid;

use super::guard::Guard;
use super::model::{CreatedWebhook, Webhook, WebhookDelivery, WebhookEventType};
use crate::app::AppState;
use crate::audit::{self, AuditEntry};
use crate::context::{Ctx, Permission};
use crate::error::{AppError, AppResult};
use crate::findings::Severity;
use crate::graphql::pagination::{Paged, Window};
use crate::validate;

const URL_MAX: usize = 2000;
const DESCRIPTION_MAX: usize = 500;

/// A new webhook.
#[derive(Clone, Debug)]
pub struct NewWebhook {
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<WebhookEventType>,
    pub target_id: Option<Uuid>,
    pub min_severity: Option<Severity>,
    pub enabled: bool,
}

/// Changes to a webhook: `None` leaves a field as it is; `Some(None)` clears a filter.
#[derive(Clone, Debug, Default)]
pub struct WebhookUpdate {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    pub events: Option<Vec<WebhookEventType>>,
    pub target_id: Option<Option<Uuid>>,
    pub min_severity: Option<Option<Severity>>,
    pub enabled: Option<bool>,
}

/// The URL, checked by the SSRF guard now (it is checked again at every delivery: DNS may
/// change).
async fn checked_url(state: &AppState, url: &str) -> AppResult<String> {
    if url.len() > URL_MAX {
        return Err(AppError::invalid(
            "url",
            format!("is longer than {URL_MAX} characters"),
        ));
    }
    let dest = Guard::of(&state.config)
        .check(url)
        .await
        .map_err(|message| AppError::invalid("url", message))?;
    Ok(dest.url.to_string())
}

/// The event list as stored: at least one, no duplicates, `ping` not subscribable.
fn stored_events(events: &[WebhookEventType]) -> AppResult<String> {
    let mut names: Vec<&str> = Vec::new();
    for e in events {
        if *e == WebhookEventType::Ping {
            return Err(AppError::invalid(
                "events",
                "ping is sent on request (pingWebhook), not subscribed to",
            ));
        }
        if !names.contains(&e.as_str()) {
            names.push(e.as_str());
        }
    }
    if names.is_empty() {
        return Err(AppError::invalid("events", "name at least one event"));
    }
    Ok(json!(names).to_string())
}

async fn check_target(db: &impl ConnectionTrait, ctx: &Ctx, id: Option<Uuid>) -> AppResult<()> {
    if let Some(id) = id {
        let found = target::Entity::find_by_id(id)
            .filter(target::Column::OrgId.eq(ctx.org_id))
            .count(db)
            .await?;
        if found == 0 {
            return Err(AppError::invalid("target_id", "no such target"));
        }
    }
    Ok(())
}

fn description(value: Option<&str>) -> AppResult<Option<String>> {
    value
        .map(|d| validate::bounded_text("description", d, DESCRIPTION_MAX))
        .transpose()
}

/// A webhook of the caller's org; another org's is `NOT_FOUND`, like a missing one.
async fn find_in_org(db: &impl ConnectionTrait, ctx: &Ctx, id: Uuid) -> AppResult<webhook::Model> {
    webhook::Entity::find_by_id(id)
        .filter(webhook::Column::OrgId.eq(ctx.org_id))
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("webhook"))
}

fn secret_message() -> String {
    "Save this secret — it will not be shown again. Verify each delivery's webhook-signature \
     with it (Standard Webhooks)."
        .into()
}

/// Creates a webhook with a fresh secret (admins, signed in).
///
/// # Errors
/// `SESSION_REQUIRED`, `FORBIDDEN`, `VALIDATION_FAILED` (a URL the SSRF guard refuses among
/// them).
pub async fn create(ctx: &Ctx, state: &AppState, new: NewWebhook) -> AppResult<CreatedWebhook> {
    ctx.require_session_with(Permission::Admin)?;
    let url = checked_url(state, &new.url).await?;
    let events = stored_events(&new.events)?;
    let description = description(new.description.as_deref())?;
    check_target(&state.db, ctx, new.target_id).await?;
    let secret = super::signing::new_secret();
    let now = Utc::now();
    let txn = crate::db::begin_write(&state.db).await?;
    let row = webhook::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(ctx.org_id),
        url: Set(url),
        secret: Set(secret.clone()),
        events: Set(events),
        active: Set(new.enabled),
        created_at: Set(now),
        updated_at: Set(now),
        description: Set(description),
        target_id: Set(new.target_id),
        min_severity: Set(new.min_severity.map(|s| s.as_str().to_string())),
        previous_secret: Set(None),
        previous_secret_expires_at: Set(None),
        failing_since: Set(None),
        disabled_reason: Set(None),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "webhook.create", "webhook", row.id)
            .with_details(json!({"url": row.url, "events": row.events})),
    )
    .await?;
    txn.commit().await?;
    Ok(CreatedWebhook {
        webhook: row.into(),
        secret,
        message: secret_message(),
    })
}

/// The org's webhooks, newest first (admins, signed in).
///
/// # Errors
/// `SESSION_REQUIRED`, `FORBIDDEN`.
pub async fn list(ctx: &Ctx, state: &AppState, window: Window) -> AppResult<Paged<Webhook>> {
    ctx.require_session_with(Permission::Admin)?;
    let query = webhook::Entity::find().filter(webhook::Column::OrgId.eq(ctx.org_id));
    let total = query.clone().count(&state.db).await?;
    let items = query
        .order_by_desc(webhook::Column::CreatedAt)
        .order_by_desc(webhook::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .all(&state.db)
        .await?
        .into_iter()
        .map(Webhook::from)
        .collect();
    Ok(Paged {
        items,
        total,
        window,
    })
}

/// One webhook of the org (admins, signed in).
///
/// # Errors
/// `NOT_FOUND`, `SESSION_REQUIRED`, `FORBIDDEN`.
pub async fn get(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<Webhook> {
    ctx.require_session_with(Permission::Admin)?;
    Ok(find_in_org(&state.db, ctx, id).await?.into())
}

/// Changes a webhook (admins, signed in). Enabling it again forgets its failures.
///
/// # Errors
/// `NOT_FOUND`, `SESSION_REQUIRED`, `FORBIDDEN`, `VALIDATION_FAILED`.
pub async fn update(
    ctx: &Ctx,
    state: &AppState,
    id: Uuid,
    change: WebhookUpdate,
) -> AppResult<Webhook> {
    ctx.require_session_with(Permission::Admin)?;
    let url = match &change.url {
        Some(url) => Some(checked_url(state, url).await?),
        None => None,
    };
    let events = change.events.as_deref().map(stored_events).transpose()?;
    let description = change
        .description
        .as_ref()
        .map(|d| description(d.as_deref()))
        .transpose()?;
    if let Some(target_id) = change.target_id {
        check_target(&state.db, ctx, target_id).await?;
    }
    let txn = crate::db::begin_write(&state.db).await?;
    let row = find_in_org(&txn, ctx, id).await?;
    let mut active: webhook::ActiveModel = row.clone().into();
    if let Some(url) = url {
        active.url = Set(url);
    }
    if let Some(events) = events {
        active.events = Set(events);
    }
    if let Some(description) = description {
        active.description = Set(description);
    }
    if let Some(target_id) = change.target_id {
        active.target_id = Set(target_id);
    }
    if let Some(min) = change.min_severity {
        active.min_severity = Set(min.map(|s| s.as_str().to_string()));
    }
    if let Some(enabled) = change.enabled {
        active.active = Set(enabled);
        if enabled && !row.active {
            active.failing_since = Set(None);
            active.disabled_reason = Set(None);
        }
    }
    active.updated_at = Set(Utc::now());
    let row = active.update(&txn).await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "webhook.update", "webhook", row.id)
            .with_details(json!({"url": row.url, "events": row.events, "enabled": row.active})),
    )
    .await?;
    txn.commit().await?;
    Ok(row.into())
}

/// Deletes a webhook and its delivery log (admins, signed in).
///
/// # Errors
/// `NOT_FOUND`, `SESSION_REQUIRED`, `FORBIDDEN`.
pub async fn delete(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<()> {
    ctx.require_session_with(Permission::Admin)?;
    let txn = crate::db::begin_write(&state.db).await?;
    let row = find_in_org(&txn, ctx, id).await?;
    webhook_delivery::Entity::delete_many()
        .filter(webhook_delivery::Column::WebhookId.eq(row.id))
        .exec(&txn)
        .await?;
    webhook::Entity::delete_by_id(row.id).exec(&txn).await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "webhook.delete", "webhook", row.id)
            .with_details(json!({"url": row.url})),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Gives a webhook a new secret (admins, signed in). The old one keeps signing beside it for
/// the configured overlap, so the receiver can switch without losing a delivery.
///
/// # Errors
/// `NOT_FOUND`, `SESSION_REQUIRED`, `FORBIDDEN`.
pub async fn rotate_secret(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<CreatedWebhook> {
    ctx.require_session_with(Permission::Admin)?;
    let secret = super::signing::new_secret();
    let now = Utc::now();
    let overlap = Duration::seconds(
        i64::try_from(state.config.webhook_secret_overlap_secs).unwrap_or(i64::MAX / 1000),
    );
    let txn = crate::db::begin_write(&state.db).await?;
    let row = find_in_org(&txn, ctx, id).await?;
    let mut active: webhook::ActiveModel = row.clone().into();
    active.previous_secret = Set(Some(row.secret));
    active.previous_secret_expires_at = Set(Some(now + overlap));
    active.secret = Set(secret.clone());
    active.updated_at = Set(now);
    let row = active.update(&txn).await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "webhook.rotate_secret", "webhook", row.id),
    )
    .await?;
    txn.commit().await?;
    Ok(CreatedWebhook {
        webhook: row.into(),
        secret,
        message: secret_message(),
    })
}

/// Sends the webhook a `ping` event now (admins, signed in), whatever its event list.
///
/// # Errors
/// `NOT_FOUND`, `SESSION_REQUIRED`, `FORBIDDEN`.
pub async fn ping(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<WebhookDelivery> {
    ctx.require_session_with(Permission::Admin)?;
    let txn = crate::db::begin_write(&state.db).await?;
    let hook = find_in_org(&txn, ctx, id).await?;
    let delivery = super::events::queue(
        &txn,
        &state.config,
        &hook,
        WebhookEventType::Ping,
        json!({"webhook_id": hook.id, "message": "Rampart test event"}),
        Utc::now(),
    )
    .await?;
    txn.commit().await?;
    state.jobs_wake.notify_one();
    Ok(delivery.into())
}

/// A webhook's deliveries, newest first (admins, signed in).
///
/// # Errors
/// `NOT_FOUND` for another org's webhook, `SESSION_REQUIRED`, `FORBIDDEN`.
pub async fn deliveries(
    ctx: &Ctx,
    state: &AppState,
    webhook_id: Uuid,
    window: Window,
) -> AppResult<Paged<WebhookDelivery>> {
    ctx.require_session_with(Permission::Admin)?;
    find_in_org(&state.db, ctx, webhook_id).await?;
    let query = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::OrgId.eq(ctx.org_id))
        .filter(webhook_delivery::Column::WebhookId.eq(webhook_id));
    let total = query.clone().count(&state.db).await?;
    let items = query
        .order_by_desc(webhook_delivery::Column::CreatedAt)
        .order_by_desc(webhook_delivery::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .all(&state.db)
        .await?
        .into_iter()
        .map(WebhookDelivery::from)
        .collect();
    Ok(Paged {
        items,
        total,
        window,
    })
}

async fn delivery_in_org(
    db: &impl ConnectionTrait,
    ctx: &Ctx,
    id: Uuid,
) -> AppResult<webhook_delivery::Model> {
    webhook_delivery::Entity::find_by_id(id)
        .filter(webhook_delivery::Column::OrgId.eq(ctx.org_id))
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("webhook delivery"))
}

/// One delivery of the org (admins, signed in).
///
/// # Errors
/// `NOT_FOUND`, `SESSION_REQUIRED`, `FORBIDDEN`.
pub async fn delivery(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<WebhookDelivery> {
    ctx.require_session_with(Permission::Admin)?;
    Ok(delivery_in_org(&state.db, ctx, id).await?.into())
}

/// Sends one delivery again, with the same body and `webhook-id` (admins, signed in).
///
/// # Errors
/// `NOT_FOUND`, `CONFLICT` while it is still pending or its webhook is disabled,
/// `SESSION_REQUIRED`, `FORBIDDEN`.
pub async fn redeliver(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<WebhookDelivery> {
    ctx.require_session_with(Permission::Admin)?;
    let txn = crate::db::begin_write(&state.db).await?;
    let row = delivery_in_org(&txn, ctx, id).await?;
    let hook = find_in_org(&txn, ctx, row.webhook_id).await?;
    if !hook.active {
        return Err(AppError::conflict(
            "the webhook is disabled; enable it first",
        ));
    }
    if row.status == "pending" {
        return Err(AppError::conflict("this delivery is still being attempted"));
    }
    let mut active: webhook_delivery::ActiveModel = row.into();
    active.status = Set("pending".into());
    let row = active.update(&txn).await?;
    super::events::enqueue_send(&txn, &state.config, &row).await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "webhook.redeliver", "webhook_delivery", row.id),
    )
    .await?;
    txn.commit().await?;
    state.jobs_wake.notify_one();
    Ok(row.into())
}
