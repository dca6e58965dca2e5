//! TOTP MFA (RFC 6238). A user enrols (a secret, shown once as a QR code), confirms with a
//! first code, and receives ten single-use recovery codes (shown once, stored as digests).
//! From then on the password step of a login answers a short-lived challenge instead of a
//! session, and [`complete_login`] exchanges the challenge and a code for the session.
//!
//! Codes are compared in constant time; a TOTP code is accepted once (the factor keeps the
//! last time step it accepted); every wrong code spends the account's failed-login budget
//! ([`sessions::ACCOUNT_FAILURES`] per window), whether in a login or in disabling MFA.
//!
//! An org may require MFA of its admins and owners. Such an admin without MFA still signs in,
//! but every permission check answers 403 `MFA_REQUIRED` ([`crate::context::Ctx::require`])
//! until they enrol: only the MFA mutations, `me`, signing out and switching org stay open.

pub mod graphql;
mod login;
mod totp;

use async_graphql::SimpleObject;
use chrono::Utc;
use entity::{mfa_factor, mfa_recovery_code, organization};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, Set,
};
use uuid::Uuid;

pub use login::{challenge_for, complete_login};
pub use totp::SecretBox;

use super::sessions;
use crate::app::AppState;
use crate::audit::{self, AuditEntry};
use crate::context::{Actor, Ctx, Role};
use crate::error::{AppError, AppResult};

/// How long the answer of a password step can be completed with a code (5 minutes).
pub const CHALLENGE_TTL_SECS: i64 = 300;

/// What an authenticator app needs to start producing codes. Shown once: the secret is
/// never shown again after enrolment.
#[derive(Clone, Debug, SimpleObject)]
pub struct MfaEnrolment {
    /// The TOTP secret in base32, for typing into an app by hand.
    pub secret: String,
    /// The `otpauth://totp/...` URL the QR code holds.
    pub otpauth_url: String,
    /// The QR code of `otpauthUrl`, as an SVG `data:` URL for an `<img src>`.
    pub qr_code: String,
}

/// Single-use recovery codes, each good for one sign-in without the authenticator. Shown once:
/// only their digests are kept.
#[derive(Clone, Debug, SimpleObject)]
pub struct MfaRecoveryCodes {
    pub codes: Vec<String>,
}

/// The caller's MFA state.
#[derive(Clone, Debug, SimpleObject)]
pub struct MfaStatus {
    /// A confirmed authenticator guards sign-in.
    pub enabled: bool,
    /// An enrolment waits for its confirmation code.
    pub pending: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: i32,
    /// The org requires MFA of admins and the caller has not enabled it: every operation but
    /// enrolment answers `MFA_REQUIRED` until they do.
    pub enrolment_required: bool,
}

/// The answer of a password step on an account with MFA.
#[derive(Clone, Debug)]
pub struct MfaChallenge {
    pub token: String,
    pub expires_in: i64,
}

/// Whether an admin or owner of `org_id` must enrol before doing anything else.
///
/// # Errors
/// Only on database failure.
pub async fn enrolment_required(
    state: &AppState,
    org_id: Uuid,
    user_id: Uuid,
    role: Role,
) -> AppResult<bool> {
    if !matches!(role, Role::Owner | Role::Admin) {
        return Ok(false);
    }
    let required = organization::Entity::find_by_id(org_id)
        .one(&state.db)
        .await?
        .is_some_and(|org| org.require_admin_mfa);
    if !required {
        return Ok(false);
    }
    Ok(!enabled(state, user_id).await?)
}

async fn factor(state: &AppState, user_id: Uuid) -> AppResult<Option<mfa_factor::Model>> {
    Ok(mfa_factor::Entity::find_by_id(user_id)
        .one(&state.db)
        .await?)
}

/// Whether `user_id` has a confirmed authenticator.
///
/// # Errors
/// Only on database failure.
pub async fn enabled(state: &AppState, user_id: Uuid) -> AppResult<bool> {
    Ok(factor(state, user_id)
        .await?
        .is_some_and(|f| f.confirmed_at.is_some()))
}

fn unix_now() -> u64 {
    u64::try_from(Utc::now().timestamp()).unwrap_or_default()
}

/// Accepts `code` for the factor: a TOTP code of a time step after the last one accepted
/// (the step is spent atomically, so a code works once even under concurrent use), or, when
/// `allow_recovery`, an unused recovery code (spent likewise).
async fn accept_code(
    state: &AppState,
    f: &mfa_factor::Model,
    code: &str,
    allow_recovery: bool,
) -> AppResult<bool> {
    if totp::looks_like_totp(code) {
        let secret = state.jwt.mfa_secrets.open(f.user_id, &f.secret_sealed)?;
        let Some(step) = totp::matching_step(&secret, code, unix_now())? else {
            return Ok(false);
        };
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        let spent = mfa_factor::Entity::update_many()
            .col_expr(mfa_factor::Column::LastStep, Expr::value(Some(step)))
            .filter(mfa_factor::Column::UserId.eq(f.user_id))
            .filter(
                Condition::any()
                    .add(mfa_factor::Column::LastStep.is_null())
                    .add(mfa_factor::Column::LastStep.lt(step)),
            )
            .exec(&state.db)
            .await?;
        return Ok(spent.rows_affected == 1);
    }
    if !allow_recovery {
        return Ok(false);
    }
    let spent = mfa_recovery_code::Entity::update_many()
        .col_expr(
            mfa_recovery_code::Column::UsedAt,
            Expr::value(Some(Utc::now())),
        )
        .filter(mfa_recovery_code::Column::UserId.eq(f.user_id))
        .filter(mfa_recovery_code::Column::CodeHash.eq(totp::recovery_code_hash(code)))
        .filter(mfa_recovery_code::Column::UsedAt.is_null())
        .exec(&state.db)
        .await?;
    Ok(spent.rows_affected >= 1)
}

/// [`accept_code`] under the account's failed-login budget: refused with `RATE_LIMITED` once
/// the budget is spent, and a wrong code spends it.
async fn accept_within_budget(
    state: &AppState,
    email: &str,
    f: &mfa_factor::Model,
    code: &str,
    allow_recovery: bool,
) -> AppResult<bool> {
    let bucket = sessions::account_bucket(email);
    let window = sessions::LOGIN_WINDOW_SECS;
    let budget = state
        .limiter
        .peek(&bucket, sessions::ACCOUNT_FAILURES, window)
        .await;
    if !budget.allowed {
        return Err(AppError::rate_limited(budget.reset_secs.max(1)));
    }
    let accepted = accept_code(state, f, code, allow_recovery).await?;
    if !accepted {
        state
            .limiter
            .hit(&bucket, sessions::ACCOUNT_FAILURES, window)
            .await;
    }
    Ok(accepted)
}

fn wrong_code() -> AppError {
    AppError::invalid(
        "code",
        "is not a current code of your authenticator (each code works once)",
    )
}

fn signed_in(ctx: &Ctx) -> AppResult<(Uuid, &str)> {
    ctx.require_session()?;
    match &ctx.actor {
        Actor::User { user_id, email, .. } => Ok((*user_id, email.as_str())),
        Actor::ApiKey { .. } => Err(AppError::session_required()),
    }
}

async fn confirmed_factor(state: &AppState, user_id: Uuid) -> AppResult<mfa_factor::Model> {
    factor(state, user_id)
        .await?
        .filter(|f| f.confirmed_at.is_some())
        .ok_or_else(|| AppError::conflict("MFA is not enabled"))
}

/// Starts an enrolment (replacing one not yet confirmed).
///
/// # Errors
/// `SESSION_REQUIRED` for API keys; `CONFLICT` when MFA is already enabled.
pub async fn enrol(ctx: &Ctx, state: &AppState) -> AppResult<MfaEnrolment> {
    let (user_id, email) = signed_in(ctx)?;
    let secret = totp::new_secret();
    let provisioning = totp::provisioning(&secret, email)?;
    let sealed = state.jwt.mfa_secrets.seal(user_id, &secret)?;
    let txn = crate::db::begin_write(&state.db).await?;
    if let Some(existing) = mfa_factor::Entity::find_by_id(user_id).one(&txn).await? {
        if existing.confirmed_at.is_some() {
            return Err(AppError::conflict(
                "MFA is already enabled; disable it first to enrol another authenticator",
            ));
        }
        mfa_factor::Entity::delete_by_id(user_id).exec(&txn).await?;
    }
    mfa_factor::ActiveModel {
        user_id: Set(user_id),
        secret_sealed: Set(sealed),
        confirmed_at: Set(None),
        last_step: Set(None),
        created_at: Set(Utc::now()),
    }
    .insert(&txn)
    .await?;
    audit::record(&txn, AuditEntry::by(ctx, "mfa.enrol", "user", user_id)).await?;
    txn.commit().await?;
    Ok(MfaEnrolment {
        secret: provisioning.secret_base32,
        otpauth_url: provisioning.otpauth_url,
        qr_code: provisioning.qr_code,
    })
}

/// Replaces the user's recovery codes with fresh ones, returned once.
async fn replace_recovery_codes(
    db: &impl sea_orm::ConnectionTrait,
    user_id: Uuid,
) -> AppResult<MfaRecoveryCodes> {
    mfa_recovery_code::Entity::delete_many()
        .filter(mfa_recovery_code::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    let codes = totp::new_recovery_codes();
    let now = Utc::now();
    mfa_recovery_code::Entity::insert_many(codes.iter().map(|code| {
        mfa_recovery_code::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user_id),
            code_hash: Set(totp::recovery_code_hash(code)),
            used_at: Set(None),
            created_at: Set(now),
        }
    }))
    .exec(db)
    .await?;
    Ok(MfaRecoveryCodes { codes })
}

/// Confirms an enrolment with a first code: MFA is enabled, and the recovery codes are
/// returned (once).
///
/// # Errors
/// `CONFLICT` without a pending enrolment; `VALIDATION_FAILED` (`code`) for a wrong code;
/// `RATE_LIMITED` once the account's failure budget is spent.
pub async fn confirm(ctx: &Ctx, state: &AppState, code: &str) -> AppResult<MfaRecoveryCodes> {
    let (user_id, email) = signed_in(ctx)?;
    let pending = factor(state, user_id)
        .await?
        .filter(|f| f.confirmed_at.is_none())
        .ok_or_else(|| AppError::conflict("no MFA enrolment is waiting; start with enrolMfa"))?;
    if !accept_within_budget(state, email, &pending, code, false).await? {
        return Err(wrong_code());
    }
    let txn = crate::db::begin_write(&state.db).await?;
    let confirmed = mfa_factor::Entity::update_many()
        .col_expr(
            mfa_factor::Column::ConfirmedAt,
            Expr::value(Some(Utc::now())),
        )
        .filter(mfa_factor::Column::UserId.eq(user_id))
        .filter(mfa_factor::Column::ConfirmedAt.is_null())
        .exec(&txn)
        .await?;
    if confirmed.rows_affected != 1 {
        return Err(AppError::conflict("MFA is already enabled"));
    }
    let codes = replace_recovery_codes(&txn, user_id).await?;
    audit::record(&txn, AuditEntry::by(ctx, "mfa.enable", "user", user_id)).await?;
    txn.commit().await?;
    Ok(codes)
}

/// Turns MFA off; needs a current code (or an unused recovery code).
///
/// # Errors
/// `CONFLICT` when MFA is not enabled; `VALIDATION_FAILED` (`code`) for a wrong code;
/// `RATE_LIMITED` once the account's failure budget is spent.
pub async fn disable(ctx: &Ctx, state: &AppState, code: &str) -> AppResult<()> {
    let (user_id, email) = signed_in(ctx)?;
    let f = confirmed_factor(state, user_id).await?;
    if !accept_within_budget(state, email, &f, code, true).await? {
        return Err(wrong_code());
    }
    let txn = crate::db::begin_write(&state.db).await?;
    mfa_recovery_code::Entity::delete_many()
        .filter(mfa_recovery_code::Column::UserId.eq(user_id))
        .exec(&txn)
        .await?;
    mfa_factor::Entity::delete_by_id(user_id).exec(&txn).await?;
    audit::record(&txn, AuditEntry::by(ctx, "mfa.disable", "user", user_id)).await?;
    txn.commit().await?;
    Ok(())
}

/// Replaces the recovery codes (all old ones stop working); needs a current code.
///
/// # Errors
/// As for [`disable`].
pub async fn regenerate_recovery_codes(
    ctx: &Ctx,
    state: &AppState,
    code: &str,
) -> AppResult<MfaRecoveryCodes> {
    let (user_id, email) = signed_in(ctx)?;
    let f = confirmed_factor(state, user_id).await?;
    if !accept_within_budget(state, email, &f, code, false).await? {
        return Err(wrong_code());
    }
    let txn = crate::db::begin_write(&state.db).await?;
    let codes = replace_recovery_codes(&txn, user_id).await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "mfa.recovery_codes_regenerate", "user", user_id),
    )
    .await?;
    txn.commit().await?;
    Ok(codes)
}

/// The caller's MFA state.
///
/// # Errors
/// `SESSION_REQUIRED` for API keys.
pub async fn status(ctx: &Ctx, state: &AppState) -> AppResult<MfaStatus> {
    let (user_id, _) = signed_in(ctx)?;
    let f = factor(state, user_id).await?;
    let left = mfa_recovery_code::Entity::find()
        .filter(mfa_recovery_code::Column::UserId.eq(user_id))
        .filter(mfa_recovery_code::Column::UsedAt.is_null())
        .count(&state.db)
        .await?;
    Ok(MfaStatus {
        enabled: f.as_ref().is_some_and(|f| f.confirmed_at.is_some()),
        pending: f.as_ref().is_some_and(|f| f.confirmed_at.is_none()),
        recovery_codes_left: i32::try_from(left).unwrap_or(i32::MAX),
        enrolment_required: ctx.mfa_enrolment_required,
    })
}
