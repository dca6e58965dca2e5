use async_graphql::{Context, InputObject, MaybeUndefined, Object, Result, SimpleObject};
use uuid::Uuid;

use super::{Member, Organization};
use crate::context::Role;
use crate::graphql::pagination::{PageArgs, Paged, PagedConnection};
use crate::graphql::{caller, state};

/// An org the caller belongs to, with the caller's role there.
#[derive(SimpleObject)]
pub struct OrganizationMembership {
    pub organization: Organization,
    /// The caller's role (absent for API keys).
    pub role: Option<Role>,
}

/// A new organization.
#[derive(InputObject)]
pub struct CreateOrganizationInput {
    /// Display name (1–100 characters).
    pub name: String,
    /// URL name; derived from the name when absent.
    pub slug: Option<String>,
}

/// Changes to the caller's org; absent fields stay as they are.
#[derive(InputObject)]
pub struct UpdateOrganizationInput {
    /// Display name (1–100 characters).
    pub name: Option<String>,
    /// Require MFA of admins and owners. Turning it on needs MFA on the caller's own account.
    pub require_admin_mfa: Option<bool>,
}

/// Changes to a member; absent fields stay as they are.
#[derive(InputObject)]
pub struct UpdateUserInput {
    /// The new role (not null).
    pub role: MaybeUndefined<Role>,
    /// The account's display name (1–100 characters); null clears it.
    pub display_name: MaybeUndefined<String>,
    /// `false` deactivates the account (its sessions and API keys stop at once; it cannot
    /// sign in), `true` reactivates it (not null). The last active owner of an org cannot be
    /// deactivated.
    pub active: MaybeUndefined<bool>,
}

impl UpdateUserInput {
    fn changes(self) -> crate::error::AppResult<super::MemberChanges> {
        fn not_null<T>(field: &str, v: MaybeUndefined<T>) -> crate::error::AppResult<Option<T>> {
            match v {
                MaybeUndefined::Null => {
                    Err(crate::error::AppError::invalid(field, "must not be null"))
                }
                MaybeUndefined::Undefined => Ok(None),
                MaybeUndefined::Value(v) => Ok(Some(v)),
            }
        }
        Ok(super::MemberChanges {
            role: not_null("role", self.role)?,
            display_name: match self.display_name {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(v) => Some(Some(v)),
            },
            active: not_null("active", self.active)?,
        })
    }
}

#[derive(Default)]
pub struct OrgsQuery;

#[Object]
impl OrgsQuery {
    /// The org the caller acts in.
    async fn organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        Ok(super::current(caller(ctx)?, state(ctx)).await?)
    }

    /// Every org the caller belongs to, oldest membership first.
    async fn organizations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        page: Option<i32>,
        page_size: Option<i32>,
    ) -> Result<PagedConnection<OrganizationMembership>> {
        let window = PageArgs {
            first,
            after,
            page,
            page_size,
        }
        .window()?;
        let orgs = super::list_for_caller(caller(ctx)?, state(ctx), window).await?;
        let orgs = Paged {
            items: orgs
                .items
                .into_iter()
                .map(|(organization, role)| OrganizationMembership { organization, role })
                .collect(),
            total: orgs.total,
            window: orgs.window,
        };
        Ok(orgs.into_connection())
    }

    /// Members of the caller's org (admins, signed in).
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        page: Option<i32>,
        page_size: Option<i32>,
    ) -> Result<PagedConnection<Member>> {
        let window = PageArgs {
            first,
            after,
            page,
            page_size,
        }
        .window()?;
        Ok(super::list_members(caller(ctx)?, state(ctx), window)
            .await?
            .into_connection())
    }
}

#[derive(Default)]
pub struct OrgsMutation;

#[Object]
impl OrgsMutation {
    /// Creates an org; the signed-in creator becomes its owner.
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        input: CreateOrganizationInput,
    ) -> Result<Organization> {
        Ok(super::create(caller(ctx)?, state(ctx), &input.name, input.slug.as_deref()).await?)
    }

    /// Changes the caller's org (admins, signed in); `id` must be that org.
    async fn update_organization(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        input: UpdateOrganizationInput,
    ) -> Result<Organization> {
        let changes = super::OrgChanges {
            name: input.name,
            require_admin_mfa: input.require_admin_mfa,
        };
        Ok(super::update(caller(ctx)?, state(ctx), id, changes).await?)
    }

    /// Changes a member's role, display name or active state, all or none. The last active
    /// owner can be neither demoted nor deactivated.
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        input: UpdateUserInput,
    ) -> Result<Member> {
        let changes = input.changes()?;
        Ok(super::update_member(caller(ctx)?, state(ctx), id, changes).await?)
    }

    /// Removes a member from the caller's org. The last active owner cannot be removed.
    async fn remove_user(&self, ctx: &Context<'_>, id: Uuid) -> Result<bool> {
        super::remove_member(caller(ctx)?, state(ctx), id).await?;
        Ok(true)
    }
}
