//! Server-Sent Events of the caller's notifications, for REST clients: each is an event
//! `notification` whose id is the notification's and whose data is the notification as `GET
//! /api/v1/notifications/{id}` gives it (snake_case). `Last-Event-ID` replays what was made
//! after that notification before following live ones, so a reconnecting `EventSource` misses
//! nothing.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use entity::notification;
use futures::StreamExt;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::Notification;
use crate::app::AppState;
use crate::context::{Ctx, Permission};
use crate::error::AppError;

/// At most this many notifications are replayed after `Last-Event-ID`.
const REPLAY_MAX: u64 = 500;

/// The caller's notifications made after `after` (one of theirs), oldest first.
async fn replay(
    state: &AppState,
    ctx: &Ctx,
    user_id: Uuid,
    after: Uuid,
) -> Result<Vec<Notification>, AppError> {
    let mine = || {
        notification::Entity::find()
            .filter(notification::Column::UserId.eq(user_id))
            .filter(notification::Column::OrgId.eq(ctx.org_id))
    };
    let Some(seen) = mine()
        .filter(notification::Column::Id.eq(after))
        .one(&state.db)
        .await?
    else {
        return Ok(Vec::new());
    };
    Ok(mine()
        .filter(notification::Column::CreatedAt.gte(seen.created_at))
        .filter(notification::Column::Id.ne(seen.id))
        .order_by_asc(notification::Column::CreatedAt)
        .order_by_asc(notification::Column::Id)
        .limit(REPLAY_MAX)
        .all(&state.db)
        .await?
        .into_iter()
        .filter(|n| n.created_at > seen.created_at || n.id > seen.id)
        .map(Notification::from)
        .collect())
}

fn event(n: &Notification) -> Result<Event, Infallible> {
    Ok(Event::default()
        .event("notification")
        .id(n.id.to_string())
        .json_data(n)
        .unwrap_or_else(|_| Event::default().event("notification")))
}

/// My notifications as Server-Sent Events, live; never ends while the server runs.
#[utoipa::path(get, path = "/api/v1/notifications/events", tag = "notifications", operation_id = "notification_events",
    params(("Last-Event-ID" = Option<String>, Header, description = "Replay my notifications made after this one (an event id) first")),
    responses(
        (status = 200, description = "`text/event-stream` of `notification` events (data: the notification, as `GET /api/v1/notifications/{id}` gives it)", content_type = "text/event-stream"),
        (status = 401, description = "No credential", body = crate::error::ErrorEnvelope),
        (status = 403, description = "An API key (`SESSION_REQUIRED`): notifications are a person's", body = crate::error::ErrorEnvelope),
        (status = 429, description = "Rate limited", body = crate::error::ErrorEnvelope)),
    security(("bearer_auth" = []), ("cookie_auth" = [])))]
pub async fn events(
    State(state): State<AppState>,
    ctx: Option<Extension<Ctx>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let ctx = crate::rest::streams::caller(ctx)?;
    let user_id = ctx.require_session_with(Permission::Read)?;
    // Listen first, then read what was missed: nothing made in between is lost.
    let live = super::events::follow(&state, &ctx)?;
    let resume_after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v.trim()).ok());
    let missed = match resume_after {
        Some(after) => replay(&state, &ctx, user_id, after).await?,
        None => Vec::new(),
    };
    // A notification made while replaying may come both ways: it is sent once.
    let replayed: HashSet<Uuid> = missed.iter().map(|n| n.id).collect();
    let subscribed = state.metrics.subscribed("sse");
    let events = futures::stream::iter(missed)
        .chain(live.filter(move |n| futures::future::ready(!replayed.contains(&n.id))))
        .take_until(state.shutdown.clone().cancelled_owned())
        .map(move |n| {
            let _counted = &subscribed;
            event(&n)
        });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}
