//! Every rule about API keys lives here.

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use entity::api_key;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use crate::app::AppState;
use crate::audit::{self, AuditEntry};
use crate::auth::tokens;
use crate::context::{Actor, Ctx, Permission, Scope};
use crate::error::{AppError, AppResult};
use crate::graphql::pagination::{Paged, Window};
use crate::validate;

/// A machine credential, as it may be shown (never its secret).
#[derive(Clone, Debug, SimpleObject)]
pub struct ApiKey {
    pub id: Uuid,
    pub label: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    /// `READ`, `WRITE` (which includes read), or `ENGINES` (which includes write).
    pub scopes: Scope,
    pub expires_at: Option<DateTime<Utc>>,
    /// Updated at most once a minute.
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Neither revoked nor expired.
    pub active: bool,
}

impl From<api_key::Model> for ApiKey {
    fn from(m: api_key::Model) -> Self {
        let active = m.revoked_at.is_none() && m.expires_at.is_none_or(|e| e > Utc::now());
        Self {
            id: m.id,
            label: m.label,
            prefix: m.prefix,
            scopes: Scope::parse(&m.scopes).unwrap_or(Scope::Read),
            expires_at: m.expires_at,
            last_used_at: m.last_used_at,
            revoked_at: m.revoked_at,
            created_at: m.created_at,
            active,
        }
    }
}

/// The one scope a key holds for the scopes a client listed: the strongest (`engines` includes
/// `write`, which includes `read`).
///
/// # Errors
/// `VALIDATION_FAILED` for an empty list.
pub fn scope_of(scopes: &[Scope]) -> AppResult<Scope> {
    match scopes {
        [] => Err(AppError::invalid(
            "scopes",
            "must name read, write or engines",
        )),
        _ if scopes.contains(&Scope::Engines) => Ok(Scope::Engines),
        _ if scopes.contains(&Scope::Write) => Ok(Scope::Write),
        _ => Ok(Scope::Read),
    }
}

/// A key just created: the only time its plaintext exists outside the caller.
#[derive(SimpleObject)]
pub struct CreatedApiKey {
    pub api_key: ApiKey,
    /// The secret. Shown once; only its hash is stored.
    pub key: String,
    pub message: String,
}

/// The org's keys (admins).
///
/// # Errors
/// `FORBIDDEN` below admin.
#[tracing::instrument(name = "keys.list", skip_all, fields(org = %ctx.org_id))]
pub async fn list(ctx: &Ctx, state: &AppState, window: Window) -> AppResult<Paged<ApiKey>> {
    ctx.require(Permission::Admin)?;
    let query = api_key::Entity::find().filter(api_key::Column::OrgId.eq(ctx.org_id));
    let total = query.clone().count(&state.db).await?;
    let items = query
        .order_by_desc(api_key::Column::CreatedAt)
        .order_by_desc(api_key::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .all(&state.db)
        .await?
        .into_iter()
        .map(ApiKey::from)
        .collect();
    Ok(Paged {
        items,
        total,
        window,
    })
}

/// Mints a key (admins, signed in: a key cannot mint keys).
///
/// # Errors
/// `SESSION_REQUIRED`, `FORBIDDEN`, `VALIDATION_FAILED`.
#[tracing::instrument(name = "keys.create", skip_all, fields(org = %ctx.org_id))]
pub async fn create(
    ctx: &Ctx,
    state: &AppState,
    label: &str,
    scope: Scope,
    expires_at: Option<DateTime<Utc>>,
) -> AppResult<CreatedApiKey> {
    let user_id = ctx.require_session_with(Permission::Admin)?;
    let label = validate::name("label", label, 100)?;
    if expires_at.is_some_and(|e| e <= Utc::now()) {
        return Err(AppError::invalid("expires_at", "must be in the future"));
    }
    let minted = tokens::new_api_key();
    let txn = crate::db::begin_write(&state.db).await?;
    let row = api_key::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(ctx.org_id),
        created_by: Set(Some(user_id)),
        label: Set(label),
        prefix: Set(minted.display_prefix),
        secret_hash: Set(minted.hash),
        scopes: Set(scope.as_str().into()),
        expires_at: Set(expires_at),
        last_used_at: Set(None),
        revoked_at: Set(None),
        created_at: Set(Utc::now()),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "api_key.create", "api_key", row.id)
            .with_details(serde_json::json!({"label": row.label, "scopes": row.scopes})),
    )
    .await?;
    txn.commit().await?;
    Ok(CreatedApiKey {
        api_key: row.into(),
        key: minted.plaintext,
        message: "Save this key — it will not be shown again".into(),
    })
}

/// Revokes a key of the org (admins, signed in). Revoking twice is harmless.
///
/// # Errors
/// `SESSION_REQUIRED`, `FORBIDDEN`, `NOT_FOUND`.
#[tracing::instrument(name = "keys.revoke", skip_all, fields(org = %ctx.org_id))]
pub async fn revoke(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<ApiKey> {
    ctx.require_session_with(Permission::Admin)?;
    let row = api_key::Entity::find_by_id(id)
        .filter(api_key::Column::OrgId.eq(ctx.org_id))
        .one(&state.db)
        .await?
        .ok_or_else(|| AppError::not_found("api key"))?;
    if row.revoked_at.is_some() {
        return Ok(row.into());
    }
    let txn = crate::db::begin_write(&state.db).await?;
    let mut active: api_key::ActiveModel = row.into();
    active.revoked_at = Set(Some(Utc::now()));
    let row = active.update(&txn).await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "api_key.revoke", "api_key", row.id),
    )
    .await?;
    txn.commit().await?;
    crate::auth::revocation::publish(
        state.bus.as_ref(),
        crate::auth::revocation::Revoked::Key { key_id: row.id },
    )
    .await;
    Ok(row.into())
}

/// The key the caller is using (introspection for machine clients).
///
/// # Errors
/// `BAD_REQUEST` when the caller did not use an API key.
#[tracing::instrument(name = "keys.current", skip_all, fields(org = %ctx.org_id))]
pub async fn current(ctx: &Ctx, state: &AppState) -> AppResult<ApiKey> {
    let Actor::ApiKey { key_id, .. } = &ctx.actor else {
        return Err(AppError::bad_request(
            "this request was not made with an API key",
        ));
    };
    api_key::Entity::find_by_id(*key_id)
        .one(&state.db)
        .await?
        .map(ApiKey::from)
        .ok_or_else(|| AppError::not_found("api key"))
}
