use async_graphql::{Context, Object, Result};

use super::{MfaEnrolment, MfaRecoveryCodes, MfaStatus};
use crate::auth::graphql::no_store;
use crate::graphql::{caller, state};

#[derive(Default)]
pub struct MfaQuery;

#[Object]
impl MfaQuery {
    /// The caller's MFA state (signed-in users only).
    async fn mfa_status(&self, ctx: &Context<'_>) -> Result<MfaStatus> {
        Ok(super::status(caller(ctx)?, state(ctx)).await?)
    }
}

#[derive(Default)]
pub struct MfaMutation;

#[Object]
impl MfaMutation {
    /// Starts enrolling an authenticator: its secret, `otpauth://` URL and QR code, shown this
    /// once. MFA is enabled by `confirmMfa` with a first code.
    async fn enrol_mfa(&self, ctx: &Context<'_>) -> Result<MfaEnrolment> {
        no_store(ctx);
        Ok(super::enrol(caller(ctx)?, state(ctx)).await?)
    }

    /// Confirms the enrolment with a current code and enables MFA; answers the ten recovery
    /// codes, shown this once.
    async fn confirm_mfa(&self, ctx: &Context<'_>, code: String) -> Result<MfaRecoveryCodes> {
        no_store(ctx);
        Ok(super::confirm(caller(ctx)?, state(ctx), &code).await?)
    }

    /// Disables MFA; needs a current code (or an unused recovery code).
    async fn disable_mfa(&self, ctx: &Context<'_>, code: String) -> Result<bool> {
        super::disable(caller(ctx)?, state(ctx), &code).await?;
        Ok(true)
    }

    /// Replaces the recovery codes (the old ones stop working); needs a current code. Answers
    /// the new codes, shown this once.
    async fn regenerate_recovery_codes(
        &self,
        ctx: &Context<'_>,
        code: String,
    ) -> Result<MfaRecoveryCodes> {
        no_store(ctx);
        Ok(super::regenerate_recovery_codes(caller(ctx)?, state(ctx), &code).await?)
    }
}
