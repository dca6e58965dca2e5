//! The API shapes of webhooks and their deliveries. The secret is never among them, except in
//! the answer that creates or rotates it ([`CreatedWebhook`]).

use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{webhook, webhook_attempt, webhook_delivery};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::findings::Severity;

/// What a webhook can be told about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Enum)]
pub enum WebhookEventType {
    /// A scan completed (`scan.completed`).
    ScanCompleted,
    /// A scan failed (`scan.failed`).
    ScanFailed,
    /// A scan found findings not seen before, one delivery per scan (`finding.new`).
    FindingNew,
    /// Someone recorded a triage decision on a finding (`finding.triaged`).
    FindingTriaged,
    /// An accepted risk lapses within the notice period, once per acceptance
    /// (`risk_acceptance.expiring`).
    RiskAcceptanceExpiring,
    /// An open finding passed its SLA due date, once per finding (`sla.breached`).
    SlaBreached,
    /// A test event, sent on request only (`ping`).
    Ping,
}

impl WebhookEventType {
    /// The event's name in payloads (`type`) and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ScanCompleted => "scan.completed",
            Self::ScanFailed => "scan.failed",
            Self::FindingNew => "finding.new",
            Self::FindingTriaged => "finding.triaged",
            Self::RiskAcceptanceExpiring => "risk_acceptance.expiring",
            Self::SlaBreached => "sla.breached",
            Self::Ping => "ping",
        }
    }

    /// # Errors
    /// When `value` names no event.
    pub fn parse(value: &str) -> AppResult<Self> {
        [
            Self::ScanCompleted,
            Self::ScanFailed,
            Self::FindingNew,
            Self::FindingTriaged,
            Self::RiskAcceptanceExpiring,
            Self::SlaBreached,
            Self::Ping,
        ]
        .into_iter()
        .find(|e| e.as_str() == value)
        .ok_or_else(|| AppError::invalid("events", format!("unknown event {value:?}")))
    }
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
pub enum DeliveryStatus {
    /// Queued or waiting for a retry.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// No attempt left, or the endpoint is disabled.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    fn parse(value: &str) -> Self {
        match value {
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// An outgoing webhook of the caller's org (admins see them; the secret never shows).
#[derive(Clone, Debug, SimpleObject)]
pub struct Webhook {
    pub id: Uuid,
    /// Where deliveries are POSTed.
    pub url: String,
    pub description: Option<String>,
    /// The events it is sent.
    pub events: Vec<WebhookEventType>,
    /// Only events about this target, when set.
    pub target_id: Option<Uuid>,
    /// Only findings at least this severe (`finding.new`, `finding.triaged`), when set.
    pub min_severity: Option<Severity>,
    /// Deliveries go out only while enabled.
    pub enabled: bool,
    /// Why it was disabled automatically (410 Gone, failing too long), if it was.
    pub disabled_reason: Option<String>,
    /// Since when deliveries fail without a success, if they do.
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the secret before the last rotation still signs deliveries too.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The stored event list; names that no longer exist are skipped.
pub fn events_of(stored: &str) -> Vec<WebhookEventType> {
    serde_json::from_str::<Vec<String>>(stored)
        .unwrap_or_default()
        .iter()
        .filter_map(|e| WebhookEventType::parse(e).ok())
        .collect()
}

impl From<webhook::Model> for Webhook {
    fn from(m: webhook::Model) -> Self {
        let now = Utc::now();
        Self {
            id: m.id,
            events: events_of(&m.events),
            url: m.url,
            description: m.description,
            target_id: m.target_id,
            min_severity: m
                .min_severity
                .as_deref()
                .and_then(|s| Severity::parse(s).ok()),
            enabled: m.active,
            disabled_reason: m.disabled_reason,
            failing_since: m.failing_since,
            previous_secret_expires_at: m.previous_secret_expires_at.filter(|at| *at > now),
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// A webhook with its signing secret: the answer to creating one or rotating its secret, the
/// only place the secret ever shows.
#[derive(SimpleObject)]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    /// `whsec_` + base64: verify deliveries' `webhook-signature` with it (Standard Webhooks).
    pub secret: String,
    pub message: String,
}

/// One attempt to send a delivery.
#[derive(Clone, Debug, SimpleObject)]
pub struct WebhookAttempt {
    pub attempted_at: DateTime<Utc>,
    /// The HTTP status of the answer, if one came.
    pub status_code: Option<i32>,
    pub latency_ms: Option<i32>,
    /// The start of the answer's body (at most 1 KiB).
    pub response_excerpt: Option<String>,
    /// Why the attempt failed, if it did.
    pub error: Option<String>,
}

impl From<webhook_attempt::Model> for WebhookAttempt {
    fn from(m: webhook_attempt::Model) -> Self {
        Self {
            attempted_at: m.attempted_at,
            status_code: m.status_code,
            latency_ms: m.latency_ms,
            response_excerpt: m.response_excerpt,
            error: m.error,
        }
    }
}

/// One event sent (or to be sent) to a webhook, with its last attempt.
#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex)]
pub struct WebhookDelivery {
    /// Also the `webhook-id` header: the same on every attempt and redelivery, so receivers
    /// can drop duplicates.
    pub id: Uuid,
    #[graphql(skip)]
    pub org_id: Uuid,
    pub webhook_id: Uuid,
    /// The event's name (`scan.completed`, …).
    pub event: String,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: i32,
    /// The HTTP status of the last answer, if one came.
    pub status_code: Option<i32>,
    /// How long the last attempt took.
    pub latency_ms: Option<i32>,
    /// The start of the last answer's body (at most 1 KiB).
    pub response_excerpt: Option<String>,
    /// Why the last attempt failed, if it did.
    pub error: Option<String>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The JSON body sent.
    pub payload: async_graphql::Json<serde_json::Value>,
}

impl From<webhook_delivery::Model> for WebhookDelivery {
    fn from(m: webhook_delivery::Model) -> Self {
        Self {
            id: m.id,
            org_id: m.org_id,
            webhook_id: m.webhook_id,
            event: m.event,
            status: DeliveryStatus::parse(&m.status),
            attempts: m.attempt,
            status_code: m.status_code,
            latency_ms: m.latency_ms,
            response_excerpt: m.response_excerpt,
            error: m.error,
            last_attempt_at: m.last_attempt_at,
            delivered_at: m.delivered_at,
            created_at: m.created_at,
            payload: async_graphql::Json(
                serde_json::from_str(&m.payload).unwrap_or(serde_json::Value::Null),
            ),
        }
    }
}

#[async_graphql::ComplexObject]
impl WebhookDelivery {
    /// Every attempt so far, oldest first: when, the status, the latency and the answer's start.
    async fn attempt_log(
        &self,
        ctx: &async_graphql::Context<'_>,
    ) -> async_graphql::Result<Vec<WebhookAttempt>> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        let state = crate::graphql::state(ctx);
        // The delivery was read in the caller's org; its attempts carry the same org.
        Ok(webhook_attempt::Entity::find()
            .filter(webhook_attempt::Column::DeliveryId.eq(self.id))
            .filter(webhook_attempt::Column::OrgId.eq(self.org_id))
            .order_by_asc(webhook_attempt::Column::AttemptedAt)
            .order_by_asc(webhook_attempt::Column::Id)
            .all(&state.db)
            .await
            .map_err(crate::error::AppError::from)?
            .into_iter()
            .map(WebhookAttempt::from)
            .collect())
    }
}
