//! Every rule about invitations lives here.

use chrono::{Duration, Utc};
use entity::{invitation, membership, organization, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, SqlErr,
};
use uuid::Uuid;

use super::model::{AcceptedInvitation, CreatedInvitation, Invitation, ReceivedInvitation};
use crate::app::AppState;
use crate::audit::{self, AuditEntry};
use crate::auth::{password, tokens};
use crate::context::{Actor, Ctx, Permission, RequestMeta, Role};
use crate::error::{AppError, AppResult};
use crate::graphql::pagination::{Paged, Window};
use crate::orgs::{self, Email, Organization};
use crate::validate;

/// How long an invitation can be accepted.
pub const INVITATION_TTL_DAYS: i64 = 7;
/// Marks an invitation token (as `rmp_` marks an API key).
const TOKEN_PREFIX: &str = "rmi_";
/// Random characters after the prefix: 32 × log2(62) ≈ 190 bits.
const TOKEN_RANDOM_LEN: usize = 32;

/// Invites `email` into the caller's org with `role` (admins, signed in; owners to offer
/// owner). The answer is the same whether or not anyone has an account with this address.
/// Inviting an address again replaces its pending invitation (and its token).
///
/// # Errors
/// `SESSION_REQUIRED`, `FORBIDDEN`, `VALIDATION_FAILED`, `CONFLICT` when that person is
/// already a member of this org (which the admin can see in the member list anyway).
#[tracing::instrument(name = "invitations.invite", skip_all, fields(org = %ctx.org_id))]
pub async fn invite(
    ctx: &Ctx,
    state: &AppState,
    email: &str,
    role: Role,
) -> AppResult<CreatedInvitation> {
    let inviter = ctx.require_session_with(Permission::Admin)?;
    if role == Role::Owner {
        ctx.require(Permission::Owner)?;
    }
    let email = Email::parse("email", email)?;
    let txn = crate::db::begin_write(&state.db).await?;
    let already_member = membership::Entity::find()
        .filter(membership::Column::OrgId.eq(ctx.org_id))
        .inner_join(user::Entity)
        .filter(user::Column::Email.eq(email.as_str()))
        .count(&txn)
        .await?
        > 0;
    if already_member {
        return Err(AppError::conflict("this person is already a member"));
    }
    invitation::Entity::delete_many()
        .filter(invitation::Column::OrgId.eq(ctx.org_id))
        .filter(invitation::Column::Email.eq(email.as_str()))
        .filter(invitation::Column::AcceptedAt.is_null())
        .exec(&txn)
        .await?;
    let token = format!("{TOKEN_PREFIX}{}", tokens::random_base62(TOKEN_RANDOM_LEN));
    let now = Utc::now();
    let row = invitation::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(ctx.org_id),
        email: Set(email.as_str().to_string()),
        role: Set(role.as_str().into()),
        token_hash: Set(tokens::sha256_hex(&token)),
        invited_by: Set(Some(inviter)),
        expires_at: Set(now + Duration::days(INVITATION_TTL_DAYS)),
        accepted_at: Set(None),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "invitation.create", "invitation", row.id)
            .with_details(serde_json::json!({"email": row.email, "role": row.role})),
    )
    .await?;
    txn.commit().await?;
    Ok(CreatedInvitation {
        invitation: row.into(),
        token,
        message: format!(
            "Invitation created. Give this token to the person invited; it is not shown again \
             and works for {INVITATION_TTL_DAYS} days. Signed in with this email they accept \
             it under their invitations; without an account they set a password with it."
        ),
    })
}

/// The org's invitations, newest first (admins, signed in).
///
/// # Errors
/// `SESSION_REQUIRED`, `FORBIDDEN`.
#[tracing::instrument(name = "invitations.list", skip_all, fields(org = %ctx.org_id))]
pub async fn list(ctx: &Ctx, state: &AppState, window: Window) -> AppResult<Paged<Invitation>> {
    ctx.require_session_with(Permission::Admin)?;
    let query = invitation::Entity::find().filter(invitation::Column::OrgId.eq(ctx.org_id));
    let total = query.clone().count(&state.db).await?;
    let items = query
        .order_by_desc(invitation::Column::CreatedAt)
        .order_by_desc(invitation::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .all(&state.db)
        .await?
        .into_iter()
        .map(Invitation::from)
        .collect();
    Ok(Paged {
        items,
        total,
        window,
    })
}

/// Withdraws a pending invitation of the caller's org (admins, signed in); its token stops
/// working.
///
/// # Errors
/// `NOT_FOUND` outside the org or once accepted, `SESSION_REQUIRED`, `FORBIDDEN`.
#[tracing::instrument(name = "invitations.revoke", skip_all, fields(org = %ctx.org_id))]
pub async fn revoke(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<()> {
    ctx.require_session_with(Permission::Admin)?;
    let txn = crate::db::begin_write(&state.db).await?;
    let row = invitation::Entity::find_by_id(id)
        .filter(invitation::Column::OrgId.eq(ctx.org_id))
        .filter(invitation::Column::AcceptedAt.is_null())
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("invitation"))?;
    invitation::Entity::delete_by_id(row.id).exec(&txn).await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "invitation.revoke", "invitation", row.id)
            .with_details(serde_json::json!({"email": row.email})),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// The signed-in user's email, or `SESSION_REQUIRED` for API keys.
fn my_email(ctx: &Ctx) -> AppResult<(Uuid, &str)> {
    match &ctx.actor {
        Actor::User { user_id, email, .. } => Ok((*user_id, email.as_str())),
        Actor::ApiKey { .. } => Err(AppError::session_required()),
    }
}

/// Pending, unexpired invitations addressed to the signed-in user, from any org, newest
/// first, a page at a time.
///
/// # Errors
/// `SESSION_REQUIRED` for API keys.
#[tracing::instrument(name = "invitations.mine", skip_all, fields(org = %ctx.org_id))]
pub async fn mine(
    ctx: &Ctx,
    state: &AppState,
    window: Window,
) -> AppResult<Paged<ReceivedInvitation>> {
    let (_, email) = my_email(ctx)?;
    let query = invitation::Entity::find()
        .filter(invitation::Column::Email.eq(email))
        .filter(invitation::Column::AcceptedAt.is_null())
        .filter(invitation::Column::ExpiresAt.gt(Utc::now()));
    let total = query.clone().count(&state.db).await?;
    let rows = query
        .find_also_related(organization::Entity)
        .order_by_desc(invitation::Column::CreatedAt)
        .order_by_desc(invitation::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .all(&state.db)
        .await?;
    let items = rows
        .into_iter()
        .filter_map(|(inv, org)| {
            Some(ReceivedInvitation {
                id: inv.id,
                organization: Organization::from(org?),
                role: Role::parse(&inv.role).ok()?,
                expires_at: inv.expires_at,
                created_at: inv.created_at,
            })
        })
        .collect();
    Ok(Paged {
        items,
        total,
        window,
    })
}

/// A pending, unexpired invitation addressed to the signed-in user; anything else (another
/// person's invitation included) is `NOT_FOUND`.
async fn pending_for_me(
    db: &impl ConnectionTrait,
    ctx: &Ctx,
    id: Uuid,
) -> AppResult<invitation::Model> {
    let (_, email) = my_email(ctx)?;
    invitation::Entity::find_by_id(id)
        .filter(invitation::Column::Email.eq(email))
        .filter(invitation::Column::AcceptedAt.is_null())
        .filter(invitation::Column::ExpiresAt.gt(Utc::now()))
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("invitation"))
}

/// Marks the invitation accepted — once: a second acceptance racing this one finds nothing —
/// and gives `person` its role in the invitation's org.
async fn join(
    db: &impl ConnectionTrait,
    inv: &invitation::Model,
    person: user::Model,
) -> AppResult<AcceptedInvitation> {
    let marked = invitation::Entity::update_many()
        .col_expr(
            invitation::Column::AcceptedAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(invitation::Column::Id.eq(inv.id))
        .filter(invitation::Column::AcceptedAt.is_null())
        .exec(db)
        .await?;
    if marked.rows_affected != 1 {
        return Err(AppError::not_found("invitation"));
    }
    let org = organization::Entity::find_by_id(inv.org_id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("invitation"))?;
    let existing = membership::Entity::find()
        .filter(membership::Column::OrgId.eq(inv.org_id))
        .filter(membership::Column::UserId.eq(person.id))
        .one(db)
        .await?;
    // Already a member (added meanwhile): accepting changes nothing.
    let m = match existing {
        Some(m) => m,
        None => orgs::insert_membership(db, inv.org_id, person.id, Role::parse(&inv.role)?).await?,
    };
    Ok(AcceptedInvitation {
        organization: org.into(),
        member: orgs::member_of(m, person),
    })
}

/// Accepts an invitation addressed to the signed-in user: they join its org with its role.
///
/// # Errors
/// `NOT_FOUND` unless it is a pending invitation to the caller's email; `SESSION_REQUIRED`.
#[tracing::instrument(name = "invitations.accept", skip_all, fields(org = %ctx.org_id))]
pub async fn accept(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<AcceptedInvitation> {
    let (user_id, _) = my_email(ctx)?;
    let txn = crate::db::begin_write(&state.db).await?;
    let inv = pending_for_me(&txn, ctx, id).await?;
    let person = user::Entity::find_by_id(user_id)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    let accepted = join(&txn, &inv, person).await?;
    let mut entry = AuditEntry::by(ctx, "invitation.accept", "invitation", inv.id)
        .with_details(serde_json::json!({"email": inv.email, "role": inv.role}));
    entry.org_id = inv.org_id;
    audit::record(&txn, entry).await?;
    txn.commit().await?;
    Ok(accepted)
}

/// Declines an invitation addressed to the signed-in user; it is gone afterwards.
///
/// # Errors
/// As for [`accept`].
#[tracing::instrument(name = "invitations.decline", skip_all, fields(org = %ctx.org_id))]
pub async fn decline(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<()> {
    let txn = crate::db::begin_write(&state.db).await?;
    let inv = pending_for_me(&txn, ctx, id).await?;
    invitation::Entity::delete_by_id(inv.id).exec(&txn).await?;
    let mut entry = AuditEntry::by(ctx, "invitation.decline", "invitation", inv.id)
        .with_details(serde_json::json!({"email": inv.email}));
    entry.org_id = inv.org_id;
    audit::record(&txn, entry).await?;
    txn.commit().await?;
    Ok(())
}

/// A new person's way in: creates the account the invitation's address does not have yet,
/// with `password`, and accepts the invitation. They sign in afterwards as usual.
///
/// Someone who already has an account accepts while signed in instead; this answers so,
/// without creating or changing anything. (Only the holder of the token — the invited person,
/// or the admin who handed it over — can get that far; without a mail channel of our own that
/// much is unavoidable, and it is audited.)
///
/// # Errors
/// `UNAUTHENTICATED` for an unknown, used or expired token; `VALIDATION_FAILED` for a weak
/// password or a bad display name; `CONFLICT` when the address has an account already.
#[tracing::instrument(name = "invitations.sign_up", skip_all)]
pub async fn sign_up(
    state: &AppState,
    meta: &RequestMeta,
    token: &str,
    password_text: &str,
    display_name: Option<&str>,
) -> AppResult<AcceptedInvitation> {
    let invalid = || AppError::unauthenticated("this invitation is unknown, used or expired");
    if !token.starts_with(TOKEN_PREFIX) {
        return Err(invalid());
    }
    let inv = invitation::Entity::find()
        .filter(invitation::Column::TokenHash.eq(tokens::sha256_hex(token)))
        .filter(invitation::Column::AcceptedAt.is_null())
        .filter(invitation::Column::ExpiresAt.gt(Utc::now()))
        .one(&state.db)
        .await?
        .ok_or_else(invalid)?;
    let has_account = || {
        AppError::conflict(
            "an account with this email exists: sign in and accept the invitation from your invitations",
        )
    };
    let exists = user::Entity::find()
        .filter(user::Column::Email.eq(&inv.email))
        .count(&state.db)
        .await?
        > 0;
    if exists {
        return Err(has_account());
    }
    crate::auth::password_policy::check("password", password_text, &inv.email)?;
    let display_name = display_name
        .map(|d| validate::name("display_name", d, 100))
        .transpose()?;
    let hash = password::hash(password_text).await?;
    let now = Utc::now();
    let txn = crate::db::begin_write(&state.db).await?;
    let person = user::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(inv.email.clone()),
        password_hash: Set(hash),
        display_name: Set(display_name),
        is_active: Set(true),
        must_change_password: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|e| match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => has_account(),
        _ => e.into(),
    })?;
    let person_id = person.id;
    let accepted = join(&txn, &inv, person).await.map_err(|e| match e.code() {
        crate::error::ErrorCode::NotFound => invalid(),
        _ => e,
    })?;
    let mut entry = AuditEntry::anonymous(
        meta,
        inv.org_id,
        Some((person_id, &inv.email)),
        "invitation.accept",
    )
    .with_details(serde_json::json!({"email": inv.email, "role": inv.role, "new_account": true}));
    entry.resource_type = "invitation";
    entry.resource_id = Some(inv.id.to_string());
    audit::record(&txn, entry).await?;
    txn.commit().await?;
    Ok(accepted)
}
