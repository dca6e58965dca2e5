//! Sessions: login, refresh with rotation and reuse detection, logout, switching org.

use async_graphql::SimpleObject;
use chrono::{Duration, Utc};
use entity::{membership, organization, session, user};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use uuid::Uuid;

use super::password;
use super::rate_limit::Decision;
use super::revocation::{self, Revoked};
use super::tokens::{sha256_hex, RefreshToken};
use crate::app::AppState;
use crate::audit::{self, AuditEntry};
use crate::context::{Ctx, RequestMeta, Role};
use crate::error::{AppError, AppResult};
use crate::orgs::Email;

/// Login attempts allowed per client IP in one window.
pub const LOGIN_ATTEMPTS: u32 = 10;
/// The login window, in seconds (15 minutes).
pub const LOGIN_WINDOW_SECS: u64 = 15 * 60;
/// Failed logins allowed per account (from any address) in one window; then every attempt on
/// it is refused until the window ends, whether the account exists or not.
pub const ACCOUNT_FAILURES: u32 = 5;

/// Who a session belongs to and where it acts.
#[derive(Clone, Debug, SimpleObject)]
pub struct SessionUser {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub org_id: Uuid,
    pub org_slug: String,
}

/// A fresh token pair.
#[derive(Clone, Debug, SimpleObject)]
pub struct AuthPayload {
    /// JWT access token for `Authorization: Bearer`.
    pub token: String,
    /// Opaque refresh token; rotated by every refresh.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub user: SessionUser,
}

fn invalid_credentials() -> AppError {
    AppError::unauthenticated("invalid email or password")
}

/// A login attempt's outcome, and the login budget it spent (reported in `RateLimit-*`
/// headers instead of the general budget's).
pub struct LoginAttempt<T> {
    pub budget: Decision,
    pub outcome: AppResult<T>,
}

/// What a correct password step gives: a session, or, for an account with MFA, a challenge
/// for the second step (`super::mfa::complete_login`).
pub enum LoginOutcome {
    Session(AuthPayload),
    MfaChallenge(super::mfa::MfaChallenge),
}

impl LoginOutcome {
    /// The session, unless the account has MFA and a second step is due.
    pub fn into_session(self) -> Option<AuthPayload> {
        match self {
            Self::Session(payload) => Some(payload),
            Self::MfaChallenge(_) => None,
        }
    }
}

/// The failed-login budget of the account named by `email` (normalised as stored), keyed by a
/// digest so no address is kept in the limiter's store.
pub(crate) fn account_bucket(email: &str) -> String {
    let normalised = Email::parse("email", email)
        .map(|e| e.as_str().to_string())
        .unwrap_or_else(|_| email.trim().to_lowercase());
    format!("login-account:{}", sha256_hex(&normalised))
}

/// Signs a user in to their first org (by membership age).
///
/// Refused with `RATE_LIMITED` past 10 attempts per 15 minutes per client address, and past
/// [`ACCOUNT_FAILURES`] failures per 15 minutes on one account from anywhere; otherwise
/// `UNAUTHENTICATED` for a wrong email or password (the same answer for both, in similar time,
/// and the same throttling for accounts that do not exist). Failures write no audit row: the
/// caller is anonymous, and the account's org is not theirs to write into.
pub async fn login(
    state: &AppState,
    meta: &RequestMeta,
    email: &str,
    password: &str,
) -> LoginAttempt<LoginOutcome> {
    login_renewing(state, meta, email, password, None).await
}

/// [`login`], setting `new_password` first when an admin required a new one (the only case
/// it is accepted: otherwise `BAD_REQUEST`). Without it such an account answers
/// `PASSWORD_RESET_REQUIRED`, and only once its current password was given right.
pub async fn login_renewing(
    state: &AppState,
    meta: &RequestMeta,
    email: &str,
    password: &str,
    new_password: Option<&str>,
) -> LoginAttempt<LoginOutcome> {
    let budget = login_budget(state, meta).await;
    let outcome = if budget.allowed {
        login_account(state, meta, email, password, new_password).await
    } else {
        Err(AppError::rate_limited(budget.reset_secs.max(1)))
    };
    LoginAttempt { budget, outcome }
}

/// Counts one login attempt (either step) of the client address.
pub(crate) async fn login_budget(state: &AppState, meta: &RequestMeta) -> Decision {
    let ip = meta.ip.map(|ip| ip.to_string()).unwrap_or_default();
    state
        .limiter
        .hit(&format!("login:{ip}"), LOGIN_ATTEMPTS, LOGIN_WINDOW_SECS)
        .await
}

async fn login_account(
    state: &AppState,
    meta: &RequestMeta,
    email: &str,
    password: &str,
    new_password: Option<&str>,
) -> AppResult<LoginOutcome> {
    let account = account_bucket(email);
    let failures = state
        .limiter
        .peek(&account, ACCOUNT_FAILURES, LOGIN_WINDOW_SECS)
        .await;
    if !failures.allowed {
        return Err(AppError::rate_limited(failures.reset_secs.max(1)));
    }
    match verify_login(state, email, password).await? {
        Some((person, m)) => {
            match (person.must_change_password, new_password) {
                (true, None) => return Err(AppError::password_reset_required()),
                (true, Some(new)) => {
                    crate::accounts::password::renew(state, meta, &person, password, new).await?;
                }
                (false, Some(_)) => {
                    return Err(AppError::bad_request(
                        "this account needs no new password; change it with changePassword",
                    ))
                }
                (false, None) => {}
            }
            match super::mfa::challenge_for(state, &person, &m).await? {
                Some(challenge) => Ok(LoginOutcome::MfaChallenge(challenge)),
                None => sign_in(state, meta, person, m)
                    .await
                    .map(LoginOutcome::Session),
            }
        }
        None => {
            state
                .limiter
                .hit(&account, ACCOUNT_FAILURES, LOGIN_WINDOW_SECS)
                .await;
            Err(invalid_credentials())
        }
    }
}

/// The active account `email` names with its first membership, when `password` is its own.
async fn verify_login(
    state: &AppState,
    email: &str,
    password: &str,
) -> AppResult<Option<(user::Model, membership::Model)>> {
    // A malformed email cannot match; answer exactly as for a wrong one.
    let email = Email::parse("email", email).ok();
    let person = match &email {
        Some(email) => {
            user::Entity::find()
                .filter(user::Column::Email.eq(email.as_str()))
                .one(&state.db)
                .await?
        }
        None => None,
    };
    let matches = password.len() <= password::MAX_LEN
        && password::verify(password, person.as_ref().map(|u| u.password_hash.as_str())).await?;
    let first_membership = match &person {
        Some(p) => {
            membership::Entity::find()
                .filter(membership::Column::UserId.eq(p.id))
                .order_by_asc(membership::Column::CreatedAt)
                .one(&state.db)
                .await?
        }
        None => None,
    };
    match (person, first_membership) {
        (Some(person), Some(m)) if matches && person.is_active => Ok(Some((person, m))),
        (Some(person), _) => {
            tracing::info!(user = %person.id, "login failed");
            Ok(None)
        }
        (None, _) => {
            tracing::info!("login failed for an unknown account");
            Ok(None)
        }
    }
}

/// Opens a session for a verified login (both steps of it, for an account with MFA).
pub(crate) async fn sign_in(
    state: &AppState,
    meta: &RequestMeta,
    person: user::Model,
    m: membership::Model,
) -> AppResult<AuthPayload> {
    let refresh = RefreshToken::mint(Uuid::now_v7());
    let now = Utc::now();
    let row = session::ActiveModel {
        id: Set(refresh.session_id),
        user_id: Set(person.id),
        org_id: Set(m.org_id),
        refresh_hash: Set(refresh.hash()),
        generation: Set(0),
        expires_at: Set(now + Duration::seconds(state.config.refresh_token_ttl_secs)),
        revoked_at: Set(None),
        created_at: Set(now),
        last_used_at: Set(Some(now)),
        ip: Set(meta.ip.map(|ip| ip.to_string())),
        user_agent: Set(meta.user_agent.clone()),
    }
    .insert(&state.db)
    .await?;
    let mut entry = AuditEntry::anonymous(
        meta,
        m.org_id,
        Some((person.id, &person.email)),
        "session.login",
    );
    entry.resource_id = Some(row.id.to_string());
    audit::record(&state.db, entry).await?;
    issue(state, &row, &refresh).await
}

/// Builds the token pair for a session's current state.
async fn issue(
    state: &AppState,
    row: &session::Model,
    refresh: &RefreshToken,
) -> AppResult<AuthPayload> {
    let found = membership::Entity::find()
        .filter(membership::Column::OrgId.eq(row.org_id))
        .filter(membership::Column::UserId.eq(row.user_id))
        .find_also_related(user::Entity)
        .one(&state.db)
        .await?;
    let Some((m, Some(person))) = found else {
        return Err(AppError::unauthenticated(
            "no longer a member of this organization",
        ));
    };
    let org = organization::Entity::find_by_id(row.org_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| AppError::not_found("organization"))?;
    let ttl = state.config.access_token_ttl_secs;
    let token = state
        .jwt
        .issue_access(person.id, org.id, &m.role, row.id, ttl)?;
    Ok(AuthPayload {
        token,
        refresh_token: refresh.encode(),
        expires_in: ttl,
        user: SessionUser {
            id: person.id,
            email: person.email,
            role: Role::parse(&m.role)?,
            org_id: org.id,
            org_slug: org.slug,
        },
    })
}

/// Replaces the session's refresh secret, optionally moving it to another org. Fails when
/// the presented secret is not the current one any more (a concurrent rotation).
async fn rotate(
    state: &AppState,
    row: session::Model,
    expected_hash: &str,
    org_id: Uuid,
) -> AppResult<(session::Model, RefreshToken)> {
    let next = RefreshToken::mint(row.id);
    let now = Utc::now();
    let updated = session::Entity::update_many()
        .col_expr(session::Column::RefreshHash, Expr::value(next.hash()))
        .col_expr(session::Column::Generation, Expr::value(row.generation + 1))
        .col_expr(session::Column::OrgId, Expr::value(org_id))
        .col_expr(session::Column::LastUsedAt, Expr::value(Some(now)))
        .filter(session::Column::Id.eq(row.id))
        .filter(session::Column::RefreshHash.eq(expected_hash))
        .filter(session::Column::RevokedAt.is_null())
        .exec(&state.db)
        .await?;
    if updated.rows_affected != 1 {
        return Err(AppError::unauthenticated("refresh token already used"));
    }
    let row = session::Entity::find_by_id(row.id)
        .one(&state.db)
        .await?
        .ok_or_else(|| AppError::unauthenticated("session ended"))?;
    Ok((row, next))
}

async fn revoke_session(db: &impl sea_orm::ConnectionTrait, id: Uuid) -> AppResult<()> {
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(Some(Utc::now())))
        .filter(session::Column::Id.eq(id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Exchanges a refresh token for a new pair. Presenting a rotated-out token revokes the whole
/// session: one of the two holders is not the rightful one.
///
/// # Errors
/// `UNAUTHENTICATED` for unknown, expired, revoked or reused tokens.
pub async fn refresh(state: &AppState, meta: &RequestMeta, token: &str) -> AppResult<AuthPayload> {
    let presented = RefreshToken::parse(token)
        .ok_or_else(|| AppError::unauthenticated("invalid refresh token"))?;
    let row = session::Entity::find_by_id(presented.session_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| AppError::unauthenticated("invalid refresh token"))?;
    if row.revoked_at.is_some() || row.expires_at <= Utc::now() {
        return Err(AppError::unauthenticated("session ended; sign in again"));
    }
    let presented_hash = presented.hash();
    if presented_hash != row.refresh_hash {
        let txn = crate::db::begin_write(&state.db).await?;
        revoke_session(&txn, row.id).await?;
        let mut entry = AuditEntry::anonymous(meta, row.org_id, None, "session.refresh_reuse");
        entry.actor_user_id = Some(row.user_id);
        entry.resource_id = Some(row.id.to_string());
        audit::record(&txn, entry).await?;
        txn.commit().await?;
        revocation::publish(
            state.bus.as_ref(),
            Revoked::Session {
                user_id: row.user_id,
                session_id: row.id,
            },
        )
        .await;
        tracing::warn!(session = %row.id, "refresh token reuse detected; session revoked");
        return Err(AppError::unauthenticated(
            "refresh token reuse detected; session revoked",
        ));
    }
    let org_id = row.org_id;
    let (row, next) = rotate(state, row, &presented_hash, org_id).await?;
    issue(state, &row, &next).await
}

/// Ends the caller's session; its tokens stop working at once.
///
/// # Errors
/// `SESSION_REQUIRED` for API keys.
pub async fn logout(ctx: &Ctx, state: &AppState) -> AppResult<()> {
    let (user_id, session_id) = ctx.require_session()?;
    let txn = crate::db::begin_write(&state.db).await?;
    revoke_session(&txn, session_id).await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "session.logout", "session", session_id),
    )
    .await?;
    txn.commit().await?;
    revocation::publish(
        state.bus.as_ref(),
        Revoked::Session {
            user_id,
            session_id,
        },
    )
    .await;
    Ok(())
}

/// Moves the caller's session to another org they belong to and issues tokens for it.
///
/// # Errors
/// `SESSION_REQUIRED`; `NOT_FOUND` when not a member of `org_id`.
pub async fn switch_org(ctx: &Ctx, state: &AppState, org_id: Uuid) -> AppResult<AuthPayload> {
    let (user_id, session_id) = ctx.require_session()?;
    membership::Entity::find()
        .filter(membership::Column::OrgId.eq(org_id))
        .filter(membership::Column::UserId.eq(user_id))
        .one(&state.db)
        .await?
        .ok_or_else(|| AppError::not_found("organization"))?;
    let row = session::Entity::find_by_id(session_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| AppError::unauthenticated("session ended"))?;
    let current_hash = row.refresh_hash.clone();
    let (row, next) = rotate(state, row, &current_hash, org_id).await?;
    // Connections opened with the session's old tokens act in the old org: they end.
    revocation::publish(
        state.bus.as_ref(),
        Revoked::Session {
            user_id,
            session_id,
        },
    )
    .await;
    let mut entry = AuditEntry::by(ctx, "session.switch_org", "organization", org_id);
    entry.org_id = org_id;
    audit::record(&state.db, entry).await?;
    issue(state, &row, &next).await
}
