//! `POST /api/v1/scans`: starts engine scans. Hand-written because its body is either JSON
//! (a server-side directory or a git repository) or the bytes of a source archive; both end
//! in [`super::service::start`], as `startScan` does.

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::TryStreamExt;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::service::{self, SourceRequest, StartScan};
use crate::app::AppState;
use crate::context::{Ctx, RequestMeta};
use crate::error::{AppError, ErrorCode};
use crate::graphql::AppSchema;
use crate::rest::streams::{caller, scan_as_rest, ReportBytes};
use crate::targets::TargetKind;

/// Where engine scans are started.
pub const START_PATH: &str = "/api/v1/scans";

/// Query parameters of `POST /api/v1/scans` with an archive body.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ArchiveParams {
    /// The target scanned (or name it with `target`).
    pub target_id: Option<Uuid>,
    /// Target name, created on first use.
    pub target: Option<String>,
    /// Kind of a target named by `target`; `repository` when absent.
    pub target_kind: Option<String>,
    /// Engine names, comma-separated (`bandit,semgrep`).
    pub engines: Option<String>,
}

/// The JSON body of `POST /api/v1/scans`: a server-side directory or a git repository.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartScanBody {
    /// The target scanned (or name it with `target`).
    pub target_id: Option<Uuid>,
    /// Target name, created on first use.
    pub target: Option<String>,
    /// Kind of a target named by `target`; `repository` when absent.
    pub target_kind: Option<String>,
    /// Engine names, as `GET /api/v1/engines` lists them.
    pub engines: Vec<String>,
    pub source: SourceBody,
}

/// Exactly one of `path` and `git`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceBody {
    /// A directory on the server under an allowed root (admin or an `engines` key).
    pub path: Option<String>,
    pub git: Option<GitBody>,
}

/// A git repository, cloned shallowly.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GitBody {
    /// An https/http/ssh/git URL (write), or an absolute path on the server under an allowed
    /// root (admin or an `engines` key).
    pub url: String,
    /// A branch or tag.
    pub reference: Option<String>,
}

fn target_kind(kind: Option<&str>) -> Result<Option<TargetKind>, AppError> {
    kind.map(TargetKind::parse).transpose()
}

/// Start engine scans. With `Content-Type: application/json` the body names a server-side
/// directory or a git repository; with any other type it is a `.tar.gz` or `.zip` archive of
/// the code, and the query names the target and engines. Answers 202 with one queued scan per
/// engine (each as `GET /api/v1/scans/{id}` shows it), grouped, and `Location` listing the
/// group's scans.
#[utoipa::path(post, path = "/api/v1/scans", tag = "scans", params(ArchiveParams),
    request_body(content(
        (StartScanBody = "application/json"),
        (inline(ReportBytes) = "application/octet-stream")),
        description = "A JSON source, or the archive's bytes (`.tar.gz` or `.zip`; any type but JSON)"),
    responses(
        (status = 202, description = "Queued: `{data: {group_id, scans}, links}`"),
        (status = 400, description = "Unsafe or unreadable archive, a path outside the allowed roots, a bad git URL", body = crate::error::ErrorEnvelope),
        (status = 401, description = "No valid credential", body = crate::error::ErrorEnvelope),
        (status = 403, description = "Needs write; server-side paths need an admin or an `engines` key", body = crate::error::ErrorEnvelope),
        (status = 404, description = "No such target", body = crate::error::ErrorEnvelope),
        (status = 413, description = "Archive larger than the limit", body = crate::error::ErrorEnvelope),
        (status = 422, description = "Unknown or unavailable engine, missing target or source", body = crate::error::ErrorEnvelope),
        (status = 429, description = "Rate limited", body = crate::error::ErrorEnvelope)),
    security(("bearer_auth" = []), ("api_key" = [])))]
pub async fn start_scan(
    State(state): State<AppState>,
    State(schema): State<AppSchema>,
    Extension(meta): Extension<RequestMeta>,
    ctx: Option<Extension<Ctx>>,
    Query(params): Query<ArchiveParams>,
    request: Request,
) -> Result<Response, AppError> {
    let ctx = caller(ctx)?;
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    let mut spooled = None;
    let start = if is_json {
        let bytes = axum::body::to_bytes(request.into_body(), state.config.max_body_bytes)
            .await
            .map_err(|_| AppError::payload_too_large("the body is larger than the limit"))?;
        let body: StartScanBody = serde_json::from_slice(&bytes)
            .map_err(|e| AppError::bad_request(format!("invalid JSON body: {e}")))?;
        let source = match (body.source.path, body.source.git) {
            (Some(path), None) => SourceRequest::Path(path),
            (None, Some(git)) => SourceRequest::Git {
                url: git.url,
                reference: git.reference,
            },
            _ => {
                return Err(AppError::invalid(
                    "source",
                    "give exactly one of source.path and source.git (or send an archive)",
                ))
            }
        };
        StartScan {
            target_id: body.target_id.or(params.target_id),
            target: body.target.or(params.target),
            target_kind: target_kind(body.target_kind.or(params.target_kind).as_deref())?,
            engines: body.engines,
            source,
        }
    } else {
        ctx.require(crate::context::Permission::Write)?;
        let file = spool(&state, request.into_body()).await?;
        let path = file.path().to_path_buf();
        spooled = Some(file);
        StartScan {
            target_id: params.target_id,
            target: params.target,
            target_kind: target_kind(params.target_kind.as_deref())?,
            engines: params
                .engines
                .as_deref()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect(),
            source: SourceRequest::Archive(path),
        }
    };
    let started = service::start(&ctx, &state, start).await;
    drop(spooled);
    let started = started?;
    let mut scans = Vec::with_capacity(started.scans.len());
    for scan in &started.scans {
        match scan_as_rest(&schema, meta.clone(), ctx.clone(), scan.id).await {
            Ok(scan) => scans.push(scan),
            Err(res) => return Ok(res),
        }
    }
    let group = started.group_id;
    let list = format!("/api/v1/scans?group_id={group}");
    let mut res = (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({
            "data": { "group_id": group, "scans": scans },
            "links": {
                "self": list,
                "scans": started.scans.iter().map(|s| format!("/api/v1/scans/{}", s.id)).collect::<Vec<_>>(),
                "events": started.scans.iter().map(|s| format!("/api/v1/scans/{}/events", s.id)).collect::<Vec<_>>(),
            }
        })),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&list) {
        res.headers_mut().insert(header::LOCATION, location);
    }
    Ok(res)
}

/// Writes the archive body to a temporary file, refusing it past the limit.
async fn spool(state: &AppState, body: Body) -> Result<tempfile::NamedTempFile, AppError> {
    let limit = state.config.engine_max_archive_bytes;
    let file = tempfile::NamedTempFile::new().map_err(|e| AppError::Internal(e.into()))?;
    let mut out =
        tokio::fs::File::from_std(file.reopen().map_err(|e| AppError::Internal(e.into()))?);
    let mut stream = body.into_data_stream();
    let mut written: u64 = 0;
    loop {
        let chunk = match stream.try_next().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(err) => {
                return Err(if crate::http::limits::is_length_limit(&err) {
                    too_large(limit)
                } else {
                    AppError::bad_request(format!("reading the archive failed: {err}"))
                })
            }
        };
        written += chunk.len() as u64;
        if written > limit {
            return Err(too_large(limit));
        }
        out.write_all(&chunk)
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
    }
    out.flush()
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    if written == 0 {
        return Err(AppError::Client {
            code: ErrorCode::BadRequest,
            message: "empty body: send a .tar.gz or .zip archive, or a JSON source".into(),
            details: Vec::new(),
        });
    }
    Ok(file)
}

fn too_large(limit: u64) -> AppError {
    AppError::payload_too_large(format!(
        "the archive is larger than the limit of {limit} bytes"
    ))
}
