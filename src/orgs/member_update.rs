//! `updateUser` (`PATCH /api/v1/users/{id}`): a member's role, display name and active state,
//! changed together in one transaction (all or nothing), each change audited.

use chrono::Utc;
use entity::{membership, user};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use super::service::{member_of, membership_in_org};
use super::Member;
use crate::accounts::status::other_active_owners;
use crate::app::AppState;
use crate::audit::{self, AuditEntry};
use crate::auth::revocation::{self, Revoked};
use crate::context::{Ctx, Permission, Role};
use crate::error::{AppError, AppResult};
use crate::validate;

/// What `PATCH /users/{id}` (`updateUser`) may change; absent fields stay as they are.
#[derive(Clone, Debug, Default)]
pub struct MemberChanges {
    pub role: Option<Role>,
    /// `Some(None)` clears the display name.
    pub display_name: Option<Option<String>>,
    pub active: Option<bool>,
}

/// Changes a member's role, display name and active state (see
/// [`crate::accounts::status::set_active`]): all of them or, on any refusal, none.
///
/// # Errors
/// `SESSION_REQUIRED`; `NOT_FOUND` outside the org; `FORBIDDEN` when touching ownership
/// without being owner, or an account that belongs to orgs the caller does not administer;
/// `CONFLICT` when it would leave an org without an active owner; `VALIDATION_FAILED` for a bad
/// display name.
#[tracing::instrument(name = "orgs.update_member", skip_all, fields(org = %ctx.org_id))]
pub async fn update_member(
    ctx: &Ctx,
    state: &AppState,
    user_id: Uuid,
    changes: MemberChanges,
) -> AppResult<Member> {
    ctx.require_session_with(Permission::Admin)?;
    let display_name = match changes.display_name {
        Some(Some(d)) => Some(Some(validate::name("display_name", &d, 100)?)),
        other => other,
    };
    let txn = crate::db::begin_write(&state.db).await?;
    membership_in_org(&txn, ctx.org_id, user_id).await?;
    let role_changed = match changes.role {
        Some(role) => set_role(ctx, &txn, user_id, role).await?,
        None => false,
    };
    if let Some(name) = display_name {
        rename(ctx, &txn, user_id, name).await?;
    }
    let deactivated = match changes.active {
        Some(active) => {
            crate::accounts::status::set_active(ctx, &txn, user_id, active).await? && !active
        }
        None => false,
    };
    txn.commit().await?;
    if role_changed {
        let org_id = ctx.org_id;
        revocation::publish(state.bus.as_ref(), Revoked::Member { user_id, org_id }).await;
    }
    if deactivated {
        crate::accounts::status::announce_deactivated(state, user_id).await?;
    }
    member(ctx, state, user_id).await
}

/// A member of the caller's org.
///
/// # Errors
/// `NOT_FOUND` outside the org.
#[tracing::instrument(name = "orgs.member", skip_all, fields(org = %ctx.org_id))]
pub async fn member(ctx: &Ctx, state: &AppState, user_id: Uuid) -> AppResult<Member> {
    let m = membership_in_org(&state.db, ctx.org_id, user_id).await?;
    let person = user::Entity::find_by_id(user_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    Ok(member_of(m, person))
}

/// Changes a member's role; whether it changed.
async fn set_role(
    ctx: &Ctx,
    txn: &impl ConnectionTrait,
    user_id: Uuid,
    role: Role,
) -> AppResult<bool> {
    let m = membership_in_org(txn, ctx.org_id, user_id).await?;
    let current = Role::parse(&m.role)?;
    if current == Role::Owner || role == Role::Owner {
        ctx.require(Permission::Owner)?;
    }
    if current == role {
        return Ok(false);
    }
    if current == Role::Owner && other_active_owners(txn, ctx.org_id, user_id).await? == 0 {
        return Err(AppError::conflict(
            "the last active owner cannot be demoted",
        ));
    }
    let mut active: membership::ActiveModel = m.into();
    active.role = Set(role.as_str().into());
    active.update(txn).await?;
    audit::record(
        txn,
        AuditEntry::by(ctx, "member.role_change", "user", user_id)
            .with_details(serde_json::json!({"from": current.as_str(), "to": role.as_str()})),
    )
    .await?;
    Ok(true)
}

/// Changes the display name of a member's account (shown in every org it belongs to).
async fn rename(
    ctx: &Ctx,
    txn: &impl ConnectionTrait,
    user_id: Uuid,
    name: Option<String>,
) -> AppResult<()> {
    crate::accounts::status::governed_account(ctx, txn, user_id).await?;
    user::Entity::update_many()
        .col_expr(user::Column::DisplayName, Expr::value(name.clone()))
        .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(user::Column::Id.eq(user_id))
        .exec(txn)
        .await?;
    audit::record(
        txn,
        AuditEntry::by(ctx, "member.rename", "user", user_id)
            .with_details(serde_json::json!({ "display_name": name })),
    )
    .await
}
