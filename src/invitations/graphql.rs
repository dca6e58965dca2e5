use async_graphql::{Context, InputObject, Object, Result};
use uuid::Uuid;

use super::{AcceptedInvitation, CreatedInvitation, Invitation, ReceivedInvitation};
use crate::context::Role;
use crate::graphql::pagination::{PageArgs, PagedConnection};
use crate::graphql::{caller, meta, state};

/// A person to invite into the caller's org.
#[derive(InputObject)]
pub struct InviteMemberInput {
    /// Their email address; they accept signed in with it, or sign up with the token.
    pub email: String,
    /// The role they get on accepting.
    pub role: Role,
}

/// A new account made from an invitation.
#[derive(InputObject)]
pub struct SignUpWithInvitationInput {
    /// The invitation token the inviting admin handed over.
    pub token: String,
    /// The new account's password: at least 12 characters, not a common password, not the email.
    pub password: String,
    pub display_name: Option<String>,
}

#[derive(Default)]
pub struct InvitationsQuery;

#[Object]
impl InvitationsQuery {
    /// The org's invitations, newest first (admins, signed in).
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        page: Option<i32>,
        page_size: Option<i32>,
    ) -> Result<PagedConnection<Invitation>> {
        let window = PageArgs {
            first,
            after,
            page,
            page_size,
        }
        .window()?;
        Ok(super::list(caller(ctx)?, state(ctx), window)
            .await?
            .into_connection())
    }

    /// Pending invitations addressed to the signed-in user, from any org.
    async fn my_invitations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        page: Option<i32>,
        page_size: Option<i32>,
    ) -> Result<PagedConnection<ReceivedInvitation>> {
        let window = PageArgs {
            first,
            after,
            page,
            page_size,
        }
        .window()?;
        Ok(super::mine(caller(ctx)?, state(ctx), window)
            .await?
            .into_connection())
    }
}

#[derive(Default)]
pub struct InvitationsMutation;

#[Object]
impl InvitationsMutation {
    /// Invites a person into the caller's org (admins, signed in; owners to offer owner). The
    /// answer is the same whether or not the address has an account: nobody joins without
    /// accepting.
    async fn invite_member(
        &self,
        ctx: &Context<'_>,
        input: InviteMemberInput,
    ) -> Result<CreatedInvitation> {
        // The answer carries the invitation's token.
        crate::auth::graphql::no_store(ctx);
        Ok(super::invite(caller(ctx)?, state(ctx), &input.email, input.role).await?)
    }

    /// Withdraws a pending invitation of the caller's org (admins, signed in).
    async fn revoke_invitation(&self, ctx: &Context<'_>, id: Uuid) -> Result<bool> {
        super::revoke(caller(ctx)?, state(ctx), id).await?;
        Ok(true)
    }

    /// Accepts an invitation addressed to the signed-in user: they join its org.
    async fn accept_invitation(&self, ctx: &Context<'_>, id: Uuid) -> Result<AcceptedInvitation> {
        Ok(super::accept(caller(ctx)?, state(ctx), id).await?)
    }

    /// Declines an invitation addressed to the signed-in user.
    async fn decline_invitation(&self, ctx: &Context<'_>, id: Uuid) -> Result<bool> {
        super::decline(caller(ctx)?, state(ctx), id).await?;
        Ok(true)
    }

    /// Creates the account an invitation's address does not have yet and accepts the
    /// invitation (no sign-in needed: the token is the proof). Sign in afterwards as usual.
    async fn sign_up_with_invitation(
        &self,
        ctx: &Context<'_>,
        input: SignUpWithInvitationInput,
    ) -> Result<AcceptedInvitation> {
        Ok(super::sign_up(
            state(ctx),
            &meta(ctx),
            &input.token,
            &input.password,
            input.display_name.as_deref(),
        )
        .await?)
    }
}
