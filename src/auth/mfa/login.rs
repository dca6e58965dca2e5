//! The second step of a login with MFA: the password step's challenge, then a code.

use entity::{membership, user};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::{accept_within_budget, enabled, factor, MfaChallenge, CHALLENGE_TTL_SECS};
use crate::app::AppState;
use crate::auth::sessions::{self, AuthPayload, LoginAttempt};
use crate::context::RequestMeta;
use crate::error::{AppError, AppResult};

/// The challenge a password step answers for an account with MFA; `None` without MFA.
///
/// # Errors
/// Only on database or signing failure.
pub async fn challenge_for(
    state: &AppState,
    person: &user::Model,
    m: &membership::Model,
) -> AppResult<Option<MfaChallenge>> {
    if !enabled(state, person.id).await? {
        return Ok(None);
    }
    let token = state
        .jwt
        .issue_mfa_challenge(person.id, m.org_id, CHALLENGE_TTL_SECS)?;
    Ok(Some(MfaChallenge {
        token,
        expires_in: CHALLENGE_TTL_SECS,
    }))
}

/// The second step of a login: the challenge of the password step and a TOTP code or an
/// unused recovery code give the session the password step would have given.
///
/// Spends the same budgets as the password step: an attempt of the client address, and, for a
/// wrong code, a failure of the account.
pub async fn complete_login(
    state: &AppState,
    meta: &RequestMeta,
    challenge: &str,
    code: &str,
) -> LoginAttempt<AuthPayload> {
    let budget = sessions::login_budget(state, meta).await;
    let outcome = if budget.allowed {
        second_step(state, meta, challenge, code).await
    } else {
        Err(AppError::rate_limited(budget.reset_secs.max(1)))
    };
    LoginAttempt { budget, outcome }
}

async fn second_step(
    state: &AppState,
    meta: &RequestMeta,
    challenge: &str,
    code: &str,
) -> AppResult<AuthPayload> {
    let claims = state.jwt.verify_mfa_challenge(challenge)?;
    let ended = || AppError::unauthenticated("MFA challenge no longer valid; sign in again");
    let person = user::Entity::find_by_id(claims.sub)
        .one(&state.db)
        .await?
        .filter(|p| p.is_active)
        .ok_or_else(ended)?;
    let m = membership::Entity::find()
        .filter(membership::Column::OrgId.eq(claims.org))
        .filter(membership::Column::UserId.eq(person.id))
        .one(&state.db)
        .await?
        .ok_or_else(ended)?;
    let f = factor(state, person.id)
        .await?
        .filter(|f| f.confirmed_at.is_some())
        .ok_or_else(ended)?;
    if !accept_within_budget(state, &person.email, &f, code, true).await? {
        tracing::info!(user = %person.id, "MFA step of a login failed");
        return Err(AppError::unauthenticated("invalid MFA code"));
    }
    sessions::sign_in(state, meta, person, m).await
}
