//! The store sweep: removes stored reports no scan refers to, and what interrupted uploads
//! left behind, so nothing outlives the scan it was for.
//!
//! Uploads remove their report themselves when they fail (see `upload`), but a process can die
//! between storing a report and committing its scan. The sweep catches those. It runs as a job
//! of kind [`jobs::SWEEP`] in the ordinary queue, one per period with a fixed id per period, so
//! exactly one process of the deployment runs each sweep, under a lease, whatever the number
//! of replicas. Objects younger than the grace period are left alone: their upload may still be
//! on its way to its scan row.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use entity::{job, organization, scan};
use futures::StreamExt;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::jobs::{self, Lease};
use crate::app::AppState;
use crate::audit::{self, AuditEntry};
use crate::error::{AppError, AppResult};
use crate::store::ObjectInfo;

/// Where raw reports live: `reports/<org>/<scan>`.
const PREFIX: &str = "reports/";
/// Keys looked up in the database at a time.
const CHUNK: usize = 500;
/// Keys named in one audit entry (the count is always whole).
const KEYS_IN_AUDIT: usize = 50;
/// High half of every sweep job's id; the low half is the period's number.
const SWEEP_ID_TAG: u64 = 0x7377_6565_7000_0000;

/// What one sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepOutcome {
    /// Objects removed: no scan referred to them.
    pub removed: u64,
    pub removed_bytes: u64,
    /// Interrupted uploads cleaned up (temporary files, unfinished multipart uploads).
    pub incomplete: u64,
}

/// Removes every object under `reports/` last written before `before` that no scan refers
/// to, and what interrupted uploads begun before then left behind. Each removal is logged,
/// and each org's total is written to its audit log (`store.sweep`).
///
/// # Errors
/// When the store cannot be listed or the database read.
#[tracing::instrument(skip(state))]
pub async fn sweep(state: &AppState, before: DateTime<Utc>) -> AppResult<SweepOutcome> {
    let mut outcome = SweepOutcome::default();
    match state.store.remove_incomplete(before).await {
        Ok(n) => outcome.incomplete = n,
        Err(err) => tracing::warn!(%err, "could not clean up interrupted uploads"),
    }
    let mut removed_by_org: BTreeMap<Uuid, Vec<ObjectInfo>> = BTreeMap::new();
    let mut listing = state.store.list(PREFIX).await.map_err(unavailable)?;
    let mut old = Vec::with_capacity(CHUNK);
    loop {
        let next = listing.next().await.transpose().map_err(unavailable)?;
        let end = next.is_none();
        if let Some(info) = next.filter(|info| info.modified < before) {
            old.push(info);
        }
        if old.len() >= CHUNK || (end && !old.is_empty()) {
            for info in unreferenced(state, std::mem::take(&mut old)).await? {
                if let Err(err) = state.store.delete(&info.key).await {
                    tracing::warn!(key = %info.key, %err, "could not remove an orphaned object");
                    continue;
                }
                tracing::info!(key = %info.key, size = info.size, modified = %info.modified, "removed an object no scan refers to");
                outcome.removed += 1;
                outcome.removed_bytes += info.size;
                if let Some(org) = org_of(&info.key) {
                    removed_by_org.entry(org).or_default().push(info);
                }
            }
        }
        if end {
            break;
        }
    }
    audit_removals(state, removed_by_org).await?;
    tracing::info!(
        removed = outcome.removed,
        removed_bytes = outcome.removed_bytes,
        incomplete = outcome.incomplete,
        "object store swept"
    );
    Ok(outcome)
}

fn unavailable(err: crate::store::StoreError) -> AppError {
    AppError::unavailable(format!("the object store cannot be swept: {err}"))
}

/// `reports/<org>/<scan>` → (org, scan).
fn ids_of(key: &str) -> Option<(Uuid, Uuid)> {
    let mut parts = key.strip_prefix(PREFIX)?.split('/');
    let org = Uuid::parse_str(parts.next()?).ok()?;
    let scan = Uuid::parse_str(parts.next()?).ok()?;
    parts.next().is_none().then_some((org, scan))
}

fn org_of(key: &str) -> Option<Uuid> {
    let org = key.strip_prefix(PREFIX)?.split('/').next()?;
    Uuid::parse_str(org).ok()
}

/// The objects of `candidates` that no scan row names as its raw report.
async fn unreferenced(state: &AppState, candidates: Vec<ObjectInfo>) -> AppResult<Vec<ObjectInfo>> {
    // Keys name their scan, so the lookup goes by primary key; any other key by itself.
    let (ids, others): (Vec<_>, Vec<_>) = candidates
        .iter()
        .partition(|info| ids_of(&info.key).is_some());
    let mut referenced: HashSet<String> = HashSet::new();
    if !ids.is_empty() {
        let rows: Vec<Option<String>> = scan::Entity::find()
            .select_only()
            .column(scan::Column::RawKey)
            .filter(
                scan::Column::Id.is_in(ids.iter().filter_map(|i| ids_of(&i.key)).map(|(_, s)| s)),
            )
            .into_tuple()
            .all(&state.db)
            .await?;
        referenced.extend(rows.into_iter().flatten());
    }
    if !others.is_empty() {
        let rows: Vec<Option<String>> = scan::Entity::find()
            .select_only()
            .column(scan::Column::RawKey)
            .filter(scan::Column::RawKey.is_in(others.iter().map(|i| i.key.as_str())))
            .into_tuple()
            .all(&state.db)
            .await?;
        referenced.extend(rows.into_iter().flatten());
    }
    Ok(candidates
        .into_iter()
        .filter(|info| !referenced.contains(&info.key))
        .collect())
}

/// One `store.sweep` audit entry per org that had objects removed (orgs that no longer exist
/// have no audit log; their removals are only logged).
async fn audit_removals(
    state: &AppState,
    removed_by_org: BTreeMap<Uuid, Vec<ObjectInfo>>,
) -> AppResult<()> {
    if removed_by_org.is_empty() {
        return Ok(());
    }
    let existing: HashSet<Uuid> = organization::Entity::find()
        .select_only()
        .column(organization::Column::Id)
        .filter(organization::Column::Id.is_in(removed_by_org.keys().copied()))
        .into_tuple::<Uuid>()
        .all(&state.db)
        .await?
        .into_iter()
        .collect();
    for (org_id, removed) in removed_by_org {
        if !existing.contains(&org_id) {
            continue;
        }
        let entry = AuditEntry {
            org_id,
            actor_user_id: None,
            actor_api_key_id: None,
            actor_label: "system".into(),
            action: "store.sweep",
            resource_type: "object_store",
            resource_id: None,
            details: Some(serde_json::json!({
                "removed": removed.len(),
                "removed_bytes": removed.iter().map(|i| i.size).sum::<u64>(),
                "keys": removed.iter().take(KEYS_IN_AUDIT).map(|i| i.key.as_str()).collect::<Vec<_>>(),
            })),
            ip: None,
            request_id: None,
        };
        audit::record(&state.db, entry).await?;
    }
    Ok(())
}

/// The store sweep: one job per period across all replicas.
pub fn periodic(state: &AppState) -> jobs::Periodic {
    jobs::Periodic {
        kind: jobs::SWEEP,
        tag: SWEEP_ID_TAG,
        period: state.config.store_sweep_interval_secs,
    }
}

/// The id of period `slot`'s sweep job.
pub fn job_id(slot: u64) -> Uuid {
    Uuid::from_u64_pair(SWEEP_ID_TAG, slot)
}

/// Runs a claimed sweep job and records its outcome; sweep jobs of past periods older than a
/// day are forgotten.
pub(super) async fn run_job(state: &AppState, job: &job::Model, lease: &Lease) {
    let grace = chrono::Duration::seconds(state.config.store_sweep_grace_secs as i64);
    let outcome = sweep(state, Utc::now() - grace).await;
    let recorded = match &outcome {
        Ok(_) => jobs::complete(&state.db, lease).await,
        Err(err) => {
            tracing::warn!(error = ?err, "store sweep failed");
            let retry_at = jobs::RetryPolicy::of(&state.config).next_run(job.attempts, Utc::now());
            jobs::fail(&state.db, job, lease, &format!("{err:?}"), retry_at).await
        }
    };
    if let Err(err) = recorded {
        tracing::warn!(error = ?err, "could not record the store sweep's outcome");
    }
    periodic(state).forget_old(&state.db).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_keys_name_their_org_and_scan() {
        let (org, scan) = (Uuid::now_v7(), Uuid::now_v7());
        let key = format!("reports/{org}/{}", scan.simple());
        assert_eq!(ids_of(&key), Some((org, scan)));
        assert_eq!(org_of(&key), Some(org));
        assert_eq!(ids_of("reports/x/y"), None);
        assert_eq!(ids_of(".probe/health"), None);
        assert_ne!(job_id(1), job_id(2));
    }
}
