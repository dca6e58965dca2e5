//! Accepting a report: stream it into the object store (hashing it on the way), work out its
//! target, and queue a scan, all without holding the report in memory.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{Duration, Utc};
use entity::{scan, target};
use futures::StreamExt;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, SqlErr};
use uuid::Uuid;

use super::{
    detect, jobs, read_meta, IngestError, ParseError, ReportFormat, ReportMeta, HEAD_BYTES,
};
use crate::app::AppState;
use crate::audit::{self, AuditEntry};
use crate::context::{Ctx, Permission};
use crate::error::{AppError, AppResult, Backend, ErrorCode};
use crate::live::{self, ScanProgress};
use crate::scans::{Scan, ScanStatus};
use crate::store::{blocking_reader, put_hashed, ByteStream, PutReceipt, StoreError};
use crate::targets::TargetKind;
use crate::validate::{self, bounded_text};

/// How long an `Idempotency-Key` answers with the scan it first created.
const IDEMPOTENCY_WINDOW_HOURS: i64 = 24;

/// What the client said about the upload (all optional: the report can say it instead).
#[derive(Clone, Debug, Default)]
pub struct UploadRequest {
    pub target: Option<String>,
    pub target_kind: Option<TargetKind>,
    pub format: Option<ReportFormat>,
    pub scanner: Option<String>,
    pub policy_tier: Option<String>,
    pub idempotency_key: Option<String>,
    /// The declared body size, to refuse oversized uploads before reading them.
    pub content_length: Option<u64>,
}

/// The queued scan, and whether it is the one an earlier request with the same key created.
pub struct Accepted {
    pub scan: Scan,
    pub repeated: bool,
}

/// Takes a report in.
///
/// # Errors
/// `FORBIDDEN` below write; `PAYLOAD_TOO_LARGE`; `BAD_REQUEST` for an empty body;
/// `UNSUPPORTED_FORMAT` when no target is named and the report cannot be read to find one;
/// `SERVICE_UNAVAILABLE` when the object store fails.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn accept(
    ctx: &Ctx,
    state: &AppState,
    req: UploadRequest,
    body: ByteStream,
) -> AppResult<Accepted> {
    ctx.require(Permission::Write)?;
    let target_name = req
        .target
        .as_deref()
        .map(|t| validate::name("target", t, 255))
        .transpose()?;
    let scanner = req
        .scanner
        .as_deref()
        .map(|s| validate::name("scanner", s, 100))
        .transpose()?;
    let policy_tier = req
        .policy_tier
        .as_deref()
        .map(|p| validate::name("policy_tier", p, 100))
        .transpose()?;
    let idempotency_key = req
        .idempotency_key
        .as_deref()
        .map(|k| bounded_text("Idempotency-Key", k, 255))
        .transpose()?;
    let limit = state.config.max_upload_bytes;
    if req.content_length.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    if let Some(key) = &idempotency_key {
        if let Some(existing) = earlier_scan(ctx, state, key).await? {
            return Ok(Accepted {
                scan: existing.into(),
                repeated: true,
            });
        }
    }

    let scan_id = Uuid::now_v7();
    let raw_key = format!("reports/{}/{}", ctx.org_id, scan_id.simple());
    let over_limit = Arc::new(AtomicBool::new(false));
    let limited = limit_body(body, limit, over_limit.clone());
    let receipt = match put_hashed(state.store.as_ref(), &raw_key, limited).await {
        Ok(receipt) => receipt,
        Err(_) if over_limit.load(Ordering::Relaxed) => return Err(too_large(limit)),
        Err(StoreError::Body(err)) => {
            return Err(AppError::bad_request(format!(
                "reading the upload failed: {err}"
            )))
        }
        Err(err) => return Err(AppError::backend_unavailable(Backend::ObjectStore, err)),
    };
    // From here on the report is stored: whatever goes wrong (or if the request is dropped)
    // it is removed again, so no object outlives a scan row that never came to be.
    let mut stored = StoredReport::new(state, scan_id, raw_key.clone());
    let checked = Checked {
        req,
        target_name,
        scanner,
        policy_tier,
        idempotency_key,
        scan_id,
        raw_key,
        receipt,
    };
    match record(ctx, state, checked, &mut stored).await {
        Ok(accepted) => {
            stored.keep();
            Ok(accepted)
        }
        Err(err) => {
            stored.remove().await;
            Err(err)
        }
    }
}

/// An upload checked and stored, to be recorded as a queued scan.
struct Checked {
    req: UploadRequest,
    target_name: Option<String>,
    scanner: Option<String>,
    policy_tier: Option<String>,
    idempotency_key: Option<String>,
    scan_id: Uuid,
    raw_key: String,
    receipt: PutReceipt,
}

/// Works out the stored report's target and writes its scan and job rows.
async fn record(
    ctx: &Ctx,
    state: &AppState,
    checked: Checked,
    stored: &mut StoredReport,
) -> AppResult<Accepted> {
    let Checked {
        req,
        target_name,
        scanner,
        policy_tier,
        idempotency_key,
        scan_id,
        raw_key,
        receipt,
    } = checked;
    if receipt.size == 0 {
        return Err(AppError::bad_request(
            "empty report: the request body has no bytes",
        ));
    }

    // Learn from the report only what the client did not say.
    let (format, meta, unreadable) = if target_name.is_some() && req.format.is_some() {
        (req.format, None, None)
    } else if target_name.is_some() {
        (detect_stored(state, &raw_key).await?, None, None)
    } else {
        match meta_of_stored(state, &raw_key, req.format).await? {
            Ok(meta) => (Some(meta.format), Some(meta), None),
            Err(err) => (req.format, None, Some(err)),
        }
    };
    let Some(name) = target_name
        .clone()
        .or_else(|| meta.as_ref().and_then(|m| m.target_name.clone()))
    else {
        return Err(match unreadable {
            Some(err) => unreadable_error(&err),
            None => AppError::invalid(
                "target",
                "not given, and the report does not name its target",
            ),
        });
    };
    // A name the report gives passes the same rule as one the client gives.
    let name = match validate::name("target", &name, 255) {
        Ok(name) => name,
        Err(err) => {
            discard(state, &raw_key).await;
            return Err(err);
        }
    };
    let kind = req
        .target_kind
        .or_else(|| {
            meta.as_ref()
                .and_then(|m| m.target_kind.as_deref())
                .and_then(|k| TargetKind::parse(k).ok())
        })
        .unwrap_or(TargetKind::Application);
    let target = find_or_create_target(ctx, state, kind, &name, "upload").await?;

    let now = Utc::now();
    let queued = ScanProgress::new(scan_id, target.id, ScanStatus::Queued, "queued");
    let row = scan::ActiveModel {
        id: Set(scan_id),
        org_id: Set(ctx.org_id),
        target_id: Set(target.id),
        status: Set(ScanStatus::Queued.as_str().into()),
        source: Set("upload".into()),
        scanner_name: Set(scanner
            .or_else(|| meta.as_ref().map(|m| m.scanner_name.clone()))
            .unwrap_or_default()),
        scanner_version: Set(meta.as_ref().and_then(|m| m.scanner_version.clone())),
        format: Set(format.map(|f| f.as_str().to_string())),
        policy_tier: Set(policy_tier.or_else(|| meta.as_ref().and_then(|m| m.policy_tier.clone()))),
        raw_key: Set(Some(raw_key.clone())),
        raw_sha256: Set(Some(receipt.sha256.clone())),
        raw_size: Set(Some(receipt.size as i64)),
        progress: Set(serde_json::to_value(&queued).ok()),
        idempotency_key: Set(idempotency_key.clone()),
        created_by: Set(Some(ctx.actor_label())),
        scanned_at: Set(now),
        created_at: Set(now),
        ..Default::default()
    };
    let txn = crate::db::begin_write(&state.db).await?;
    let inserted = match row.insert(&txn).await {
        Ok(inserted) => inserted,
        Err(e)
            if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
                && idempotency_key.is_some() =>
        {
            // A concurrent request with the same key won: answer with its scan.
            txn.rollback().await?;
            discard(state, &raw_key).await;
            let key = idempotency_key.as_deref().unwrap_or_default();
            let existing = earlier_scan(ctx, state, key)
                .await?
                .ok_or_else(|| AppError::conflict("idempotency key in use"))?;
            return Ok(Accepted {
                scan: existing.into(),
                repeated: true,
            });
        }
        Err(e) => return Err(e.into()),
    };
    audit::record(
        &txn,
        AuditEntry::by(ctx, "scan.upload", "scan", scan_id).with_details(serde_json::json!({
            "target_id": target.id,
            "target": target.name,
            "kind": target.kind,
            "format": format.map(|f| f.as_str()),
            "size": receipt.size,
            "sha256": receipt.sha256,
        })),
    )
    .await?;
    jobs::enqueue(
        &txn,
        jobs::INGEST,
        ctx.org_id,
        scan_id,
        state.config.job_max_attempts,
        &ctx.meta.request_id,
    )
    .await?;
    // A failed commit may have committed all the same: from here on the report is removed
    // only if no scan row refers to it.
    stored.maybe_committed = true;
    txn.commit().await?;
    live::publish(state.bus.as_ref(), ctx.org_id, &queued).await;
    state.jobs_wake.notify_waiters();
    Ok(Accepted {
        scan: inserted.into(),
        repeated: false,
    })
}

fn too_large(limit: u64) -> AppError {
    AppError::payload_too_large(format!(
        "the report is larger than the limit of {limit} bytes"
    ))
}

/// The error for a report that names no target and cannot be read to find one.
fn unreadable_error(err: &IngestError) -> AppError {
    let message = format!("the report cannot be read ({err}) and no target was given");
    match err.as_parse() {
        Some(ParseError::Invalid { .. }) | Some(ParseError::NotJson(_)) => {
            AppError::bad_request(message)
        }
        Some(ParseError::Empty) => AppError::bad_request(message),
        _ => AppError::Client {
            code: ErrorCode::UnsupportedFormat,
            message,
            details: Vec::new(),
        },
    }
}

/// A report stored for a scan row that may not come to be: removed when the upload fails or
/// is dropped half-way, unless [`StoredReport::keep`] is called.
struct StoredReport {
    state: Option<AppState>,
    scan_id: Uuid,
    key: String,
    /// Set once the scan row's commit was attempted: the row may exist, so the report is only
    /// removed once the database says it does not (else the sweep decides later).
    maybe_committed: bool,
}

impl StoredReport {
    fn new(state: &AppState, scan_id: Uuid, key: String) -> Self {
        Self {
            state: Some(state.clone()),
            scan_id,
            key,
            maybe_committed: false,
        }
    }

    fn keep(&mut self) {
        self.state = None;
    }

    async fn remove(&mut self) {
        if let Some(state) = self.state.take() {
            remove_unless_used(state, self.scan_id, self.key.clone(), self.maybe_committed).await;
        }
    }
}

impl Drop for StoredReport {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            tokio::spawn(remove_unless_used(
                state,
                self.scan_id,
                self.key.clone(),
                self.maybe_committed,
            ));
        }
    }
}

async fn remove_unless_used(state: AppState, scan_id: Uuid, key: String, maybe_committed: bool) {
    if maybe_committed {
        match scan::Entity::find_by_id(scan_id).one(&state.db).await {
            Ok(None) => {}
            Ok(Some(_)) => return,
            Err(err) => {
                tracing::warn!(%key, %err, "cannot tell whether an upload's scan exists; the store sweep will decide");
                return;
            }
        }
    }
    discard(&state, &key).await;
}

async fn discard(state: &AppState, key: &str) {
    if let Err(err) = state.store.delete(key).await {
        tracing::warn!(%key, %err, "could not remove a rejected upload");
    }
}

/// The scan an earlier request with this key created, if within the window; an older one
/// releases the key.
async fn earlier_scan(ctx: &Ctx, state: &AppState, key: &str) -> AppResult<Option<scan::Model>> {
    let Some(existing) = scan::Entity::find()
        .filter(scan::Column::OrgId.eq(ctx.org_id))
        .filter(scan::Column::IdempotencyKey.eq(key))
        .one(&state.db)
        .await?
    else {
        return Ok(None);
    };
    if Utc::now() - existing.created_at < Duration::hours(IDEMPOTENCY_WINDOW_HOURS) {
        return Ok(Some(existing));
    }
    scan::Entity::update_many()
        .col_expr(
            scan::Column::IdempotencyKey,
            Expr::value(Option::<String>::None),
        )
        .filter(scan::Column::Id.eq(existing.id))
        .exec(&state.db)
        .await?;
    Ok(None)
}

/// Stops the stream with an error once more than `limit` bytes have come.
fn limit_body(body: ByteStream, limit: u64, over: Arc<AtomicBool>) -> ByteStream {
    let seen = Arc::new(AtomicU64::new(0));
    Box::pin(body.map(move |chunk| {
        let chunk = chunk?;
        if seen.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64 > limit {
            over.store(true, Ordering::Relaxed);
            return Err(io::Error::other("upload exceeds the size limit"));
        }
        Ok(chunk)
    }))
}

/// The format, from the first bytes of the stored report.
async fn detect_stored(state: &AppState, key: &str) -> AppResult<Option<ReportFormat>> {
    let state = state.clone();
    let key = key.to_string();
    tokio::task::spawn_blocking(move || -> io::Result<Option<ReportFormat>> {
        let reader = blocking_reader(
            state.store.as_ref(),
            &key,
            &tokio::runtime::Handle::current(),
        )?;
        let mut head = Vec::with_capacity(HEAD_BYTES);
        reader.take(HEAD_BYTES as u64).read_to_end(&mut head)?;
        Ok(detect(&head))
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("detect task: {e}")))?
    .map_err(|e| AppError::backend_unavailable(Backend::ObjectStore, e))
}

/// What the stored report says about itself (one streaming pass, stopping early).
async fn meta_of_stored(
    state: &AppState,
    key: &str,
    format: Option<ReportFormat>,
) -> AppResult<Result<ReportMeta, IngestError>> {
    let state = state.clone();
    let key = key.to_string();
    let result = tokio::task::spawn_blocking(move || -> Result<ReportMeta, IngestError> {
        let reader = blocking_reader(
            state.store.as_ref(),
            &key,
            &tokio::runtime::Handle::current(),
        )?;
        read_meta(format, reader)
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("metadata task: {e}")))?;
    match result {
        Err(IngestError::Io(err)) => Err(AppError::backend_unavailable(Backend::ObjectStore, err)),
        other => Ok(other),
    }
}

/// The org's target of this kind and name, created on first sight (audited with `via`: what
/// created it, `upload` or `engine scan`).
pub(crate) async fn find_or_create_target(
    ctx: &Ctx,
    state: &AppState,
    kind: TargetKind,
    name: &str,
    via: &str,
) -> AppResult<target::Model> {
    let find = || {
        target::Entity::find()
            .filter(target::Column::OrgId.eq(ctx.org_id))
            .filter(target::Column::Kind.eq(kind.as_str()))
            .filter(target::Column::Name.eq(name))
            .one(&state.db)
    };
    if let Some(existing) = find().await? {
        return Ok(existing);
    }
    let now = Utc::now();
    let txn = crate::db::begin_write(&state.db).await?;
    let created = target::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(ctx.org_id),
        kind: Set(kind.as_str().into()),
        name: Set(name.to_string()),
        labels: Set(serde_json::json!({})),
        metadata: Set(serde_json::json!({})),
        last_scan_at: Set(None),
        last_score: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await;
    match created {
        Ok(row) => {
            audit::record(
                &txn,
                AuditEntry::by(ctx, "target.create", "target", row.id).with_details(
                    serde_json::json!({"name": row.name, "kind": row.kind, "via": via}),
                ),
            )
            .await?;
            txn.commit().await?;
            Ok(row)
        }
        // Created by a concurrent upload a moment ago.
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            txn.rollback().await?;
            find()
                .await?
                .ok_or_else(|| AppError::conflict("target is being created; retry"))
        }
        Err(e) => Err(e.into()),
    }
}
