//! `engines` and `startScan`: thin resolvers over the registry and [`super::service`].

use async_graphql::{Context, InputObject, Object, Result, SimpleObject, Upload};
use uuid::Uuid;

use super::schedules::{self, ScanSchedule, ScheduleInput};
use super::service::{self, SourceRequest, StartScan};
use super::EngineInfo;
use crate::context::Permission;
use crate::error::AppError;
use crate::graphql::{caller, state};
use crate::scans::Scan;
use crate::targets::TargetKind;

#[derive(Default)]
pub struct EnginesQuery;

#[Object]
impl EnginesQuery {
    /// The engines this server can run, with availability and version (read at start-up).
    async fn engines(&self, ctx: &Context<'_>) -> Result<Vec<EngineInfo>> {
        caller(ctx)?.require(Permission::Read)?;
        Ok(state(ctx).engines.list().await)
    }

    /// The org's scan schedules.
    async fn scan_schedules(&self, ctx: &Context<'_>) -> Result<Vec<ScanSchedule>> {
        Ok(schedules::list(caller(ctx)?, state(ctx)).await?)
    }
}

/// A new schedule: engines on a server directory or a git repository, by cron.
#[derive(Clone, Debug, InputObject)]
pub struct CreateScanScheduleInput {
    pub target_id: Uuid,
    pub engines: Vec<String>,
    /// `path` or `git` (archives cannot be scheduled).
    pub source: ScanSourceInput,
    /// Five fields (minute hour day-of-month month day-of-week), or six with seconds first.
    pub cron: String,
    /// An IANA time zone; `UTC` when absent.
    #[graphql(default = "UTC")]
    pub time_zone: String,
    #[graphql(default = true)]
    pub enabled: bool,
}

/// What may change on a schedule.
#[derive(Clone, Debug, InputObject)]
pub struct UpdateScanScheduleInput {
    pub cron: Option<String>,
    pub time_zone: Option<String>,
    pub enabled: Option<bool>,
}

/// A git repository to scan: cloned shallowly into a scratch directory.
#[derive(Clone, Debug, InputObject)]
pub struct GitSourceInput {
    /// An `https://`, `http://`, `ssh://` or `git://` URL (write), or an absolute path of a
    /// repository on the server, under an allowed root (admin or an `engines` key).
    pub url: String,
    /// A branch or tag; the default branch when absent.
    pub reference: Option<String>,
}

/// Where the code comes from: exactly one of `path` and `git` (or the mutation's `archive`).
#[derive(Clone, Debug, Default, InputObject)]
pub struct ScanSourceInput {
    /// A directory on the server, under one of `RAMPART_ENGINE_SOURCE_ROOTS` (admin or an
    /// `engines` key).
    pub path: Option<String>,
    pub git: Option<GitSourceInput>,
}

/// The scans one request queued, one per engine.
#[derive(Clone, Debug, SimpleObject)]
pub struct StartedScans {
    /// Follow them together with `scans(groupId:)`.
    pub group_id: Uuid,
    pub scans: Vec<Scan>,
}

impl From<service::Started> for StartedScans {
    fn from(s: service::Started) -> Self {
        Self {
            group_id: s.group_id,
            scans: s.scans,
        }
    }
}

#[derive(Default)]
pub struct EnginesMutation;

fn source_of(source: ScanSourceInput) -> Result<SourceRequest> {
    match (source.path, source.git) {
        (Some(path), None) => Ok(SourceRequest::Path(path)),
        (None, Some(git)) => Ok(SourceRequest::Git {
            url: git.url,
            reference: git.reference,
        }),
        _ => Err(AppError::invalid("source", "give exactly one of path and git").into()),
    }
}

#[Object]
impl EnginesMutation {
    /// Schedules engine scans of a target. Each firing queues one scan per engine, like
    /// `startScan`, once across all replicas; missed firings (while nothing ran) fire once.
    async fn create_scan_schedule(
        &self,
        ctx: &Context<'_>,
        input: CreateScanScheduleInput,
    ) -> Result<ScanSchedule> {
        let input = ScheduleInput {
            target_id: input.target_id,
            engines: input.engines,
            source: source_of(input.source)?,
            cron: input.cron,
            time_zone: input.time_zone,
            enabled: input.enabled,
        };
        Ok(schedules::create(caller(ctx)?, state(ctx), input).await?)
    }

    /// Changes a schedule's cron, time zone or enabled flag (its next run is recomputed).
    async fn update_scan_schedule(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        input: UpdateScanScheduleInput,
    ) -> Result<ScanSchedule> {
        Ok(schedules::update(
            caller(ctx)?,
            state(ctx),
            id,
            input.cron,
            input.time_zone,
            input.enabled,
        )
        .await?)
    }

    /// Deletes a schedule; the scans it started stay.
    async fn delete_scan_schedule(&self, ctx: &Context<'_>, id: Uuid) -> Result<bool> {
        Ok(schedules::delete(caller(ctx)?, state(ctx), id).await?)
    }

    /// Runs engines on a source: one scan per engine, queued now and run by a worker, then
    /// ingested like an upload (`source` is `engine`). Follow each with `scanProgress`.
    /// The source is an uploaded `.tar.gz` / `.zip` archive (`archive`, multipart request), a
    /// server-side directory or a git repository (`source`).
    #[allow(clippy::too_many_arguments)]
    async fn start_scan(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The target scanned; or name it with `target`.")] target_id: Option<Uuid>,
        #[graphql(desc = "Target name, created on first use.")] target: Option<String>,
        #[graphql(desc = "Kind of a target named by `target`; `REPOSITORY` when absent.")]
        target_kind: Option<TargetKind>,
        #[graphql(desc = "Engine names, as `engines` lists them.")] engines: Vec<String>,
        source: Option<ScanSourceInput>,
        #[graphql(desc = "A `.tar.gz` or `.zip` archive of the code.")] archive: Option<Upload>,
    ) -> Result<StartedScans> {
        let caller = caller(ctx)?;
        let source = source.unwrap_or_default();
        let chosen = [
            source.path.is_some(),
            source.git.is_some(),
            archive.is_some(),
        ];
        if chosen.iter().filter(|c| **c).count() != 1 {
            return Err(AppError::invalid(
                "source",
                "give exactly one of source.path, source.git and archive",
            )
            .into());
        }
        // The multipart layer spooled the upload to a temporary file; keep it while we read.
        let mut spooled = None;
        let source = if let Some(path) = source.path {
            SourceRequest::Path(path)
        } else if let Some(git) = source.git {
            SourceRequest::Git {
                url: git.url,
                reference: git.reference,
            }
        } else {
            let value = archive.map(|a| a.value(ctx)).transpose()?;
            let value = value.ok_or_else(|| AppError::invalid("archive", "missing"))?;
            let limit = state(ctx).config.engine_max_archive_bytes;
            if value.size().is_ok_and(|n| n > limit) {
                return Err(AppError::payload_too_large(format!(
                    "the archive is larger than the limit of {limit} bytes"
                ))
                .into());
            }
            let file = tempfile::NamedTempFile::new().map_err(|e| AppError::Internal(e.into()))?;
            let mut content = value.content;
            let mut out = file.reopen().map_err(|e| AppError::Internal(e.into()))?;
            tokio::task::spawn_blocking(move || std::io::copy(&mut content, &mut out))
                .await
                .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?
                .map_err(|e| AppError::Internal(e.into()))?;
            let path = file.path().to_path_buf();
            spooled = Some(file);
            SourceRequest::Archive(path)
        };
        let started = service::start(
            caller,
            state(ctx),
            StartScan {
                target_id,
                target,
                target_kind,
                engines,
                source,
            },
        )
        .await;
        drop(spooled);
        Ok(started?.into())
    }
}
