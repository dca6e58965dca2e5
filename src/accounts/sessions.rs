//! The signed-in person's own sessions: list them, end one, end every other.

use chrono::Utc;
use entity::session;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::UserSession;
use crate::app::AppState;
use crate::audit::{self, AuditEntry};
use crate::auth::revocation::{self, Revoked};
use crate::context::Ctx;
use crate::error::{AppError, AppResult};

/// Ends every live session of `user_id` except `keep`; returns how many ended. The caller
/// announces it ([`Revoked::User`]) once its transaction has committed.
pub(crate) async fn revoke_all(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    keep: Option<Uuid>,
) -> AppResult<u64> {
    let mut update = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(Some(Utc::now())))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null());
    if let Some(keep) = keep {
        update = update.filter(session::Column::Id.ne(keep));
    }
    Ok(update.exec(db).await?.rows_affected)
}

/// The caller's open sessions, in every org, newest first.
///
/// # Errors
/// `SESSION_REQUIRED` for API keys.
pub async fn list_mine(ctx: &Ctx, state: &AppState) -> AppResult<Vec<UserSession>> {
    let (user_id, current) = ctx.require_session()?;
    let rows = session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(Utc::now()))
        .order_by_desc(session::Column::CreatedAt)
        .order_by_desc(session::Column::Id)
        .all(&state.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| UserSession::of(row, current))
        .collect())
}

/// Ends one of the caller's sessions (the current one too: that is signing out).
///
/// # Errors
/// `SESSION_REQUIRED`; `NOT_FOUND` for a session that is not the caller's or has ended.
pub async fn revoke_mine(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<()> {
    let (user_id, _) = ctx.require_session()?;
    let txn = crate::db::begin_write(&state.db).await?;
    let ended = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(Some(Utc::now())))
        .filter(session::Column::Id.eq(id))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?
        .rows_affected;
    if ended == 0 {
        return Err(AppError::not_found("session"));
    }
    audit::record(&txn, AuditEntry::by(ctx, "session.revoke", "session", id)).await?;
    txn.commit().await?;
    revocation::publish(
        state.bus.as_ref(),
        Revoked::Session {
            user_id,
            session_id: id,
        },
    )
    .await;
    Ok(())
}

/// Ends every session of the caller but the one making the request; returns how many ended.
///
/// # Errors
/// `SESSION_REQUIRED` for API keys.
pub async fn revoke_others(ctx: &Ctx, state: &AppState) -> AppResult<u64> {
    let (user_id, current) = ctx.require_session()?;
    let txn = crate::db::begin_write(&state.db).await?;
    let ended = revoke_all(&txn, user_id, Some(current)).await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "session.revoke_others", "user", user_id)
            .with_details(serde_json::json!({ "sessions": ended })),
    )
    .await?;
    txn.commit().await?;
    revocation::publish(state.bus.as_ref(), Revoked::User { user_id }).await;
    Ok(ended)
}
