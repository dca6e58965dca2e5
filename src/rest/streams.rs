//! The REST routes that move report bytes and so cannot be GraphQL operations: upload and raw
//! download. Thin: they adapt HTTP to the ingest and scans services.

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::TryStreamExt;
use serde::Deserialize;
use tokio_util::io::{ReaderStream, StreamReader};
use uuid::Uuid;

use super::row::Method;
use super::translate::{self, RestRequest};
use crate::app::AppState;
use crate::context::{Ctx, Permission, RequestMeta};
use crate::error::{AppError, AppResult, Backend};
use crate::graphql::AppSchema;
use crate::ingest::upload::{self, UploadRequest};
use crate::ingest::ReportFormat;
use crate::store::ByteStream;
use crate::targets::TargetKind;

/// Where reports are uploaded.
pub const UPLOAD_PATH: &str = "/api/v1/ingest";

/// The table row whose answer the upload's answer carries: a queued scan reads exactly as
/// `GET /api/v1/scans/{id}` would show it.
pub const SCAN_ROW: (Method, &str) = (Method::Get, "/api/v1/scans/{id}");

/// The upload's body: the report's bytes (a binary string, so generated clients send a file or
/// bytes as they are).
pub struct ReportBytes;

impl utoipa::PartialSchema for ReportBytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Binary,
            )))
            .into()
    }
}

impl utoipa::ToSchema for ReportBytes {}

/// Query parameters of `POST /api/v1/ingest`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IngestParams {
    /// Target name; read from the report when absent.
    pub target: Option<String>,
    /// Target kind (`repository`, `container_image`, `kafka_cluster`, ...); from the report or
    /// `application` when absent.
    pub target_kind: Option<String>,
    /// `native`, `sarif`, `cyclonedx`, `trivy` or `detect_secrets`; detected from the content when absent.
    pub format: Option<String>,
    /// Scanner name; read from the report when absent.
    pub scanner: Option<String>,
    /// Policy tier the scan ran under.
    pub policy_tier: Option<String>,
}

/// The authenticated caller of a hand-written route, or `UNAUTHENTICATED`.
pub(crate) fn caller(ctx: Option<Extension<Ctx>>) -> AppResult<Ctx> {
    ctx.map(|Extension(c)| c)
        .ok_or_else(|| AppError::unauthenticated("authentication required"))
}

/// The body as a stream of chunks, un-gzipped when the client says it is gzip.
fn body_stream(headers: &HeaderMap, body: Body) -> AppResult<ByteStream> {
    let raw = body.into_data_stream().map_err(std::io::Error::other);
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("identity") => Ok(Box::pin(raw)),
        Some("gzip") | Some("x-gzip") => {
            let reader =
                async_compression::tokio::bufread::GzipDecoder::new(StreamReader::new(raw));
            Ok(Box::pin(ReaderStream::with_capacity(reader, 64 * 1024)))
        }
        Some(other) => Err(AppError::Client {
            code: crate::error::ErrorCode::UnsupportedFormat,
            message: format!("unsupported Content-Encoding {other:?}; send identity or gzip"),
            details: Vec::new(),
        }),
    }
}

/// Upload a report: the body is the report (any supported format, gzip allowed). Answers 202
/// with the queued scan (as `GET /api/v1/scans/{id}` shows it) and links to it and its events.
#[utoipa::path(post, path = "/api/v1/ingest", tag = "scans", params(IngestParams,
        ("Idempotency-Key" = Option<String>, Header, description = "Repeats within 24 hours return the first scan")),
    request_body(content = inline(ReportBytes), content_type = "application/octet-stream", description = "The report"),
    responses(
        // Their body is the `GET /api/v1/scans/{id}` row's, added by `openapi::describe_upload_answer`.
        (status = 202, description = "Queued: the scan, with links to it, its events and its raw report"),
        (status = 200, description = "An earlier request with this Idempotency-Key created the scan within 24 hours: that scan"),
        (status = 400, description = "Empty or unreadable report", body = crate::error::ErrorEnvelope),
        (status = 401, description = "No valid credential", body = crate::error::ErrorEnvelope),
        (status = 403, description = "Needs the member role or a write key", body = crate::error::ErrorEnvelope),
        (status = 429, description = "Rate limited", body = crate::error::ErrorEnvelope),
        (status = 413, description = "Larger than the limit", body = crate::error::ErrorEnvelope),
        (status = 422, description = "A parameter breaks a rule (e.g. an unknown target kind)", body = crate::error::ErrorEnvelope),
        (status = 415, description = "Unsupported format", body = crate::error::ErrorEnvelope)),
    security(("bearer_auth" = []), ("api_key" = [])))]
pub async fn ingest(
    State(state): State<AppState>,
    State(schema): State<AppSchema>,
    Extension(meta): Extension<RequestMeta>,
    ctx: Option<Extension<Ctx>>,
    Query(params): Query<IngestParams>,
    request: Request,
) -> Result<Response, AppError> {
    let ctx = caller(ctx)?;
    let headers = request.headers().clone();
    let content_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        // A gzip body's length says nothing about the report's.
        .filter(|_| headers.get(header::CONTENT_ENCODING).is_none());
    let format = params
        .format
        .as_deref()
        .map(|f| {
            ReportFormat::parse_name(f).ok_or_else(|| AppError::Client {
                code: crate::error::ErrorCode::UnsupportedFormat,
                message: format!(
                    "unsupported format {f:?}; expected native, sarif, cyclonedx, trivy or detect_secrets"
                ),
                details: Vec::new(),
            })
        })
        .transpose()?;
    let req = UploadRequest {
        target: params.target,
        target_kind: params
            .target_kind
            .as_deref()
            .map(TargetKind::parse)
            .transpose()?,
        format,
        scanner: params.scanner,
        policy_tier: params.policy_tier,
        idempotency_key: headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        content_length,
    };
    let body = body_stream(&headers, request.into_body())?;
    let accepted = upload::accept(&ctx, &state, req, body).await?;
    let id = accepted.scan.id;
    let status = if accepted.repeated {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let scan = match scan_as_rest(&schema, meta, ctx, id).await {
        Ok(scan) => scan,
        Err(res) => return Ok(res),
    };
    let mut res = (
        status,
        Json(serde_json::json!({
            "data": scan,
            "links": {
                "self": format!("/api/v1/scans/{id}"),
                "events": format!("/api/v1/scans/{id}/events"),
                "raw": format!("/api/v1/scans/{id}/raw"),
            }
        })),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/scans/{id}")) {
        res.headers_mut().insert(header::LOCATION, location);
    }
    Ok(res)
}

/// The scan as [`SCAN_ROW`] answers it, through the translator (the same names, spellings
/// and fields), or that row's error answer.
pub(crate) async fn scan_as_rest(
    schema: &AppSchema,
    meta: RequestMeta,
    ctx: Ctx,
    id: Uuid,
) -> Result<async_graphql::Value, Response> {
    let api = super::api().map_err(|e| AppError::from(e).into_response())?;
    let (method, path) = SCAN_ROW;
    let route = api.route(method, path).ok_or_else(|| {
        AppError::from(anyhow::anyhow!("the REST table has no {path} row")).into_response()
    })?;
    let req = RestRequest {
        path,
        path_params: &[("id".to_string(), id.to_string())],
        query: &[],
        headers: &HeaderMap::new(),
        body: &[],
    };
    let (scan, _) =
        translate::execute(route, &api.index, schema, &req, |r| r.data(meta).data(ctx)).await?;
    Ok(scan)
}

/// The raw report exactly as uploaded, streamed, with its SHA-256 as the ETag.
#[utoipa::path(get, path = "/api/v1/scans/{id}/raw", tag = "scans",
    params(("id" = Uuid, Path, description = "Scan id")),
    responses(
        (status = 200, description = "The report's bytes", content_type = "application/octet-stream"),
        (status = 304, description = "Unchanged (If-None-Match)"),
        (status = 400, description = "Malformed id", body = crate::error::ErrorEnvelope),
        (status = 401, description = "No valid credential", body = crate::error::ErrorEnvelope),
        (status = 429, description = "Rate limited", body = crate::error::ErrorEnvelope),
        (status = 404, description = "No such scan, or no stored report", body = crate::error::ErrorEnvelope)),
    security(("bearer_auth" = []), ("api_key" = [])))]
pub async fn raw(
    State(state): State<AppState>,
    ctx: Option<Extension<Ctx>>,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let ctx = caller(ctx)?;
    ctx.require(Permission::Read)?;
    let scan = crate::scans::get(&ctx, &state, id).await?;
    let (Some(key), Some(sha)) = (scan.raw_key.as_deref(), scan.raw_sha256.as_deref()) else {
        return Err(AppError::not_found("raw report"));
    };
    let etag = format!("\"{sha}\"");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let object = state
        .store
        .get(key)
        .await
        .map_err(|e| AppError::backend_unavailable(Backend::ObjectStore, e))?
        .ok_or_else(|| AppError::not_found("raw report"))?;
    let mut res = Response::new(Body::from_stream(object.body));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(object.size));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"scan-{id}.report\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}
