//! Server-Sent Events for REST clients: the same progress payloads as the subscriptions
//! (snake_case), as events `progress`, `status` and `done`; `Last-Event-ID` resumes.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;
use serde::Deserialize;
use uuid::Uuid;

use super::{follow_scan_stream, ScanProgress};
use crate::app::AppState;
use crate::context::{Actor, Ctx, Permission, RequestMeta, Scope};
use crate::error::{AppError, AppResult};

/// Lifetime of an event token.
const EVENT_TOKEN_TTL_SECS: i64 = 300;

/// Query of the events route.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    /// A token from `POST /api/v1/scans/{id}/event-token`, for clients that cannot set headers.
    pub event_token: Option<String>,
}

/// The event id: the scan's event sequence number, so a resumed stream skips what it saw.
fn event_id(p: &ScanProgress) -> u64 {
    p.seq
}

/// The caller for an events request: a normal credential, or an event token for this scan.
fn events_caller(
    state: &AppState,
    ctx: Option<Ctx>,
    meta: RequestMeta,
    token: Option<&str>,
    scan: Uuid,
) -> AppResult<Ctx> {
    if let Some(ctx) = ctx {
        return Ok(ctx);
    }
    let token = token.ok_or_else(|| AppError::unauthenticated("authentication required"))?;
    let claims = state.jwt.verify_events(token)?;
    if claims.scan != scan {
        return Err(AppError::unauthenticated(
            "the event token is for another scan",
        ));
    }
    Ok(Ctx {
        actor: Actor::ApiKey {
            key_id: Uuid::nil(),
            label: format!("event-token:{scan}"),
            scope: Scope::Read,
        },
        org_id: claims.org,
        meta,
        mfa_enrolment_required: false,
    })
}

/// Progress of one scan as Server-Sent Events; ends after `done`.
#[utoipa::path(get, path = "/api/v1/scans/{id}/events", tag = "scans",
    params(("id" = Uuid, Path, description = "Scan id"), EventsParams,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event")),
    responses(
        (status = 200, description = "`text/event-stream` of `progress`, `status` and `done` events", content_type = "text/event-stream"),
        (status = 400, description = "Malformed id or unknown parameter", body = crate::error::ErrorEnvelope),
        (status = 401, description = "No credential or event token", body = crate::error::ErrorEnvelope),
        (status = 429, description = "Rate limited", body = crate::error::ErrorEnvelope),
        (status = 404, description = "No such scan", body = crate::error::ErrorEnvelope)),
    security((), ("bearer_auth" = []), ("api_key" = [])))]
pub async fn events(
    State(state): State<AppState>,
    ctx: Option<Extension<Ctx>>,
    Extension(meta): Extension<RequestMeta>,
    Path(id): Path<Uuid>,
    Query(params): Query<EventsParams>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let ctx = events_caller(
        &state,
        ctx.map(|Extension(c)| c),
        meta,
        params.event_token.as_deref(),
        id,
    )?;
    let resume_after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let progress = follow_scan_stream(&state, &ctx, id).await?;
    let mut previous_status = None;
    let subscribed = state.metrics.subscribed("sse");
    // At shutdown the stream ends; `EventSource` reconnects with `Last-Event-ID` by itself.
    let events = progress
        .take_until(state.shutdown.clone().cancelled_owned())
        .filter(move |p| {
            futures::future::ready(resume_after.is_none_or(|after| event_id(p) > after))
        })
        .map(move |p| {
            let _counted = &subscribed;
            let name = if p.is_terminal() {
                "done"
            } else if previous_status != Some(p.status) {
                "status"
            } else {
                "progress"
            };
            previous_status = Some(p.status);
            let event = Event::default()
                .event(name)
                .id(event_id(&p).to_string())
                .json_data(p.as_ref())
                .unwrap_or_else(|_| Event::default().event(name));
            Ok::<_, Infallible>(event)
        });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// A short-lived token for one scan's event stream.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EventToken {
    /// Pass as `?event_token=` to the events route.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

/// `{"data": EventToken}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EventTokenEnvelope {
    pub data: EventToken,
}

/// Mints a short-lived token for `GET /api/v1/scans/{id}/events?event_token=`, for browsers'
/// `EventSource`, which cannot set headers.
#[utoipa::path(post, path = "/api/v1/scans/{id}/event-token", tag = "scans",
    params(("id" = Uuid, Path, description = "Scan id")),
    responses(
        (status = 201, description = "The token", body = EventTokenEnvelope),
        (status = 400, description = "Malformed id", body = crate::error::ErrorEnvelope),
        (status = 401, description = "No valid credential", body = crate::error::ErrorEnvelope),
        (status = 429, description = "Rate limited", body = crate::error::ErrorEnvelope),
        (status = 404, description = "No such scan", body = crate::error::ErrorEnvelope)),
    security(("bearer_auth" = []), ("api_key" = [])))]
pub async fn event_token(
    State(state): State<AppState>,
    ctx: Option<Extension<Ctx>>,
    Path(id): Path<Uuid>,
) -> Result<Response, AppError> {
    let ctx = crate::rest::streams::caller(ctx)?;
    ctx.require(Permission::Read)?;
    let scan = crate::scans::get(&ctx, &state, id).await?;
    let token = state
        .jwt
        .issue_events(ctx.org_id, scan.id, EVENT_TOKEN_TTL_SECS)?;
    let body = EventTokenEnvelope {
        data: EventToken {
            token,
            expires_in: EVENT_TOKEN_TTL_SECS,
        },
    };
    // The token is a credential: no cache may keep it.
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response())
}
