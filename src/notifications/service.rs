//! Every rule about reading one's notifications, choosing what notifies and following targets.
//! All of it is personal: it needs a person signed in (an API key has no inbox), and every
//! query is by the caller's own user id and current org, so another person's notification or
//! another org's target answers exactly like a missing one.

use chrono::Utc;
use entity::{notification, notification_preference, target, target_follow};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use super::model::{
    MarkedRead, Notification, NotificationCounts, NotificationKind, NotificationPreferences,
};
use crate::app::AppState;
use crate::context::{Ctx, Permission};
use crate::error::{AppError, AppResult};
use crate::findings::Severity;
use crate::graphql::pagination::{Paged, Window};
use crate::targets::Target;

/// The signed-in person (any role may read and follow what their org holds).
fn person(ctx: &Ctx) -> AppResult<Uuid> {
    ctx.require_session_with(Permission::Read)
}

fn mine(ctx: &Ctx, user_id: Uuid) -> sea_orm::Select<notification::Entity> {
    notification::Entity::find()
        .filter(notification::Column::UserId.eq(user_id))
        .filter(notification::Column::OrgId.eq(ctx.org_id))
}

/// The caller's notifications in their org: unread first, then newest first.
///
/// # Errors
/// `SESSION_REQUIRED`.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn list(
    ctx: &Ctx,
    state: &AppState,
    unread_only: bool,
    window: Window,
) -> AppResult<Paged<Notification>> {
    let user_id = person(ctx)?;
    let mut query = mine(ctx, user_id);
    if unread_only {
        query = query.filter(notification::Column::ReadAt.is_null());
    }
    let total = query.clone().count(&state.db).await?;
    let items = query
        .order_by(
            Expr::col(notification::Column::ReadAt).is_null(),
            Order::Desc,
        )
        .order_by_desc(notification::Column::CreatedAt)
        .order_by_desc(notification::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .all(&state.db)
        .await?
        .into_iter()
        .map(Notification::from)
        .collect();
    Ok(Paged {
        items,
        total,
        window,
    })
}

async fn find_mine(
    db: &impl ConnectionTrait,
    ctx: &Ctx,
    user_id: Uuid,
    id: Uuid,
) -> AppResult<notification::Model> {
    mine(ctx, user_id)
        .filter(notification::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("notification"))
}

/// One of the caller's notifications.
///
/// # Errors
/// `NOT_FOUND` (someone else's too), `SESSION_REQUIRED`.
pub async fn get(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<Notification> {
    let user_id = person(ctx)?;
    Ok(find_mine(&state.db, ctx, user_id, id).await?.into())
}

/// How many notifications the caller has, and how many are unread.
///
/// # Errors
/// `SESSION_REQUIRED`.
pub async fn counts(ctx: &Ctx, state: &AppState) -> AppResult<NotificationCounts> {
    let user_id = person(ctx)?;
    let total = mine(ctx, user_id).count(&state.db).await?;
    let unread = mine(ctx, user_id)
        .filter(notification::Column::ReadAt.is_null())
        .count(&state.db)
        .await?;
    Ok(NotificationCounts { unread, total })
}

/// Marks one of the caller's notifications read (again: it keeps the first time).
///
/// # Errors
/// `NOT_FOUND`, `SESSION_REQUIRED`.
pub async fn mark_read(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<Notification> {
    let user_id = person(ctx)?;
    notification::Entity::update_many()
        .col_expr(notification::Column::ReadAt, Expr::value(Some(Utc::now())))
        .filter(notification::Column::Id.eq(id))
        .filter(notification::Column::UserId.eq(user_id))
        .filter(notification::Column::OrgId.eq(ctx.org_id))
        .filter(notification::Column::ReadAt.is_null())
        .exec(&state.db)
        .await?;
    Ok(find_mine(&state.db, ctx, user_id, id).await?.into())
}

/// Marks every unread notification of the caller in their org read.
///
/// # Errors
/// `SESSION_REQUIRED`.
pub async fn mark_all_read(ctx: &Ctx, state: &AppState) -> AppResult<MarkedRead> {
    let user_id = person(ctx)?;
    let done = notification::Entity::update_many()
        .col_expr(notification::Column::ReadAt, Expr::value(Some(Utc::now())))
        .filter(notification::Column::UserId.eq(user_id))
        .filter(notification::Column::OrgId.eq(ctx.org_id))
        .filter(notification::Column::ReadAt.is_null())
        .exec(&state.db)
        .await?;
    Ok(MarkedRead {
        count: done.rows_affected,
    })
}

/// The preferences of `user_id` in `org_id` (the defaults without a stored row).
///
/// # Errors
/// Only on database failure.
pub async fn preferences_of(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    user_id: Uuid,
) -> AppResult<NotificationPreferences> {
    Ok(
        notification_preference::Entity::find_by_id((user_id, org_id))
            .one(db)
            .await?
            .map(NotificationPreferences::from)
            .unwrap_or_default(),
    )
}

/// The caller's notification choices in their org.
///
/// # Errors
/// `SESSION_REQUIRED`.
pub async fn preferences(ctx: &Ctx, state: &AppState) -> AppResult<NotificationPreferences> {
    let user_id = person(ctx)?;
    preferences_of(&state.db, ctx.org_id, user_id).await
}

/// Changes to one's preferences; absent fields stay as they are.
#[derive(Clone, Debug, Default)]
pub struct PreferencesUpdate {
    pub kinds: Option<Vec<NotificationKind>>,
    pub min_severity: Option<Severity>,
    pub email: Option<bool>,
}

/// Changes the caller's notification choices in their org.
///
/// # Errors
/// `SESSION_REQUIRED`.
pub async fn update_preferences(
    ctx: &Ctx,
    state: &AppState,
    change: PreferencesUpdate,
) -> AppResult<NotificationPreferences> {
    let user_id = person(ctx)?;
    let txn = crate::db::begin_write(&state.db).await?;
    let mut prefs = preferences_of(&txn, ctx.org_id, user_id).await?;
    if let Some(kinds) = change.kinds {
        // In their declared order, each once.
        prefs.kinds = NotificationKind::ALL
            .iter()
            .copied()
            .filter(|k| kinds.contains(k))
            .collect();
    }
    if let Some(min) = change.min_severity {
        prefs.min_severity = min;
    }
    if let Some(email) = change.email {
        prefs.email = email;
    }
    notification_preference::Entity::insert(notification_preference::ActiveModel {
        user_id: Set(user_id),
        org_id: Set(ctx.org_id),
        kinds: Set(prefs.stored_kinds()),
        min_severity: Set(prefs.min_severity.as_str().into()),
        email: Set(prefs.email),
        updated_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::columns([
            notification_preference::Column::UserId,
            notification_preference::Column::OrgId,
        ])
        .update_columns([
            notification_preference::Column::Kinds,
            notification_preference::Column::MinSeverity,
            notification_preference::Column::Email,
            notification_preference::Column::UpdatedAt,
        ])
        .to_owned(),
    )
    .exec_without_returning(&txn)
    .await?;
    txn.commit().await?;
    Ok(prefs)
}

/// Follows a target of the caller's org: its new findings and failed scans notify them.
/// Following twice is following once.
///
/// # Errors
/// `NOT_FOUND`, `SESSION_REQUIRED`.
pub async fn follow(ctx: &Ctx, state: &AppState, target_id: Uuid) -> AppResult<Target> {
    let user_id = person(ctx)?;
    let target = crate::targets::get(ctx, state, target_id).await?;
    target_follow::Entity::insert(target_follow::ActiveModel {
        user_id: Set(user_id),
        target_id: Set(target.id),
        org_id: Set(ctx.org_id),
        created_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::columns([
            target_follow::Column::UserId,
            target_follow::Column::TargetId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(&state.db)
    .await?;
    Ok(target)
}

/// Stops following a target; true whether or not the caller followed it.
///
/// # Errors
/// `NOT_FOUND`, `SESSION_REQUIRED`.
pub async fn unfollow(ctx: &Ctx, state: &AppState, target_id: Uuid) -> AppResult<bool> {
    let user_id = person(ctx)?;
    let target = crate::targets::get(ctx, state, target_id).await?;
    target_follow::Entity::delete_many()
        .filter(target_follow::Column::UserId.eq(user_id))
        .filter(target_follow::Column::TargetId.eq(target.id))
        .filter(target_follow::Column::OrgId.eq(ctx.org_id))
        .exec(&state.db)
        .await?;
    Ok(true)
}

/// The targets of the org the caller follows, by name.
///
/// # Errors
/// `SESSION_REQUIRED`.
pub async fn followed_targets(
    ctx: &Ctx,
    state: &AppState,
    window: Window,
) -> AppResult<Paged<Target>> {
    let user_id = person(ctx)?;
    let query = target::Entity::find()
        .inner_join(target_follow::Entity)
        .filter(target_follow::Column::UserId.eq(user_id))
        .filter(target_follow::Column::OrgId.eq(ctx.org_id))
        .filter(target::Column::OrgId.eq(ctx.org_id));
    let total = query.clone().count(&state.db).await?;
    let items = query
        .order_by_asc(target::Column::Name)
        .order_by_asc(target::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .all(&state.db)
        .await?
        .into_iter()
        .map(Target::from)
        .collect();
    Ok(Paged {
        items,
        total,
        window,
    })
}
