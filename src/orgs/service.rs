//! Every rule about organizations and membership lives here.

use chrono::Utc;
use entity::{membership, organization, session, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, SqlErr,
};
use uuid::Uuid;

use super::model::{slugify, validate_slug, Email, Member, Organization};
use crate::accounts::status::other_active_owners;
use crate::app::AppState;
use crate::audit::{self, AuditEntry};
use crate::auth::password;
use crate::context::{Actor, Ctx, Permission, Role};
use crate::error::{AppError, AppResult};
use crate::graphql::pagination::{Paged, Window};
use crate::validate;

/// What start-up did about the first administrator.
pub enum Bootstrap {
    /// Users exist already.
    AlreadySetUp,
    /// Created from the configured email and password.
    Created { email: String },
    /// Created with a generated password, to be shown once.
    CreatedWithPassword { email: String, password: String },
}

/// On an empty database, creates the first org and its owner.
///
/// # Errors
/// When the configured admin email or password is invalid, or the database fails.
#[tracing::instrument(name = "orgs.bootstrap_admin", skip_all)]
pub async fn bootstrap_admin(
    db: &DatabaseConnection,
    email: Option<&str>,
    password: Option<&str>,
) -> AppResult<Bootstrap> {
    if user::Entity::find().count(db).await? > 0 {
        return Ok(Bootstrap::AlreadySetUp);
    }
    let email = Email::parse(
        "RAMPART_ADMIN_EMAIL",
        email.unwrap_or("admin@rampart.local"),
    )?;
    let (password, generated) = match password {
        Some(p) => {
            crate::auth::password_policy::check("RAMPART_ADMIN_PASSWORD", p, email.as_str())?;
            (p.to_string(), false)
        }
        None => (crate::auth::tokens::random_base62(20), true),
    };
    let hash = password::hash(&password).await?;
    let now = Utc::now();
    let txn = crate::db::begin_write(db).await?;
    let org = organization::ActiveModel {
        id: Set(Uuid::now_v7()),
        slug: Set("default".into()),
        name: Set("Default organization".into()),
        created_at: Set(now),
        require_admin_mfa: Set(false),
    }
    .insert(&txn)
    .await?;
    let admin = user::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(email.as_str().to_string()),
        password_hash: Set(hash),
        display_name: Set(Some("Administrator".into())),
        is_active: Set(true),
        must_change_password: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await;
    let admin = match admin {
        Ok(admin) => admin,
        // Another process bootstrapped at the same moment.
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Ok(Bootstrap::AlreadySetUp)
        }
        Err(e) => return Err(e.into()),
    };
    insert_membership(&txn, org.id, admin.id, Role::Owner).await?;
    txn.commit().await?;
    let email = email.as_str().to_string();
    Ok(if generated {
        Bootstrap::CreatedWithPassword { email, password }
    } else {
        Bootstrap::Created { email }
    })
}

/// Gives `user_id` a role in `org_id` (bootstrap, org creation, accepted invitations).
pub(crate) async fn insert_membership(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    user_id: Uuid,
    role: Role,
) -> AppResult<membership::Model> {
    Ok(membership::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(org_id),
        user_id: Set(user_id),
        role: Set(role.as_str().into()),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?)
}

/// The org the caller acts in.
///
/// # Errors
/// Only on database failure.
#[tracing::instrument(name = "orgs.current", skip_all, fields(org = %ctx.org_id))]
pub async fn current(ctx: &Ctx, state: &AppState) -> AppResult<Organization> {
    organization::Entity::find_by_id(ctx.org_id)
        .one(&state.db)
        .await?
        .map(Organization::from)
        .ok_or_else(|| AppError::not_found("organization"))
}

/// The orgs the caller belongs to (an API key: its own org only).
///
/// # Errors
/// Only on database failure.
#[tracing::instrument(name = "orgs.list_for_caller", skip_all, fields(org = %ctx.org_id))]
pub async fn list_for_caller(
    ctx: &Ctx,
    state: &AppState,
    window: Window,
) -> AppResult<Paged<(Organization, Option<Role>)>> {
    let Some(user_id) = ctx.user_id() else {
        // An API key belongs to exactly one org.
        let items = match window.offset {
            0 => vec![(current(ctx, state).await?, None)],
            _ => Vec::new(),
        };
        return Ok(Paged {
            items,
            total: 1,
            window,
        });
    };
    let query = membership::Entity::find()
        .filter(membership::Column::UserId.eq(user_id))
        .find_also_related(organization::Entity);
    let total = membership::Entity::find()
        .filter(membership::Column::UserId.eq(user_id))
        .count(&state.db)
        .await?;
    let rows = query
        .order_by_asc(membership::Column::CreatedAt)
        .order_by_asc(membership::Column::OrgId)
        .offset(window.offset)
        .limit(window.limit)
        .all(&state.db)
        .await?;
    let items = rows
        .into_iter()
        .filter_map(|(m, org)| Some((Organization::from(org?), Role::parse(&m.role).ok())))
        .collect();
    Ok(Paged {
        items,
        total,
        window,
    })
}

/// Creates an org; the signed-in creator becomes its owner.
///
/// # Errors
/// `SESSION_REQUIRED` for API keys, `VALIDATION_FAILED`, `CONFLICT` for a taken slug.
#[tracing::instrument(name = "orgs.create", skip_all, fields(org = %ctx.org_id))]
pub async fn create(
    ctx: &Ctx,
    state: &AppState,
    name: &str,
    slug: Option<&str>,
) -> AppResult<Organization> {
    let (user_id, _) = ctx.require_session()?;
    let name = validate::name("name", name, 100)?;
    let slug = match slug {
        Some(s) => {
            validate_slug(s)?;
            s.to_string()
        }
        None => free_slug(&state.db, &slugify(&name)).await?,
    };
    let txn = crate::db::begin_write(&state.db).await?;
    let org = organization::ActiveModel {
        id: Set(Uuid::now_v7()),
        slug: Set(slug.clone()),
        name: Set(name),
        created_at: Set(Utc::now()),
        require_admin_mfa: Set(false),
    }
    .insert(&txn)
    .await
    .map_err(|e| match e.sql_err() {
        // Slugs are unique across tenants, so a taken one cannot be given out; the answer
        // says no more than that (not whose it is), and is the same for a slug taken a moment
        // ago by a concurrent request.
        Some(SqlErr::UniqueConstraintViolation(_)) => AppError::conflict(
            "this slug is not available; choose another, or leave it out to have one made from the name",
        ),
        _ => e.into(),
    })?;
    insert_membership(&txn, org.id, user_id, Role::Owner).await?;
    let mut entry = AuditEntry::by(ctx, "organization.create", "organization", org.id);
    entry.org_id = org.id;
    audit::record(&txn, entry).await?;
    txn.commit().await?;
    Ok(org.into())
}

/// Changes to an org; `None` leaves a field as it is.
pub struct OrgChanges {
    pub name: Option<String>,
    pub require_admin_mfa: Option<bool>,
}

/// Changes the caller's org (`id` must be it: another org answers `NOT_FOUND`).
///
/// # Errors
/// `SESSION_REQUIRED`, `FORBIDDEN` (admins only), `NOT_FOUND`; `CONFLICT` when requiring MFA
/// of admins while the caller has not enabled it themselves (it would lock them out).
#[tracing::instrument(name = "orgs.update", skip_all, fields(org = %ctx.org_id))]
pub async fn update(
    ctx: &Ctx,
    state: &AppState,
    id: Uuid,
    changes: OrgChanges,
) -> AppResult<Organization> {
    let user_id = ctx.require_session_with(Permission::Admin)?;
    if id != ctx.org_id {
        return Err(AppError::not_found("organization"));
    }
    let name = changes
        .name
        .as_deref()
        .map(|n| validate::name("name", n, 100))
        .transpose()?;
    if changes.require_admin_mfa == Some(true) && !crate::auth::mfa::enabled(state, user_id).await?
    {
        return Err(AppError::conflict(
            "enable MFA on your own account before requiring it of admins",
        ));
    }
    let txn = crate::db::begin_write(&state.db).await?;
    let org = organization::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("organization"))?;
    let mut row: organization::ActiveModel = org.into();
    if let Some(name) = name {
        row.name = Set(name);
    }
    if let Some(required) = changes.require_admin_mfa {
        row.require_admin_mfa = Set(required);
    }
    let org = row.update(&txn).await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "organization.update", "organization", id),
    )
    .await?;
    txn.commit().await?;
    Ok(org.into())
}

/// `base` when no org has it, otherwise `base` with a random suffix: a slug made from a name
/// never fails because another tenant has that name.
async fn free_slug(db: &DatabaseConnection, base: &str) -> AppResult<String> {
    let taken = organization::Entity::find()
        .filter(organization::Column::Slug.eq(base))
        .count(db)
        .await?
        > 0;
    if !taken {
        return Ok(base.to_string());
    }
    let suffix = crate::auth::tokens::random_base62(8).to_lowercase();
    Ok(format!("{base}-{suffix}"))
}

/// The API shape of a membership and its user.
pub(crate) fn member_of(m: membership::Model, u: user::Model) -> Member {
    Member {
        id: u.id,
        email: u.email,
        display_name: u.display_name,
        role: Role::parse(&m.role).unwrap_or(Role::Viewer),
        joined_at: m.created_at,
        active: u.is_active,
    }
}

/// The org's members (admins, signed in).
///
/// # Errors
/// `SESSION_REQUIRED`, `FORBIDDEN`.
#[tracing::instrument(name = "orgs.list_members", skip_all, fields(org = %ctx.org_id))]
pub async fn list_members(ctx: &Ctx, state: &AppState, window: Window) -> AppResult<Paged<Member>> {
    ctx.require_session_with(Permission::Admin)?;
    let query = membership::Entity::find().filter(membership::Column::OrgId.eq(ctx.org_id));
    let total = query.clone().count(&state.db).await?;
    let items = query
        .find_also_related(user::Entity)
        .order_by_asc(membership::Column::CreatedAt)
        .order_by_asc(membership::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .all(&state.db)
        .await?
        .into_iter()
        .filter_map(|(m, u)| Some(member_of(m, u?)))
        .collect();
    Ok(Paged {
        items,
        total,
        window,
    })
}

pub(super) async fn membership_in_org(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    user_id: Uuid,
) -> AppResult<membership::Model> {
    membership::Entity::find()
        .filter(membership::Column::OrgId.eq(org_id))
        .filter(membership::Column::UserId.eq(user_id))
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("user"))
}

/// Removes a member from the org and ends their sessions in it.
///
/// # Errors
/// As for [`update_member`].
#[tracing::instrument(name = "orgs.remove_member", skip_all, fields(org = %ctx.org_id))]
pub async fn remove_member(ctx: &Ctx, state: &AppState, user_id: Uuid) -> AppResult<()> {
    ctx.require_session_with(Permission::Admin)?;
    let txn = crate::db::begin_write(&state.db).await?;
    let m = membership_in_org(&txn, ctx.org_id, user_id).await?;
    if Role::parse(&m.role)? == Role::Owner {
        ctx.require(Permission::Owner)?;
        if other_active_owners(&txn, ctx.org_id, user_id).await? == 0 {
            return Err(AppError::conflict(
                "the last active owner cannot be removed",
            ));
        }
    }
    membership::Entity::delete_by_id(m.id).exec(&txn).await?;
    session::Entity::update_many()
        .col_expr(
            session::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::OrgId.eq(ctx.org_id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    audit::record(&txn, AuditEntry::by(ctx, "member.remove", "user", user_id)).await?;
    txn.commit().await?;
    crate::auth::revocation::publish(
        state.bus.as_ref(),
        crate::auth::revocation::Revoked::Member {
            user_id,
            org_id: ctx.org_id,
        },
    )
    .await;
    Ok(())
}

/// The signed-in user's own account, or `None` for API keys.
///
/// # Errors
/// Only on database failure.
#[tracing::instrument(name = "orgs.me_user", skip_all, fields(org = %ctx.org_id))]
pub async fn me_user(ctx: &Ctx, state: &AppState) -> AppResult<Option<Member>> {
    let Actor::User { user_id, .. } = &ctx.actor else {
        return Ok(None);
    };
    let m = membership_in_org(&state.db, ctx.org_id, *user_id).await?;
    let person = user::Entity::find_by_id(*user_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    Ok(Some(member_of(m, person)))
}
