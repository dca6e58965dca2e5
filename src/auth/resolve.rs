//! Turns the credential a request carries into a [`Ctx`]. The same code serves GraphQL over
//! HTTP, REST and the WebSocket `connection_init` payload.

use chrono::{DateTime, Utc};
use entity::{api_key, membership, session, user};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::tokens::{looks_like_api_key, sha256_hex};
use crate::app::AppState;
use crate::context::{Actor, Ctx, RequestMeta, Role, Scope};
use crate::error::{AppError, AppResult};

/// A credential as presented.
#[derive(Clone, Debug)]
pub enum Credential {
    /// A JWT access token.
    Access(String),
    /// An `rmp_` API key.
    ApiKey(String),
}

impl Credential {
    /// Classifies a bearer value: API keys have their own shape, everything else is a JWT.
    pub fn from_bearer(value: &str) -> Self {
        let value = value.trim();
        if looks_like_api_key(value) || value.starts_with(super::tokens::API_KEY_PREFIX) {
            Self::ApiKey(value.to_string())
        } else {
            Self::Access(value.to_string())
        }
    }
}

/// A checked credential: the caller, and when the credential stops being valid by itself.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub ctx: Ctx,
    /// The access token's expiry, or the API key's; `None` for a key that never expires.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Checks a credential and builds the caller's context.
///
/// # Errors
/// `UNAUTHENTICATED` for anything invalid, expired or revoked.
pub async fn authenticate(
    state: &AppState,
    credential: &Credential,
    meta: RequestMeta,
) -> AppResult<Ctx> {
    authenticate_until(state, credential, meta)
        .await
        .map(|a| a.ctx)
}

/// [`authenticate`], also saying when the credential expires (long-lived connections stop at
/// that moment).
///
/// # Errors
/// As for [`authenticate`].
pub async fn authenticate_until(
    state: &AppState,
    credential: &Credential,
    meta: RequestMeta,
) -> AppResult<Authenticated> {
    match credential {
        Credential::Access(token) => access_token(state, token, meta).await,
        Credential::ApiKey(key) => api_key(state, key, meta).await,
    }
}

async fn access_token(
    state: &AppState,
    token: &str,
    meta: RequestMeta,
) -> AppResult<Authenticated> {
    let claims = state.jwt.verify_access(token)?;
    // The session is checked on every request, so logout and reuse detection take effect at
    // once rather than when the token expires.
    let live = session::Entity::find_by_id(claims.sid)
        .one(&state.db)
        .await?
        .filter(|s| s.user_id == claims.sub && s.revoked_at.is_none() && s.expires_at > Utc::now());
    let Some(live) = live else {
        return Err(AppError::unauthenticated("session ended; sign in again"));
    };
    if live.org_id != claims.org {
        return Err(AppError::unauthenticated(
            "session switched organization; refresh the token",
        ));
    }
    let found = membership::Entity::find()
        .filter(membership::Column::OrgId.eq(claims.org))
        .filter(membership::Column::UserId.eq(claims.sub))
        .find_also_related(user::Entity)
        .one(&state.db)
        .await?;
    let Some((m, Some(person))) = found else {
        return Err(AppError::unauthenticated(
            "no longer a member of this organization",
        ));
    };
    if !person.is_active {
        return Err(AppError::unauthenticated("account disabled"));
    }
    let role = Role::parse(&m.role)?;
    let mfa_enrolment_required =
        super::mfa::enrolment_required(state, claims.org, person.id, role).await?;
    let ctx = Ctx {
        actor: Actor::User {
            user_id: person.id,
            session_id: live.id,
            email: person.email,
            role,
        },
        org_id: claims.org,
        meta,
        mfa_enrolment_required,
    };
    Ok(Authenticated {
        ctx,
        expires_at: DateTime::from_timestamp(claims.exp, 0),
    })
}

async fn api_key(state: &AppState, key: &str, meta: RequestMeta) -> AppResult<Authenticated> {
    let (row, creator) = api_key::Entity::find()
        .filter(api_key::Column::SecretHash.eq(sha256_hex(key)))
        .find_also_related(user::Entity)
        .one(&state.db)
        .await?
        .ok_or_else(|| AppError::unauthenticated("invalid API key"))?;
    if row.revoked_at.is_some() {
        return Err(AppError::unauthenticated("API key revoked"));
    }
    // The keys a deactivated account created stop with it (until it is reactivated).
    if creator.is_some_and(|u| !u.is_active) {
        return Err(AppError::unauthenticated(
            "API key's creator is deactivated",
        ));
    }
    let now = Utc::now();
    if row.expires_at.is_some_and(|e| e <= now) {
        return Err(AppError::unauthenticated("API key expired"));
    }
    // Noted in memory and stored by a writer of its own: never a write on the request's path.
    state.key_usage.record(row.id, row.last_used_at, now);
    let ctx = Ctx {
        actor: Actor::ApiKey {
            key_id: row.id,
            label: row.label,
            scope: Scope::parse(&row.scopes)?,
        },
        org_id: row.org_id,
        meta,
        mfa_enrolment_required: false,
    };
    Ok(Authenticated {
        ctx,
        expires_at: row.expires_at,
    })
}
