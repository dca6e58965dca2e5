//! Exports: REST routes whose answer is a file streamed as it is produced, so they cannot be
//! GraphQL operations. Thin: they adapt HTTP to a service's stream.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::Extension;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::streams::caller;
use crate::app::AppState;
use crate::audit::{self, AuditFilter, ExportFormat};
use crate::context::Ctx;
use crate::error::{AppError, AppResult, ErrorCode, FieldError};

/// Where the audit log is exported.
pub const AUDIT_EXPORT_PATH: &str = "/api/v1/audit-events/export";

/// Query parameters of `GET /api/v1/audit-events/export`: the list's filters and a format.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditExportParams {
    /// `csv` (default) or `json`.
    pub format: Option<String>,
    /// Only this action, e.g. `scan.delete`.
    pub action: Option<String>,
    /// Only this actor: the id of a user or an API key, or the label shown as `actor`.
    pub actor: Option<String>,
    /// Only this resource type, e.g. `finding`.
    pub resource_type: Option<String>,
    /// Only events at or after this instant (RFC 3339).
    pub since: Option<String>,
    /// Only events before this instant (RFC 3339).
    pub until: Option<String>,
}

fn instant(field: &str, value: Option<&str>) -> AppResult<Option<DateTime<Utc>>> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    let message = "must be an RFC 3339 date-time, e.g. 2025-01-31T12:00:00Z";
                    AppError::Client {
                        code: ErrorCode::BadRequest,
                        message: format!("{field}: {message}"),
                        details: vec![FieldError {
                            field: field.into(),
                            message: message.into(),
                        }],
                    }
                })
        })
        .transpose()
}

/// The org's audit log as one file, newest first, streamed (admins, signed in: API keys hold
/// no admin rights). Takes the same filters as `GET /api/v1/audit-events`.
#[utoipa::path(get, path = "/api/v1/audit-events/export", tag = "audit",
    params(AuditExportParams),
    responses(
        (status = 200, description = "The events: CSV with a header row, or a JSON array", content((String = "text/csv"), (String = "application/json"))),
        (status = 400, description = "A malformed parameter", body = crate::error::ErrorEnvelope),
        (status = 401, description = "No valid credential", body = crate::error::ErrorEnvelope),
        (status = 403, description = "Needs the admin role", body = crate::error::ErrorEnvelope),
        (status = 429, description = "Rate limited", body = crate::error::ErrorEnvelope)),
    security(("bearer_auth" = []), ("cookie_auth" = [])))]
pub async fn audit_events(
    State(state): State<AppState>,
    ctx: Option<Extension<Ctx>>,
    Query(params): Query<AuditExportParams>,
) -> Result<Response, AppError> {
    let ctx = caller(ctx)?;
    let format = ExportFormat::parse(params.format.as_deref().unwrap_or("csv"))?;
    let filter = AuditFilter {
        action: params.action,
        actor: params.actor,
        resource_type: params.resource_type,
        since: instant("since", params.since.as_deref())?,
        until: instant("until", params.until.as_deref())?,
    };
    let body = audit::export(&ctx, &state, filter, format)?;
    let mut res = Response::new(Body::from_stream(body));
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    let disposition = format!(
        "attachment; filename=\"audit-events.{}\"",
        format.extension()
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}
