//! Processing one stored report: stream-parse it from the object store, record what the scan
//! saw in batches, then decide new / fixed / unchanged and the score in one transaction.
//!
//! Streaming writes are idempotent (a finding is keyed by target and fingerprint, a sighting by
//! scan and finding), so a worker that dies mid-way leaves nothing a retry cannot finish.
//! Existing findings are only changed in the final transaction, so a cancelled or failed scan
//! is cleaned up by removing its sightings and the findings only it created.
//!
//! Every write is fenced by the job's lease ([`Lease::fence`] in the write's transaction): a
//! worker that stalled past its lease while another finished the scan fails its next write
//! and stops, instead of taking the other worker's completion for a cancellation.

use std::collections::HashSet;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entity::{finding, scan, scan_finding};
use sea_orm::sea_query::{Expr, ExprTrait, Query, QueryStatementBuilder};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect, Set};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::batch::BatchWriter;
use super::jobs::{Lease, LeaseError};
use super::{parse_report, IngestError, NormalizedFinding, ReportFormat, ReportMeta, SinkError};
use crate::app::AppState;
use crate::findings::Severity;
use crate::live::{self, ScanProgress};
use crate::scans::ScanStatus;
use crate::store::blocking_reader;

/// At most this many progress events per second per scan.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Why processing stopped short.
#[derive(Debug)]
pub enum Failure {
    /// The report is at fault; retrying cannot help. The scan fails with this message.
    Report(String),
    /// Someone cancelled the scan.
    Cancelled,
    /// Something that may work next time (store or database trouble).
    Transient(String),
    /// Another claim holds the job now: stop, write nothing more.
    LeaseLost,
}

impl From<LeaseError> for Failure {
    fn from(err: LeaseError) -> Self {
        match err {
            LeaseError::Lost => Self::LeaseLost,
            LeaseError::Db(err) => err.into(),
        }
    }
}

impl From<sea_orm::DbErr> for Failure {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Transient(format!("database: {err}"))
    }
}

impl From<crate::error::AppError> for Failure {
    fn from(err: crate::error::AppError) -> Self {
        Self::Transient(format!("{err:?}"))
    }
}

/// Counts `read` bytes across every pass over the report, for progress, and tells the lease
/// that the work is getting somewhere.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
    lease: Lease,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        self.lease.touch();
        Ok(n)
    }
}

/// Processes the scan's stored report to the end: complete, failed or cancelled.
///
/// # Errors
/// [`Failure::Transient`] when the job should be retried, [`Failure::LeaseLost`] when another
/// claim holds the job now; everything else has been recorded on the scan by the time this
/// returns.
pub async fn process(state: &AppState, scan_id: Uuid, lease: &Lease) -> Result<(), Failure> {
    let Some(row) = scan::Entity::find_by_id(scan_id).one(&state.db).await? else {
        return Ok(());
    };
    let status = ScanStatus::parse(&row.status).unwrap_or(ScanStatus::Failed);
    if status.is_finished() {
        // Cancelled (or finished) before this attempt: make sure nothing half-written remains.
        if status != ScanStatus::Complete {
            discard_partial(&state.db, &row, lease).await?;
        }
        return Ok(());
    }
    mark_running(state, &row, lease).await?;
    match run(state, &row, lease).await {
        Ok(()) => Ok(()),
        Err(Failure::Cancelled) => {
            discard_partial(&state.db, &row, lease).await?;
            finish(
                state,
                &row,
                lease,
                ScanStatus::Cancelled,
                Some("cancelled".into()),
            )
            .await?;
            Ok(())
        }
        Err(Failure::Report(message)) => {
            discard_partial(&state.db, &row, lease).await?;
            finish(state, &row, lease, ScanStatus::Failed, Some(message)).await?;
            state.metrics.observe_ingest_failure();
            Ok(())
        }
        Err(other) => Err(other),
    }
}

/// Gives up on a scan whose job ran out of attempts.
///
/// # Errors
/// On database failure, or [`Failure::LeaseLost`].
pub async fn give_up(
    state: &AppState,
    scan_id: Uuid,
    lease: &Lease,
    reason: &str,
) -> Result<(), Failure> {
    if let Some(row) = scan::Entity::find_by_id(scan_id).one(&state.db).await? {
        discard_partial(&state.db, &row, lease).await?;
        finish(
            state,
            &row,
            lease,
            ScanStatus::Failed,
            Some(format!("processing failed repeatedly: {reason}")),
        )
        .await?;
        state.metrics.observe_ingest_failure();
    }
    Ok(())
}

pub(crate) async fn mark_running(
    state: &AppState,
    row: &scan::Model,
    lease: &Lease,
) -> Result<(), Failure> {
    let now = Utc::now();
    let mut progress = ScanProgress::new(
        row.id,
        row.target_id,
        ScanStatus::Running,
        streaming_phase(row),
    );
    let txn = crate::db::begin_write(&state.db).await?;
    lease.fence(&txn).await?;
    let update = scan::Entity::update_many()
        .col_expr(
            scan::Column::Status,
            Expr::value(ScanStatus::Running.as_str()),
        )
        .col_expr(scan::Column::StartedAt, Expr::value(Some(now)))
        .filter(
            scan::Column::Status.is_in([ScanStatus::Queued.as_str(), ScanStatus::Running.as_str()]),
        );
    let running = live::store_progress(&txn, update, &mut progress).await?;
    txn.commit().await?;
    if running {
        live::publish(state.bus.as_ref(), row.org_id, &progress).await;
    }
    Ok(())
}

/// The phase of reading the report: `parsing` for an upload, `ingesting` for an engine's
/// report (after its `preparing` and `scanning`).
fn streaming_phase(row: &scan::Model) -> &'static str {
    if row.source == "engine" {
        "ingesting"
    } else {
        "parsing"
    }
}

/// What the streaming phase learned.
struct Streamed {
    meta: ReportMeta,
    scanners: HashSet<String>,
    processed: u64,
    new: u64,
    /// Time spent writing batches (the parser runs meanwhile).
    writing: Duration,
}

async fn run(state: &AppState, row: &scan::Model, lease: &Lease) -> Result<(), Failure> {
    // The scan's writes share one connection (see `Dedicated`); reads for progress and
    // cancellation keep using the shared pool.
    let scan_db = crate::db::Dedicated::open(&state.db).await?;
    let result = run_on(state, scan_db.db(), row, lease).await;
    scan_db.close().await;
    result
}

async fn run_on(
    state: &AppState,
    db: &DatabaseConnection,
    row: &scan::Model,
    lease: &Lease,
) -> Result<(), Failure> {
    let started = Instant::now();
    let streamed = stream_findings(state, db, row, lease).await?;
    let streaming = started.elapsed();
    should_go_on(&state.db, row.id, lease).await?;
    let (results, writing) = (streamed.processed, streamed.writing);
    let finalizing = Instant::now();
    finalize(state, db, row, lease, streamed).await?;
    state.metrics.observe_ingest(
        results,
        u64::try_from(row.raw_size.unwrap_or(0)).unwrap_or(0),
    );
    // Where the time went, for operators and the ingest benchmark: parsing overlaps writing,
    // so streaming minus writing is time the writer waited for the parser.
    tracing::info!(
        scan = %row.id,
        results,
        streaming_ms = streaming.as_millis() as u64,
        writing_ms = writing.as_millis() as u64,
        finalizing_ms = finalizing.elapsed().as_millis() as u64,
        "scan processed"
    );
    Ok(())
}

/// Whether the work may go on: the scan was not cancelled and the lease was not lost.
async fn should_go_on(
    db: &DatabaseConnection,
    scan_id: Uuid,
    lease: &Lease,
) -> Result<(), Failure> {
    if lease.is_lost() {
        return Err(Failure::LeaseLost);
    }
    let status: Option<String> = scan::Entity::find_by_id(scan_id)
        .select_only()
        .column(scan::Column::Status)
        .into_tuple()
        .one(db)
        .await?;
    if status.as_deref() == Some(ScanStatus::Cancelled.as_str()) {
        return Err(Failure::Cancelled);
    }
    Ok(())
}

async fn stream_findings(
    state: &AppState,
    db: &DatabaseConnection,
    row: &scan::Model,
    lease: &Lease,
) -> Result<Streamed, Failure> {
    let key = row
        .raw_key
        .clone()
        .ok_or_else(|| Failure::Report("the scan has no stored report".into()))?;
    let format = row.format.as_deref().and_then(ReportFormat::parse_name);
    let raw_size = Ord::max(row.raw_size.unwrap_or(0), 1) as f64;
    let batch_len = super::batch::batch_size(state.db.get_database_backend());
    let (tx, mut rx) = mpsc::channel::<Vec<NormalizedFinding>>(2);
    let bytes_read = Arc::new(AtomicU64::new(0));
    let stopped = Arc::new(AtomicBool::new(false));

    let parser = {
        let store = state.store.clone();
        let handle = tokio::runtime::Handle::current();
        let bytes_read = bytes_read.clone();
        let stopped = stopped.clone();
        let lease = lease.clone();
        tokio::task::spawn_blocking(move || {
            let mut open = || -> io::Result<Box<dyn Read + Send>> {
                let reader = blocking_reader(store.as_ref(), &key, &handle)?;
                Ok(Box::new(Counting {
                    inner: reader,
                    read: bytes_read.clone(),
                    lease: lease.clone(),
                }))
            };
            let mut batch = Vec::with_capacity(batch_len);
            let result = {
                let mut sink = |f: NormalizedFinding| -> Result<(), SinkError> {
                    if stopped.load(Ordering::Relaxed) {
                        return Err(SinkError::Cancelled);
                    }
                    batch.push(f);
                    if batch.len() >= batch_len {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_len));
                        tx.blocking_send(full).map_err(|_| SinkError::Cancelled)?;
                    }
                    Ok(())
                };
                parse_report(format, &mut open, &mut sink)
            };
            if result.is_ok() && !batch.is_empty() && tx.blocking_send(batch).is_err() {
                return Err(IngestError::Sink(SinkError::Cancelled));
            }
            result
        })
    };

    let mut writer = BatchWriter::new(row, lease);
    let mut progress = ScanProgress::new(
        row.id,
        row.target_id,
        ScanStatus::Running,
        streaming_phase(row),
    );
    let mut last_event = Instant::now();
    let mut writing = Duration::ZERO;
    let outcome: Result<(), Failure> = async {
        while let Some(batch) = rx.recv().await {
            let started = Instant::now();
            writer.write(db, batch).await?;
            lease.touch();
            writing += started.elapsed();
            if lease.is_lost() {
                return Err(Failure::LeaseLost);
            }
            if last_event.elapsed() >= PROGRESS_INTERVAL {
                should_go_on(&state.db, row.id, lease).await?;
                // Parsing reads the report about twice; the last 10% are for finalizing.
                let read = bytes_read.load(Ordering::Relaxed) as f64;
                progress.percent = (read / (2.0 * raw_size) * 90.0).min(90.0).floor();
                progress.processed = writer.processed;
                progress.findings_new = writer.new;
                progress.at = Utc::now();
                record_progress(state, row, lease, &mut progress).await?;
                last_event = Instant::now();
            }
        }
        Ok(())
    }
    .await;
    if outcome.is_err() {
        stopped.store(true, Ordering::Relaxed);
    }
    drop(rx);
    let parsed = parser
        .await
        .map_err(|e| Failure::Transient(format!("parser task: {e}")))?;
    outcome?;
    match parsed {
        Ok(meta) => Ok(Streamed {
            meta,
            processed: writer.processed,
            new: writer.new,
            scanners: writer.scanners,
            writing,
        }),
        Err(IngestError::Parse(err)) => Err(Failure::Report(err.to_string())),
        Err(IngestError::Io(err)) => Err(Failure::Transient(format!("reading the report: {err}"))),
        Err(IngestError::Sink(_)) => Err(Failure::Cancelled),
    }
}

/// Score of a report without its own: 100 with nothing found, falling as weighted findings
/// grow (critical 20, high 10, medium 4, low 1, info 0), never below 0. See docs/architecture.md.
pub fn score_from_counts(critical: i64, high: i64, medium: i64, low: i64) -> f64 {
    let penalty = (20 * critical + 10 * high + 4 * medium + low) as f64;
    (100.0 * 50.0 / (50.0 + penalty) * 10.0).round() / 10.0
}

fn sightings_of(scan_id: Uuid) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(scan_finding::Column::FindingId)
        .from(scan_finding::Entity)
        .and_where(Expr::col(scan_finding::Column::ScanId).eq(scan_id))
        .to_owned()
}

/// A sighting of the outer query's finding (by `scan`, or by any scan), for `[NOT] EXISTS`: an
/// index probe per finding, where `NOT IN (subquery)` would make PostgreSQL scan the whole
/// subquery result per finding once it outgrows `work_mem` (quadratic at a million findings).
fn sighting_of_finding(scan: Option<Uuid>) -> sea_orm::sea_query::SelectStatement {
    let mut query = Query::select();
    query
        .expr(Expr::val(1))
        .from(scan_finding::Entity)
        .and_where(
            Expr::col((scan_finding::Entity, scan_finding::Column::FindingId))
                .equals((finding::Entity, finding::Column::Id)),
        );
    if let Some(scan) = scan {
        query.and_where(Expr::col((scan_finding::Entity, scan_finding::Column::ScanId)).eq(scan));
    }
    query
}

/// New / fixed / unchanged, counts, score and the target's latest state, all at once.
async fn finalize(
    state: &AppState,
    db: &DatabaseConnection,
    row: &scan::Model,
    lease: &Lease,
    streamed: Streamed,
) -> Result<(), Failure> {
    let mut progress = ScanProgress::new(row.id, row.target_id, ScanStatus::Running, "finalizing");
    progress.percent = 90.0;
    progress.processed = streamed.processed;
    progress.findings_new = streamed.new;
    record_progress(state, row, lease, &mut progress).await?;
    let now = Utc::now();
    let txn = crate::db::begin_write(db).await?;
    lease.fence(&txn).await?;

    // Seen again after a fix: reopened.
    scan_finding::Entity::update_many()
        .col_expr(scan_finding::Column::Change, Expr::value("reopened"))
        .filter(scan_finding::Column::ScanId.eq(row.id))
        .filter(scan_finding::Column::Change.eq("unchanged"))
        .filter(
            scan_finding::Column::FindingId.in_subquery(
                Query::select()
                    .column(finding::Column::Id)
                    .from(finding::Entity)
                    .and_where(Expr::col(finding::Column::TargetId).eq(row.target_id))
                    .and_where(Expr::col(finding::Column::Status).eq("fixed"))
                    .to_owned(),
            ),
        )
        .exec(&txn)
        .await?;

    // Reopened ones are open again. Kept apart from the update below, which touches every
    // finding seen and so must not name an indexed column (status): SQLite rewrites the index
    // entries of every column an UPDATE sets, changed or not.
    finding::Entity::update_many()
        .col_expr(finding::Column::Status, Expr::value("open"))
        .col_expr(
            finding::Column::FixedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(
            finding::Column::Id.in_subquery(
                sightings_of(row.id)
                    .and_where(Expr::col(scan_finding::Column::Change).eq("reopened"))
                    .to_owned(),
            ),
        )
        .exec(&txn)
        .await?;

    // Everything seen before is last seen now, with this scan's occurrence count (findings
    // this scan created were written that way already).
    let occurrences = Query::select()
        .column(scan_finding::Column::Occurrences)
        .from(scan_finding::Entity)
        .and_where(Expr::col((scan_finding::Entity, scan_finding::Column::ScanId)).eq(row.id))
        .and_where(
            Expr::col((scan_finding::Entity, scan_finding::Column::FindingId))
                .equals((finding::Entity, finding::Column::Id)),
        )
        .to_owned();
    finding::Entity::update_many()
        .col_expr(finding::Column::LastSeenAt, Expr::value(row.scanned_at))
        .col_expr(finding::Column::LastScanId, Expr::value(Some(row.id)))
        .col_expr(
            finding::Column::Occurrences,
            Expr::SubQuery(None, Box::new(occurrences.into_sub_query_statement())),
        )
        .col_expr(finding::Column::UpdatedAt, Expr::value(now))
        .filter(
            finding::Column::Id.in_subquery(
                sightings_of(row.id)
                    .and_where(Expr::col(scan_finding::Column::Change).ne("new"))
                    .to_owned(),
            ),
        )
        .exec(&txn)
        .await?;

    // Open before, of a scanner this report speaks for, and not seen now: fixed.
    let mut scanners = streamed.scanners;
    scanners.insert(streamed.meta.scanner_name.clone());
    let fixed = finding::Entity::update_many()
        .col_expr(finding::Column::Status, Expr::value("fixed"))
        .col_expr(finding::Column::FixedAt, Expr::value(Some(now)))
        .col_expr(finding::Column::UpdatedAt, Expr::value(now))
        .filter(finding::Column::TargetId.eq(row.target_id))
        .filter(finding::Column::Scanner.is_in(scanners.iter().map(String::as_str)))
        .filter(finding::Column::Status.eq("open"))
        .filter(Expr::exists(sighting_of_finding(Some(row.id))).not())
        .exec(&txn)
        .await?
        .rows_affected;

    // Findings an active suppression rule matches leave this scan's counts and score.
    crate::suppressions::mark_new_findings(&txn, row.org_id, row.target_id, row.id, now).await?;
    let by_severity: Vec<(String, i64)> = scan_finding::Entity::find()
        .select_only()
        .column(finding::Column::Severity)
        .column_as(scan_finding::Column::FindingId.count(), "n")
        .inner_join(finding::Entity)
        .filter(scan_finding::Column::ScanId.eq(row.id))
        .filter(crate::findings::unsuppressed_condition(now))
        .group_by(finding::Column::Severity)
        .into_tuple()
        .all(&txn)
        .await?;
    let by_change: Vec<(String, i64)> = scan_finding::Entity::find()
        .select_only()
        .column(scan_finding::Column::Change)
        .column_as(scan_finding::Column::FindingId.count(), "n")
        .filter(scan_finding::Column::ScanId.eq(row.id))
        .group_by(scan_finding::Column::Change)
        .into_tuple()
        .all(&txn)
        .await?;
    let severity = |s: Severity| {
        by_severity
            .iter()
            .find(|(k, _)| k == s.as_str())
            .map_or(0, |(_, n)| *n)
    };
    let change = |c: &str| {
        by_change
            .iter()
            .find(|(k, _)| k == c)
            .map_or(0, |(_, n)| *n)
    };
    let (critical, high, medium, low, info) = (
        severity(Severity::Critical),
        severity(Severity::High),
        severity(Severity::Medium),
        severity(Severity::Low),
        severity(Severity::Info),
    );
    let meta = &streamed.meta;
    let score = meta
        .score
        .unwrap_or_else(|| score_from_counts(critical, high, medium, low));
    let new = change("new") + change("reopened");
    progress.status = ScanStatus::Complete;
    progress.phase = "complete".into();
    progress.percent = 100.0;
    // Every finding the scan saw, suppressed ones too (the counts leave those out).
    progress.processed = (change("new") + change("reopened") + change("unchanged")) as u64;
    progress.total = Some(progress.processed);
    progress.findings_new = new as u64;
    progress.findings_fixed = fixed;
    progress.at = Utc::now();

    let i32_of = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
    let update = scan::ActiveModel {
        id: Set(row.id),
        status: Set(ScanStatus::Complete.as_str().into()),
        scanner_name: Set(if row.scanner_name.is_empty() {
            meta.scanner_name.clone()
        } else {
            row.scanner_name.clone()
        }),
        scanner_version: Set(row.scanner_version.clone().or(meta.scanner_version.clone())),
        format: Set(Some(meta.format.as_str().into())),
        policy_tier: Set(row.policy_tier.clone().or(meta.policy_tier.clone())),
        score: Set(Some(score)),
        count_critical: Set(i32_of(critical)),
        count_high: Set(i32_of(high)),
        count_medium: Set(i32_of(medium)),
        count_low: Set(i32_of(low)),
        count_info: Set(i32_of(info)),
        findings_total: Set(i32_of(critical + high + medium + low + info)),
        findings_new: Set(i32_of(new)),
        findings_fixed: Set(i32_of(fixed as i64)),
        findings_unchanged: Set(i32_of(change("unchanged"))),
        error: Set(None),
        finished_at: Set(Some(now)),
        ..Default::default()
    };
    // Only a scan still running completes: a cancellation that raced us wins. (The lease
    // fence above rules out that another worker completed it.)
    let update = scan::Entity::update_many()
        .set(update)
        .filter(scan::Column::Status.eq(ScanStatus::Running.as_str()));
    if !live::store_progress(&txn, update, &mut progress).await? {
        txn.rollback().await?;
        return Err(Failure::Cancelled);
    }
    crate::targets::refresh_latest(&txn, row.target_id).await?;
    if let Some(metadata) = &meta.target_metadata {
        crate::targets::store_report_metadata(&txn, row, metadata).await?;
    }
    // Its webhooks' deliveries and its notifications commit with the completion, so none is
    // lost.
    crate::webhooks::scan_completed(&txn, &state.config, row.id).await?;
    let notified = crate::notifications::events::scan_completed(&txn, state, row.id).await?;
    txn.commit().await?;
    live::publish(state.bus.as_ref(), row.org_id, &progress).await;
    crate::notifications::events::publish(state.bus.as_ref(), &notified).await;
    Ok(())
}

/// Removes what a scan that will not complete wrote: its sightings and the findings only it
/// created.
async fn discard_partial(
    db: &DatabaseConnection,
    row: &scan::Model,
    lease: &Lease,
) -> Result<(), Failure> {
    let txn = crate::db::begin_write(db).await?;
    lease.fence(&txn).await?;
    scan_finding::Entity::delete_many()
        .filter(scan_finding::Column::ScanId.eq(row.id))
        .exec(&txn)
        .await?;
    finding::Entity::delete_many()
        .filter(finding::Column::TargetId.eq(row.target_id))
        .filter(finding::Column::FirstScanId.eq(row.id))
        .filter(Expr::exists(sighting_of_finding(None)).not())
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// Ends a scan that did not complete, keeping a cancellation that came first.
pub(crate) async fn finish(
    state: &AppState,
    row: &scan::Model,
    lease: &Lease,
    status: ScanStatus,
    message: Option<String>,
) -> Result<(), Failure> {
    let mut progress = ScanProgress::new(row.id, row.target_id, status, status.as_str());
    progress.message = message.clone();
    let now = Utc::now();
    let txn = crate::db::begin_write(&state.db).await?;
    lease.fence(&txn).await?;
    let mut update = scan::Entity::update_many()
        .col_expr(scan::Column::Status, Expr::value(status.as_str()))
        .col_expr(scan::Column::Error, Expr::value(message))
        .col_expr(scan::Column::FinishedAt, Expr::value(Some(now)));
    if status == ScanStatus::Failed {
        update = update.filter(scan::Column::Status.ne(ScanStatus::Cancelled.as_str()));
    }
    let finished = live::store_progress(&txn, update, &mut progress).await?;
    let mut notified = Vec::new();
    if finished && status == ScanStatus::Failed {
        // Its webhooks' deliveries and its notifications commit with the failure, so none is
        // lost.
        crate::webhooks::scan_failed(&txn, &state.config, row.id).await?;
        notified = crate::notifications::events::scan_failed(&txn, state, row.id).await?;
    }
    txn.commit().await?;
    if finished {
        live::publish(state.bus.as_ref(), row.org_id, &progress).await;
    }
    crate::notifications::events::publish(state.bus.as_ref(), &notified).await;
    Ok(())
}

/// Keeps the latest progress on the scan row (for late subscribers) and publishes it. A
/// database failure here costs an event, not the scan; a lost lease stops the work.
async fn record_progress(
    state: &AppState,
    row: &scan::Model,
    lease: &Lease,
    progress: &mut ScanProgress,
) -> Result<(), Failure> {
    let stored: Result<bool, LeaseError> = async {
        let txn = crate::db::begin_write(&state.db).await?;
        lease.fence(&txn).await?;
        let stored = live::store_progress(&txn, scan::Entity::update_many(), progress).await?;
        txn.commit().await?;
        Ok(stored)
    }
    .await;
    match stored {
        Ok(true) => live::publish(state.bus.as_ref(), row.org_id, progress).await,
        Ok(false) => {}
        Err(LeaseError::Lost) => return Err(Failure::LeaseLost),
        Err(LeaseError::Db(err)) => tracing::warn!(%err, "could not record scan progress"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::score_from_counts;

    #[test]
    fn score_falls_with_weighted_findings() {
        assert_eq!(score_from_counts(0, 0, 0, 0), 100.0);
        assert_eq!(score_from_counts(0, 5, 0, 0), 50.0);
        assert_eq!(score_from_counts(1, 0, 0, 0), 71.4);
        assert!(score_from_counts(100, 0, 0, 0) > 0.0);
    }
}
