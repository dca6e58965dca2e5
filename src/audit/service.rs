use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use entity::audit_event;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Select, Set,
};
use uuid::Uuid;

use crate::app::AppState;
use crate::context::{Ctx, Permission, RequestMeta};
use crate::error::AppResult;
use crate::graphql::pagination::{Paged, Window};

/// One thing worth remembering, before it is written.
pub struct AuditEntry {
    pub org_id: Uuid,
    pub actor_user_id: Option<Uuid>,
    pub actor_api_key_id: Option<Uuid>,
    pub actor_label: String,
    pub action: &'static str,
    pub resource_type: &'static str,
    pub resource_id: Option<String>,
    pub details: Option<serde_json::Value>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
}

impl AuditEntry {
    /// An action taken by the caller in their org.
    pub fn by(
        ctx: &Ctx,
        action: &'static str,
        resource_type: &'static str,
        id: impl ToString,
    ) -> Self {
        Self {
            org_id: ctx.org_id,
            actor_user_id: ctx.user_id(),
            actor_api_key_id: ctx.api_key_id(),
            actor_label: ctx.actor_label(),
            action,
            resource_type,
            resource_id: Some(id.to_string()),
            details: None,
            ip: ctx.meta.ip.map(|ip| ip.to_string()),
            request_id: Some(ctx.meta.request_id.to_string()),
        }
    }

    /// An action by someone not (yet) authenticated, e.g. a login attempt.
    pub fn anonymous(
        meta: &RequestMeta,
        org_id: Uuid,
        user: Option<(Uuid, &str)>,
        action: &'static str,
    ) -> Self {
        Self {
            org_id,
            actor_user_id: user.map(|(id, _)| id),
            actor_api_key_id: None,
            actor_label: user.map(|(_, email)| email.to_string()).unwrap_or_default(),
            action,
            resource_type: "session",
            resource_id: None,
            details: None,
            ip: meta.ip.map(|ip| ip.to_string()),
            request_id: Some(meta.request_id.to_string()),
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

/// Writes an entry (inside the caller's transaction when given one).
///
/// # Errors
/// When the row cannot be written.
#[tracing::instrument(name = "audit.record", skip_all, fields(org = %entry.org_id, action = entry.action))]
pub async fn record(db: &impl ConnectionTrait, entry: AuditEntry) -> AppResult<()> {
    audit_event::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(entry.org_id),
        actor_user_id: Set(entry.actor_user_id),
        actor_api_key_id: Set(entry.actor_api_key_id),
        actor_label: Set(entry.actor_label),
        action: Set(entry.action.to_string()),
        resource_type: Set(entry.resource_type.to_string()),
        resource_id: Set(entry.resource_id),
        ip: Set(entry.ip),
        request_id: Set(entry.request_id),
        details: Set(entry.details.map(|d| d.to_string())),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// A recorded action.
#[derive(Clone, Debug, SimpleObject)]
pub struct AuditEvent {
    pub id: Uuid,
    /// Who acted: an email, or `api-key:<label>`.
    pub actor: String,
    pub actor_user_id: Option<Uuid>,
    pub actor_api_key_id: Option<Uuid>,
    /// e.g. `session.login`, `api_key.create`, `member.remove`.
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    /// Extra facts about the action, as JSON.
    pub details: Option<async_graphql::Json<serde_json::Value>>,
    pub created_at: DateTime<Utc>,
}

impl From<audit_event::Model> for AuditEvent {
    fn from(m: audit_event::Model) -> Self {
        Self {
            id: m.id,
            actor: m.actor_label,
            actor_user_id: m.actor_user_id,
            actor_api_key_id: m.actor_api_key_id,
            action: m.action,
            resource_type: m.resource_type,
            resource_id: m.resource_id,
            ip: m.ip,
            request_id: m.request_id,
            details: m
                .details
                .and_then(|d| serde_json::from_str(&d).ok())
                .map(async_graphql::Json),
            created_at: m.created_at,
        }
    }
}

/// Which audit events to list or export; every condition given must hold.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Exactly this action, e.g. `scan.delete`.
    pub action: Option<String>,
    /// Who acted: the id of a user or an API key, or the label shown as `actor` (an email,
    /// `api-key:<label>`, `system`).
    pub actor: Option<String>,
    /// Exactly this resource type, e.g. `finding`.
    pub resource_type: Option<String>,
    /// At or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Before this instant.
    pub until: Option<DateTime<Utc>>,
}

impl AuditFilter {
    /// The org's events that pass the filter.
    pub(super) fn query(&self, org_id: Uuid) -> Select<audit_event::Entity> {
        let mut query = audit_event::Entity::find().filter(audit_event::Column::OrgId.eq(org_id));
        if let Some(action) = &self.action {
            query = query.filter(audit_event::Column::Action.eq(action.as_str()));
        }
        if let Some(actor) = &self.actor {
            query = query.filter(match Uuid::parse_str(actor) {
                Ok(id) => Condition::any()
                    .add(audit_event::Column::ActorUserId.eq(id))
                    .add(audit_event::Column::ActorApiKeyId.eq(id)),
                Err(_) => Condition::all().add(audit_event::Column::ActorLabel.eq(actor.as_str())),
            });
        }
        if let Some(resource_type) = &self.resource_type {
            query = query.filter(audit_event::Column::ResourceType.eq(resource_type.as_str()));
        }
        if let Some(since) = self.since {
            query = query.filter(audit_event::Column::CreatedAt.gte(since));
        }
        if let Some(until) = self.until {
            query = query.filter(audit_event::Column::CreatedAt.lt(until));
        }
        query
    }
}

/// The org's audit log, newest first (admins only).
///
/// # Errors
/// `FORBIDDEN` below admin.
#[tracing::instrument(name = "audit.list", skip_all, fields(org = %ctx.org_id))]
pub async fn list(
    ctx: &Ctx,
    state: &AppState,
    filter: &AuditFilter,
    window: Window,
) -> AppResult<Paged<AuditEvent>> {
    ctx.require(Permission::Admin)?;
    let query = filter.query(ctx.org_id);
    let total = query.clone().count(&state.db).await?;
    let items = query
        .order_by_desc(audit_event::Column::CreatedAt)
        .order_by_desc(audit_event::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .all(&state.db)
        .await?
        .into_iter()
        .map(AuditEvent::from)
        .collect();
    Ok(Paged {
        items,
        total,
        window,
    })
}
