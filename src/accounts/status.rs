//! Deactivating and reactivating an account. The account is one person across every org they
//! belong to, so an admin acts on it only when they administer each of those orgs.

use chrono::Utc;
use entity::{api_key, membership, user};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

use crate::app::AppState;
use crate::audit::{self, AuditEntry};
use crate::auth::revocation::{self, Revoked};
use crate::context::{Ctx, Permission, Role};
use crate::error::{AppError, AppResult};

/// The account `user_id` of the caller's org, once the caller is shown to govern it: an admin
/// of the caller's org (an owner when the account is an owner there) who also administers every
/// other org the account belongs to.
///
/// # Errors
/// `SESSION_REQUIRED`, `FORBIDDEN`; `NOT_FOUND` when the account is not in the caller's org.
pub(crate) async fn governed_account(
    ctx: &Ctx,
    db: &impl ConnectionTrait,
    user_id: Uuid,
) -> AppResult<(user::Model, Role)> {
    let caller = ctx.require_session_with(Permission::Admin)?;
    let theirs = membership::Entity::find()
        .filter(membership::Column::UserId.eq(user_id))
        .all(db)
        .await?;
    let here = theirs
        .iter()
        .find(|m| m.org_id == ctx.org_id)
        .ok_or_else(|| AppError::not_found("user"))?;
    let role = Role::parse(&here.role)?;
    if role == Role::Owner {
        ctx.require(Permission::Owner)?;
    }
    let mine = membership::Entity::find()
        .filter(membership::Column::UserId.eq(caller))
        .all(db)
        .await?;
    let administers = |org_id: Uuid| {
        mine.iter().any(|m| {
            m.org_id == org_id
                && Role::parse(&m.role).is_ok_and(|r| matches!(r, Role::Owner | Role::Admin))
        })
    };
    if theirs.iter().any(|m| !administers(m.org_id)) {
        return Err(AppError::forbidden(
            "this account also belongs to organizations you do not administer",
        ));
    }
    let person = user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    Ok((person, role))
}

/// Active owners of `org_id` other than `user_id`: the owners left if `user_id` stops being
/// one (a deactivated owner cannot act as one, so it does not count).
pub(crate) async fn other_active_owners(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    user_id: Uuid,
) -> AppResult<u64> {
    Ok(membership::Entity::find()
        .inner_join(user::Entity)
        .filter(membership::Column::OrgId.eq(org_id))
        .filter(membership::Column::Role.eq(Role::Owner.as_str()))
        .filter(membership::Column::UserId.ne(user_id))
        .filter(user::Column::IsActive.eq(true))
        .count(db)
        .await?)
}

/// Deactivates (`active = false`) or reactivates an account in the caller's transaction;
/// whether it changed. Deactivating ends its sessions and stops the API keys it created until
/// reactivated; once committed, [`announce_deactivated`] closes its open connections.
///
/// # Errors
/// As for [`governed_account`]; `CONFLICT` for the last active owner of an org (oneself
/// included).
pub async fn set_active(
    ctx: &Ctx,
    txn: &impl ConnectionTrait,
    user_id: Uuid,
    active: bool,
) -> AppResult<bool> {
    let (person, _) = governed_account(ctx, txn, user_id).await?;
    if person.is_active == active {
        return Ok(false);
    }
    if !active {
        let owned = membership::Entity::find()
            .filter(membership::Column::UserId.eq(user_id))
            .filter(membership::Column::Role.eq(Role::Owner.as_str()))
            .all(txn)
            .await?;
        for m in owned {
            if other_active_owners(txn, m.org_id, user_id).await? == 0 {
                return Err(AppError::conflict(
                    "the last active owner of an organization cannot be deactivated",
                ));
            }
        }
    }
    user::Entity::update_many()
        .col_expr(user::Column::IsActive, Expr::value(active))
        .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(user::Column::Id.eq(user_id))
        .exec(txn)
        .await?;
    if !active {
        super::sessions::revoke_all(txn, user_id, None).await?;
    }
    let action = if active {
        "user.reactivate"
    } else {
        "user.deactivate"
    };
    audit::record(txn, AuditEntry::by(ctx, action, "user", user_id)).await?;
    Ok(true)
}

/// Prompts every open connection of the account, and of the API keys it created, to check its
/// credential again (which now fails).
///
/// # Errors
/// Only on database failure.
pub async fn announce_deactivated(state: &AppState, user_id: Uuid) -> AppResult<()> {
    revocation::publish(state.bus.as_ref(), Revoked::User { user_id }).await;
    let keys = api_key::Entity::find()
        .filter(api_key::Column::CreatedBy.eq(user_id))
        .filter(api_key::Column::RevokedAt.is_null())
        .all(&state.db)
        .await?;
    for key in keys {
        revocation::publish(state.bus.as_ref(), Revoked::Key { key_id: key.id }).await;
    }
    Ok(())
}
