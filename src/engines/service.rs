//! Starting engine scans: checks who may scan what, checks the source (an archive fully, at
//! once, so an unsafe one is a 400 now rather than a failed scan later), and queues one scan
//! and one job per engine, grouped.

use std::io::Read;
use std::path::PathBuf;

use chrono::Utc;
use entity::{scan, target};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use tokio_util::io::ReaderStream;
use uuid::Uuid;

use super::sources::{self, ArchiveFormat, Limits, SourceError, SourceSpec};
use crate::app::AppState;
use crate::audit::{self, AuditEntry};
use crate::config::Role;
use crate::context::{Ctx, Permission};
use crate::error::{AppError, AppResult, Backend};
use crate::ingest::jobs;
use crate::live::{self, ScanProgress};
use crate::scans::{Scan, ScanStatus};
use crate::targets::TargetKind;

/// The job kind of an engine run.
pub const JOB_KIND: &str = jobs::ENGINE;

/// Where the code comes from, as the client gave it.
#[derive(Debug)]
pub enum SourceRequest {
    /// An uploaded archive, spooled to this file (removed by the caller).
    Archive(PathBuf),
    /// A directory on the server.
    Path(String),
    /// A git repository URL or a local repository's path, and a branch or tag.
    Git {
        url: String,
        reference: Option<String>,
    },
}

/// What to scan, with what.
#[derive(Debug)]
pub struct StartScan {
    pub target_id: Option<Uuid>,
    pub target: Option<String>,
    pub target_kind: Option<TargetKind>,
    pub engines: Vec<String>,
    pub source: SourceRequest,
}

/// The queued scans of one request.
pub struct Started {
    pub group_id: Uuid,
    pub scans: Vec<Scan>,
}

/// What an engine job is told (its `payload`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Payload {
    pub request_id: String,
    pub engine: String,
    pub source: SourceSpec,
}

/// Queues one scan per engine over one source.
///
/// # Errors
/// `FORBIDDEN` (server-side paths need an admin or an `engines` key; archives and git URLs
/// need write); `VALIDATION_FAILED` for unknown or unavailable engines and a missing target;
/// `BAD_REQUEST` for an unsafe or unreadable archive and for a path outside the allowed
/// roots; `NOT_FOUND` for another org's target; `SERVICE_UNAVAILABLE` when the object store
/// fails.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn start(ctx: &Ctx, state: &AppState, req: StartScan) -> AppResult<Started> {
    ctx.require(Permission::Write)?;
    let source = resolve_source(ctx, state, &req.source).await?;
    let engines = check_engines(state, &req.engines).await?;
    let target = resolve_target(ctx, state, &req).await?;
    start_checked(ctx, state, req, source, engines, target).await
}

/// The source a request names, checked, with the permission it needs: `Engines` for a
/// server-side path or a local git repository.
///
/// # Errors
/// As [`start`].
pub(crate) async fn resolve_source(
    ctx: &Ctx,
    state: &AppState,
    source: &SourceRequest,
) -> AppResult<SourceSpec> {
    let roots = state.config.engine_source_roots.clone();
    Ok(match source {
        SourceRequest::Path(path) => {
            ctx.require(Permission::Engines)?;
            let path = path.clone();
            let dir = blocking(move || sources::allowed_dir(&path, &roots)).await?;
            SourceSpec::Path { path: dir }
        }
        SourceRequest::Git { url, reference } => {
            if let Some(reference) = reference {
                sources::check_git_ref(reference).map_err(source_error)?;
            }
            let local = sources::check_git_url(url).map_err(source_error)?;
            let url = if local {
                ctx.require(Permission::Engines)?;
                let path = url.trim().trim_start_matches("file://").to_string();
                let dir = blocking(move || sources::allowed_dir(&path, &roots)).await?;
                dir.display().to_string()
            } else {
                url.trim().to_string()
            };
            SourceSpec::Git {
                url,
                reference: reference.clone(),
            }
        }
        SourceRequest::Archive(path) => {
            let format = check_archive(state, path.clone()).await?;
            // The key is per scan (below); this one stands for the format only.
            SourceSpec::Archive {
                key: String::new(),
                format,
            }
        }
    })
}

async fn start_checked(
    ctx: &Ctx,
    state: &AppState,
    req: StartScan,
    source: SourceSpec,
    engines: Vec<&'static dyn super::Engine>,
    target: target::Model,
) -> AppResult<Started> {
    let group_id = Uuid::now_v7();
    let now = Utc::now();
    let mut planned = Vec::new();
    for engine in &engines {
        let scan_id = Uuid::now_v7();
        let source = match (&source, &req.source) {
            (SourceSpec::Archive { format, .. }, SourceRequest::Archive(path)) => {
                let key = format!("sources/{}/{}", ctx.org_id, scan_id.simple());
                store_archive(state, path, &key).await?;
                SourceSpec::Archive {
                    key,
                    format: *format,
                }
            }
            (other, _) => other.clone(),
        };
        planned.push((scan_id, *engine, source));
    }
    let stored_keys: Vec<String> = planned
        .iter()
        .filter_map(|(_, _, s)| match s {
            SourceSpec::Archive { key, .. } => Some(key.clone()),
            _ => None,
        })
        .collect();
    let origin = Origin {
        org_id: ctx.org_id,
        created_by: ctx.actor_label(),
        request_id: ctx.meta.request_id.to_string(),
        audit: AuditEntry::by(ctx, "scan.start", "scan_group", group_id),
    };
    let recorded = async {
        let txn = crate::db::begin_write(&state.db).await?;
        let scans = record_in(&txn, state, origin, &target, group_id, now, &planned).await?;
        txn.commit().await?;
        Ok::<_, AppError>(scans)
    }
    .await;
    match recorded {
        Ok(scans) => {
            for scan in &scans {
                let queued = ScanProgress::new(scan.id, target.id, ScanStatus::Queued, "queued");
                live::publish(state.bus.as_ref(), ctx.org_id, &queued).await;
            }
            state.jobs_wake.notify_waiters();
            Ok(Started { group_id, scans })
        }
        Err(err) => {
            for key in stored_keys {
                if let Err(e) = state.store.delete(&key).await {
                    tracing::warn!(%key, %e, "could not remove the source archive of a refused scan");
                }
            }
            Err(err)
        }
    }
}

/// Who queues scans: a caller, or a schedule.
pub(crate) struct Origin {
    pub org_id: Uuid,
    pub created_by: String,
    pub request_id: String,
    /// The `scan.start` entry, its details filled in by [`record_in`].
    pub audit: AuditEntry,
}

/// The planned scans: id, engine, source.
pub(crate) type Planned = (Uuid, &'static dyn super::Engine, SourceSpec);

/// Writes the scans and their jobs, and audits them, in `txn`.
pub(crate) async fn record_in(
    txn: &sea_orm::DatabaseTransaction,
    state: &AppState,
    origin: Origin,
    target: &target::Model,
    group_id: Uuid,
    now: chrono::DateTime<Utc>,
    planned: &[Planned],
) -> AppResult<Vec<Scan>> {
    let mut scans = Vec::new();
    for (scan_id, engine, source) in planned {
        let queued = ScanProgress::new(*scan_id, target.id, ScanStatus::Queued, "queued");
        let version = state
            .engines
            .get(engine.name())
            .await
            .and_then(|(info, _)| info.version);
        let row = scan::ActiveModel {
            id: Set(*scan_id),
            org_id: Set(origin.org_id),
            target_id: Set(target.id),
            status: Set(ScanStatus::Queued.as_str().into()),
            source: Set("engine".into()),
            scanner_name: Set(engine.name().into()),
            scanner_version: Set(version),
            format: Set(Some(engine.report_format().as_str().into())),
            progress: Set(serde_json::to_value(&queued).ok()),
            created_by: Set(Some(origin.created_by.clone())),
            scanned_at: Set(now),
            created_at: Set(now),
            group_id: Set(Some(group_id)),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        let payload = Payload {
            request_id: origin.request_id.clone(),
            engine: engine.name().into(),
            source: source.clone(),
        };
        jobs::enqueue_with(
            txn,
            JOB_KIND,
            origin.org_id,
            *scan_id,
            state.config.job_max_attempts,
            serde_json::to_value(&payload).map_err(|e| AppError::Internal(e.into()))?,
        )
        .await?;
        scans.push(Scan::from(row));
    }
    let (kind, detail) = match &planned[0].2 {
        SourceSpec::Archive { format, .. } => ("archive", serde_json::json!(format)),
        SourceSpec::Path { path } => ("path", serde_json::json!(path)),
        SourceSpec::Git { url, reference } => (
            "git",
            serde_json::json!({"url": url, "reference": reference}),
        ),
    };
    audit::record(
        txn,
        origin.audit.with_details(serde_json::json!({
            "group_id": group_id,
            "target_id": target.id,
            "target": target.name,
            "engines": planned.iter().map(|(_, e, _)| e.name()).collect::<Vec<_>>(),
            "scans": scans.iter().map(|s| s.id).collect::<Vec<_>>(),
            "created_by": origin.created_by,
            "source": kind,
            "source_detail": detail,
        })),
    )
    .await?;
    Ok(scans)
}

/// The engines named, known and (in a process that runs workers) available, without repeats.
pub(crate) async fn check_engines(
    state: &AppState,
    names: &[String],
) -> AppResult<Vec<&'static dyn super::Engine>> {
    if names.is_empty() {
        return Err(AppError::invalid("engines", "name at least one engine"));
    }
    let mut engines: Vec<&'static dyn super::Engine> = Vec::new();
    for name in names {
        let engine = super::by_name(name).ok_or_else(|| {
            AppError::invalid(
                "engines",
                format!(
                    "unknown engine {name:?}; known: {}",
                    super::ALL.map(|e| e.name()).join(", ")
                ),
            )
        })?;
        if state.config.role != Role::Api {
            if let Some((info, None)) = state.engines.get(engine.name()).await {
                return Err(AppError::invalid(
                    "engines",
                    format!(
                        "{} is not available on this server: {}",
                        engine.name(),
                        info.error.unwrap_or_default()
                    ),
                ));
            }
        }
        if !engines.iter().any(|e| e.name() == engine.name()) {
            engines.push(engine);
        }
    }
    Ok(engines)
}

/// The org's target by id, or by kind and name (created on first sight).
pub(crate) async fn resolve_target(
    ctx: &Ctx,
    state: &AppState,
    req: &StartScan,
) -> AppResult<target::Model> {
    if let Some(id) = req.target_id {
        return target::Entity::find_by_id(id)
            .filter(target::Column::OrgId.eq(ctx.org_id))
            .one(&state.db)
            .await?
            .ok_or_else(|| AppError::not_found("target"));
    }
    let Some(name) = req.target.as_deref() else {
        return Err(AppError::invalid(
            "target",
            "give target_id, or target (a name)",
        ));
    };
    let name = crate::validate::name("target", name, 255)?;
    let kind = req.target_kind.unwrap_or(TargetKind::Repository);
    crate::ingest::upload::find_or_create_target(ctx, state, kind, &name, "engine scan").await
}

/// Checks the whole archive (format, paths, links, size) without extracting it.
async fn check_archive(state: &AppState, path: PathBuf) -> AppResult<ArchiveFormat> {
    let limits = Limits::of(&state.config);
    blocking(move || {
        let mut head = [0u8; 4];
        let n = std::fs::File::open(&path)?.read(&mut head)?;
        if n == 0 {
            return Err(SourceError::Rejected("the archive is empty".into()));
        }
        let format = ArchiveFormat::sniff(&head[..n])
            .ok_or_else(|| SourceError::Rejected("not a .tar.gz or .zip archive".into()))?;
        sources::extract(&path, format, None, limits)?;
        Ok(format)
    })
    .await
}

async fn store_archive(state: &AppState, path: &std::path::Path, key: &str) -> AppResult<()> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let body: crate::store::ByteStream = Box::pin(ReaderStream::with_capacity(file, 64 * 1024));
    crate::store::put_hashed(state.store.as_ref(), key, body)
        .await
        .map_err(|e| AppError::backend_unavailable(Backend::ObjectStore, e))?;
    Ok(())
}

fn source_error(err: SourceError) -> AppError {
    match err {
        SourceError::Rejected(message) => AppError::bad_request(message),
        SourceError::Io(err) => AppError::Internal(err.into()),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SourceError> + Send + 'static,
) -> AppResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("source check: {e}")))?
        .map_err(source_error)
}
