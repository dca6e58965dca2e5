//! Setting a password: changing one's own, an admin requiring a new one, resetting it with a
//! token sent by email. Every path applies the policy (`auth::password_policy`).

use chrono::{Duration, Utc};
use entity::{membership, password_reset, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use super::PasswordResetRequested;
use crate::app::AppState;
use crate::audit::{self, AuditEntry};
use crate::auth::revocation::{self, Revoked};
use crate::auth::tokens::{random_base62, sha256_hex};
use crate::auth::{password, password_policy};
use crate::context::{Ctx, RequestMeta};
use crate::error::{AppError, AppResult};
use crate::orgs::{Email, Member};

/// How long a reset token sent by email stays usable.
pub const RESET_TOKEN_TTL_MINUTES: i64 = 30;
/// Marks a password-reset token (and lets secret scanners recognise a leaked one).
const RESET_TOKEN_PREFIX: &str = "rpr_";
/// Reset requests per client address in one window, and the window (15 minutes).
const RESET_REQUESTS_PER_IP: u32 = 10;
const RESET_WINDOW_SECS: u64 = 15 * 60;
/// Reset mails per account in one window: more requests answer the same and send nothing.
const RESET_MAILS_PER_ACCOUNT: u32 = 3;
/// Wrong current passwords allowed per account in one window when changing it.
const CHANGE_ATTEMPTS: u32 = 10;

const RESET_ANSWER: &str =
    "If an account has this address, a message with a reset token is on its way; the token works once, for 30 minutes.";

/// Stores a new password hash, clears a required reset, and voids reset tokens not yet used.
pub(crate) async fn store(db: &impl ConnectionTrait, user_id: Uuid, hash: String) -> AppResult<()> {
    let now = Utc::now();
    user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(hash))
        .col_expr(user::Column::MustChangePassword, Expr::value(false))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    password_reset::Entity::update_many()
        .col_expr(password_reset::Column::UsedAt, Expr::value(Some(now)))
        .filter(password_reset::Column::UserId.eq(user_id))
        .filter(password_reset::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// The org an account's own actions are audited in: its first membership's.
pub(crate) async fn home_org(db: &impl ConnectionTrait, user_id: Uuid) -> AppResult<Option<Uuid>> {
    Ok(membership::Entity::find()
        .filter(membership::Column::UserId.eq(user_id))
        .order_by_asc(membership::Column::CreatedAt)
        .one(db)
        .await?
        .map(|m| m.org_id))
}

/// Changes the caller's password. Their other sessions end; this one goes on.
///
/// # Errors
/// `SESSION_REQUIRED`; `VALIDATION_FAILED` on `current_password` when it is wrong and on
/// `new_password` when the policy refuses it; `RATE_LIMITED` after repeated wrong guesses.
pub async fn change(ctx: &Ctx, state: &AppState, current: &str, new: &str) -> AppResult<()> {
    let (user_id, session_id) = ctx.require_session()?;
    let person = user::Entity::find_by_id(user_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| AppError::unauthenticated("session ended; sign in again"))?;
    // A stolen access token must not become a way to guess the password.
    let bucket = format!("password-change:{user_id}");
    let budget = state
        .limiter
        .peek(&bucket, CHANGE_ATTEMPTS, RESET_WINDOW_SECS)
        .await;
    if !budget.allowed {
        return Err(AppError::rate_limited(budget.reset_secs.max(1)));
    }
    if current.len() > password_policy::MAX_LEN
        || !password::verify(current, Some(&person.password_hash)).await?
    {
        state
            .limiter
            .hit(&bucket, CHANGE_ATTEMPTS, RESET_WINDOW_SECS)
            .await;
        return Err(AppError::invalid(
            "current_password",
            "is not your current password",
        ));
    }
    password_policy::check("new_password", new, &person.email)?;
    if new == current {
        return Err(AppError::invalid(
            "new_password",
            "must differ from the current password",
        ));
    }
    let hash = password::hash(new).await?;
    let txn = crate::db::begin_write(&state.db).await?;
    store(&txn, user_id, hash).await?;
    let ended = super::sessions::revoke_all(&txn, user_id, Some(session_id)).await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "user.password_change", "user", user_id)
            .with_details(serde_json::json!({ "sessions_ended": ended })),
    )
    .await?;
    txn.commit().await?;
    revocation::publish(state.bus.as_ref(), Revoked::User { user_id }).await;
    Ok(())
}

/// Requires a member to choose a new password at their next sign-in, and ends their sessions
/// now. Signing in then answers `PASSWORD_RESET_REQUIRED` until they set one with
/// `renewPassword` (or a reset by email).
///
/// # Errors
/// As for `status::governed_account`; `CONFLICT` for one's own account.
pub async fn force_reset(ctx: &Ctx, state: &AppState, user_id: Uuid) -> AppResult<Member> {
    let txn = crate::db::begin_write(&state.db).await?;
    super::status::governed_account(ctx, &txn, user_id).await?;
    if ctx.user_id() == Some(user_id) {
        return Err(AppError::conflict(
            "change your own password instead of requiring a reset",
        ));
    }
    user::Entity::update_many()
        .col_expr(user::Column::MustChangePassword, Expr::value(true))
        .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(user::Column::Id.eq(user_id))
        .exec(&txn)
        .await?;
    super::sessions::revoke_all(&txn, user_id, None).await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "user.password_reset_required", "user", user_id),
    )
    .await?;
    txn.commit().await?;
    revocation::publish(state.bus.as_ref(), Revoked::User { user_id }).await;
    crate::orgs::member(ctx, state, user_id).await
}

/// Sets the new password an admin required, for the account signing in with `email` and
/// its current password (checked by the caller, `auth::sessions`).
///
/// # Errors
/// `VALIDATION_FAILED` on `new_password`.
pub(crate) async fn renew(
    state: &AppState,
    meta: &RequestMeta,
    person: &user::Model,
    current: &str,
    new: &str,
) -> AppResult<()> {
    password_policy::check("new_password", new, &person.email)?;
    if new == current {
        return Err(AppError::invalid(
            "new_password",
            "must differ from the current password",
        ));
    }
    let hash = password::hash(new).await?;
    let txn = crate::db::begin_write(&state.db).await?;
    store(&txn, person.id, hash).await?;
    super::sessions::revoke_all(&txn, person.id, None).await?;
    if let Some(org_id) = home_org(&txn, person.id).await? {
        let mut entry = AuditEntry::anonymous(
            meta,
            org_id,
            Some((person.id, &person.email)),
            "user.password_renew",
        );
        entry.resource_type = "user";
        entry.resource_id = Some(person.id.to_string());
        audit::record(&txn, entry).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Sends a reset token to `email` when it names an active account and a mail relay is
/// configured. The answer is the same in every case, and costs the same: one look-up, with the
/// token written and mailed in the background.
///
/// # Errors
/// `RATE_LIMITED` past 10 requests per 15 minutes from one client address.
pub async fn request_reset(
    state: &AppState,
    meta: &RequestMeta,
    email: &str,
) -> AppResult<PasswordResetRequested> {
    let ip = meta.ip.map(|ip| ip.to_string()).unwrap_or_default();
    let budget = state
        .limiter
        .hit(
            &format!("password-reset:{ip}"),
            RESET_REQUESTS_PER_IP,
            RESET_WINDOW_SECS,
        )
        .await;
    if !budget.allowed {
        return Err(AppError::rate_limited(budget.reset_secs.max(1)));
    }
    let answer = PasswordResetRequested {
        message: RESET_ANSWER.to_string(),
    };
    let Ok(email) = Email::parse("email", email) else {
        return Ok(answer);
    };
    let person = user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(&state.db)
        .await?
        .filter(|p| p.is_active);
    match person {
        Some(person) if state.mailer.is_configured() => {
            let (state, meta) = (state.clone(), meta.clone());
            tokio::spawn(async move {
                let user = person.id;
                if let Err(err) = mail_reset_token(&state, &meta, person).await {
                    tracing::warn!(%user, error = ?err, "password reset token not sent");
                }
            });
        }
        Some(person) => {
            tracing::info!(user = %person.id, "password reset requested; no mail relay configured");
        }
        None => tracing::info!("password reset requested for no active account"),
    }
    Ok(answer)
}

/// Writes a fresh reset token for `person` (voiding older ones), audits it and mails it, within
/// the per-account mail budget.
async fn mail_reset_token(
    state: &AppState,
    meta: &RequestMeta,
    person: user::Model,
) -> AppResult<()> {
    let mails = state
        .limiter
        .hit(
            &format!("password-reset-mail:{}", person.id),
            RESET_MAILS_PER_ACCOUNT,
            RESET_WINDOW_SECS,
        )
        .await;
    if !mails.allowed {
        tracing::info!(user = %person.id, "password reset mail withheld: too many requests");
        return Ok(());
    }
    let token = format!("{RESET_TOKEN_PREFIX}{}", random_base62(40));
    let now = Utc::now();
    let txn = crate::db::begin_write(&state.db).await?;
    // Only the newest token works: an older mail lying around is void.
    password_reset::Entity::update_many()
        .col_expr(password_reset::Column::UsedAt, Expr::value(Some(now)))
        .filter(password_reset::Column::UserId.eq(person.id))
        .filter(password_reset::Column::UsedAt.is_null())
        .exec(&txn)
        .await?;
    password_reset::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(person.id),
        token_hash: Set(sha256_hex(&token)),
        expires_at: Set(now + Duration::minutes(RESET_TOKEN_TTL_MINUTES)),
        used_at: Set(None),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    if let Some(org_id) = home_org(&txn, person.id).await? {
        let mut entry = AuditEntry::anonymous(
            meta,
            org_id,
            Some((person.id, &person.email)),
            "user.password_reset_request",
        );
        entry.resource_type = "user";
        entry.resource_id = Some(person.id.to_string());
        audit::record(&txn, entry).await?;
    }
    txn.commit().await?;
    state.mailer.send_later(
        &person.email,
        "Reset your Rampart password",
        format!(
            "Someone (hopefully you) asked to reset the password of the Rampart account {email}.\n\n\
             Reset token: {token}\n\n\
             It works once, within {RESET_TOKEN_TTL_MINUTES} minutes: send it with your new password to \
             POST /api/v1/auth/password-reset/confirm (GraphQL: resetPassword). Every session of the \
             account then ends.\n\nIf you did not ask for this, ignore this message.\n",
            email = person.email,
        ),
    );
    Ok(())
}

/// Sets a new password with a reset token from a mail; the token is spent and every session
/// of the account ends.
///
/// # Errors
/// `UNAUTHENTICATED` for an unknown, used or expired token; `VALIDATION_FAILED` on
/// `new_password`.
pub async fn complete_reset(
    state: &AppState,
    meta: &RequestMeta,
    token: &str,
    new: &str,
) -> AppResult<()> {
    let invalid = || AppError::unauthenticated("this reset token is unknown, used or expired");
    if !token.starts_with(RESET_TOKEN_PREFIX) {
        return Err(invalid());
    }
    let now = Utc::now();
    let row = password_reset::Entity::find()
        .filter(password_reset::Column::TokenHash.eq(sha256_hex(token)))
        .filter(password_reset::Column::UsedAt.is_null())
        .filter(password_reset::Column::ExpiresAt.gt(now))
        .one(&state.db)
        .await?
        .ok_or_else(invalid)?;
    let person = user::Entity::find_by_id(row.user_id)
        .one(&state.db)
        .await?
        .filter(|p| p.is_active)
        .ok_or_else(invalid)?;
    password_policy::check("new_password", new, &person.email)?;
    let hash = password::hash(new).await?;
    let txn = crate::db::begin_write(&state.db).await?;
    // Spent here, conditionally: of two concurrent uses only one gets through.
    let spent = password_reset::Entity::update_many()
        .col_expr(password_reset::Column::UsedAt, Expr::value(Some(now)))
        .filter(password_reset::Column::Id.eq(row.id))
        .filter(password_reset::Column::UsedAt.is_null())
        .exec(&txn)
        .await?
        .rows_affected;
    if spent != 1 {
        return Err(invalid());
    }
    store(&txn, person.id, hash).await?;
    let ended = super::sessions::revoke_all(&txn, person.id, None).await?;
    if let Some(org_id) = home_org(&txn, person.id).await? {
        let mut entry = AuditEntry::anonymous(
            meta,
            org_id,
            Some((person.id, &person.email)),
            "user.password_reset",
        );
        entry.resource_type = "user";
        entry.resource_id = Some(person.id.to_string());
        audit::record(
            &txn,
            entry.with_details(serde_json::json!({ "sessions_ended": ended })),
        )
        .await?;
    }
    txn.commit().await?;
    revocation::publish(state.bus.as_ref(), Revoked::User { user_id: person.id }).await;
    Ok(())
}
