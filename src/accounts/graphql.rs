use async_graphql::{Context, Object, Result};
use uuid::Uuid;

use super::{PasswordResetRequested, UserSession};
use crate::auth::graphql::{no_store, set_session_cookies};
use crate::auth::sessions::{self, AuthPayload};
use crate::graphql::{caller, meta, state};
use crate::orgs::Member;

#[derive(Default)]
pub struct AccountsQuery;

#[Object]
impl AccountsQuery {
    /// The signed-in person's open sessions, in every org, newest first.
    async fn my_sessions(&self, ctx: &Context<'_>) -> Result<Vec<UserSession>> {
        Ok(super::sessions::list_mine(caller(ctx)?, state(ctx)).await?)
    }
}

#[derive(Default)]
pub struct AccountsMutation;

#[Object]
impl AccountsMutation {
    /// Changes the signed-in person's password (at least 12 characters, not a common password,
    /// not the email). Their other sessions end; this one goes on.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> Result<bool> {
        super::password::change(caller(ctx)?, state(ctx), &current_password, &new_password).await?;
        Ok(true)
    }

    /// Signs in an account an admin required a new password for, setting it: the answer to a
    /// sign-in refused with `PASSWORD_RESET_REQUIRED`. Counts against the sign-in limits.
    async fn renew_password(
        &self,
        ctx: &Context<'_>,
        email: String,
        current_password: String,
        new_password: String,
    ) -> Result<AuthPayload> {
        let attempt = sessions::login_renewing(
            state(ctx),
            &meta(ctx),
            &email,
            &current_password,
            Some(&new_password),
        )
        .await;
        let mut budget = axum::http::HeaderMap::new();
        attempt.budget.write_headers(&mut budget);
        for (name, value) in &budget {
            ctx.insert_http_header(name.clone(), value.clone());
        }
        // An account with MFA still owes its second step: the new password is set, and the
        // person signs in with it (then the code), as after any change.
        let payload = attempt.outcome?.into_session().ok_or_else(|| {
            crate::error::AppError::conflict(
                "the new password is set; sign in with it to give your MFA code",
            )
        })?;
        set_session_cookies(ctx, &payload);
        Ok(payload)
    }

    /// Mails a single-use reset token (valid 30 minutes) to an account's address, when a mail
    /// relay is configured. The answer is the same whether or not the address has an account.
    async fn request_password_reset(
        &self,
        ctx: &Context<'_>,
        email: String,
    ) -> Result<PasswordResetRequested> {
        Ok(super::password::request_reset(state(ctx), &meta(ctx), &email).await?)
    }

    /// Sets a new password with a reset token from a mail. The token is spent, and every
    /// session of the account ends.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        token: String,
        new_password: String,
    ) -> Result<bool> {
        no_store(ctx);
        super::password::complete_reset(state(ctx), &meta(ctx), &token, &new_password).await?;
        Ok(true)
    }

    /// Requires a member to choose a new password at their next sign-in; their sessions end
    /// now (admins, signed in).
    async fn force_password_reset(&self, ctx: &Context<'_>, id: Uuid) -> Result<Member> {
        Ok(super::password::force_reset(caller(ctx)?, state(ctx), id).await?)
    }

    /// Ends one of the signed-in person's sessions.
    async fn revoke_session(&self, ctx: &Context<'_>, id: Uuid) -> Result<bool> {
        super::sessions::revoke_mine(caller(ctx)?, state(ctx), id).await?;
        Ok(true)
    }

    /// Ends every session of the signed-in person but this one; answers how many ended.
    async fn revoke_other_sessions(&self, ctx: &Context<'_>) -> Result<u64> {
        Ok(super::sessions::revoke_others(caller(ctx)?, state(ctx)).await?)
    }
}
