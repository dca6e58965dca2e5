//! GraphQL subscriptions: a scan's progress, and every scan event of the org.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_graphql::{Context, Result, Subscription};
use futures::stream::{self, BoxStream};
use futures::StreamExt;
use uuid::Uuid;

use super::{org_topic, ScanProgress};
use crate::app::AppState;
use crate::context::Ctx;
use crate::error::AppError;
use crate::graphql::{caller, state};
use crate::scans::ScanStatus;

/// Subscriptions one WebSocket connection may hold at once.
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: usize = 64;

/// Counts a connection's live subscriptions (connection data, set by the WebSocket endpoint).
#[derive(Clone, Default)]
pub struct SubscriptionBudget(pub Arc<AtomicUsize>);

impl SubscriptionBudget {
    /// A slot for one more subscription, or `None` when the connection holds the maximum.
    pub fn take(&self) -> Option<Slot> {
        if self.0.fetch_add(1, Ordering::SeqCst) >= MAX_SUBSCRIPTIONS_PER_CONNECTION {
            self.0.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Slot(Some(self.clone())))
    }
}

/// Releases a subscription's slot when its stream is dropped.
pub struct Slot(Option<SubscriptionBudget>);

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(budget) = &self.0 {
            budget.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

pub(crate) fn take_slot(ctx: &Context<'_>) -> Result<Slot, AppError> {
    let Some(budget) = ctx.data_opt::<SubscriptionBudget>() else {
        return Ok(Slot(None));
    };
    budget.take().ok_or_else(|| AppError::rate_limited(1))
}

/// What one follower has been shown so far.
struct Shown {
    seq: u64,
    percent: f64,
    processed: u64,
}

impl Shown {
    /// `p` if it is newer than what was shown, never showing less progress than before: a
    /// retried attempt starts from 0 % again, which a follower sees as no progress, not a
    /// step back.
    fn next(&mut self, p: Arc<ScanProgress>) -> Option<Arc<ScanProgress>> {
        if p.seq <= self.seq {
            return None;
        }
        self.seq = p.seq;
        if p.is_terminal() || (p.percent >= self.percent && p.processed >= self.processed) {
            self.percent = p.percent;
            self.processed = p.processed;
            return Some(p);
        }
        let mut held = (*p).clone();
        held.percent = held.percent.max(self.percent);
        held.processed = held.processed.max(self.processed);
        self.percent = held.percent;
        self.processed = held.processed;
        Some(Arc::new(held))
    }
}

/// The scan's current progress, then every newer change, ending after the terminal one. The
/// events are shared with every other follower of the scan in this process, and ordered by the
/// scan's sequence number; the shared feed re-reads the scan row when the bus reconnects or the
/// scan has been quiet for a while, so a follower always ends when its scan ends.
///
/// # Errors
/// `NOT_FOUND` for a scan outside the caller's org.
pub async fn follow_scan_stream(
    state: &AppState,
    ctx: &Ctx,
    scan_id: Uuid,
) -> Result<BoxStream<'static, Arc<ScanProgress>>, AppError> {
    // Listen first, then read the row: nothing published in between is missed.
    let events = state
        .scan_feeds
        .follow(state.bus.as_ref(), &state.db, scan_id);
    let scan = crate::scans::get(ctx, state, scan_id).await?;
    let current = Arc::new(scan.progress.clone().unwrap_or_else(|| {
        let phase = scan.status.as_str();
        ScanProgress::new(scan.id, scan.target_id, scan.status, phase)
    }));
    let mut shown = Shown {
        seq: current.seq,
        percent: current.percent,
        processed: current.processed,
    };
    let updates = events.filter_map(move |p| futures::future::ready(shown.next(p)));
    let all = stream::once(async move { current }).chain(updates).boxed();
    // End right after the terminal event, without waiting for another one.
    Ok(stream::unfold((all, false), |(mut all, done)| async move {
        if done {
            return None;
        }
        let next = all.next().await?;
        let terminal = next.is_terminal();
        Some((next, (all, terminal)))
    })
    .boxed())
}

/// Status changes of every scan of the caller's org (optionally one target's).
pub fn org_scan_events(
    state: &AppState,
    ctx: &Ctx,
    target_id: Option<Uuid>,
) -> BoxStream<'static, ScanProgress> {
    let mut last_status: HashMap<Uuid, ScanStatus> = HashMap::new();
    state
        .bus
        .subscribe(&org_topic(ctx.org_id))
        .filter_map(move |payload| {
            let event = serde_json::from_str::<ScanProgress>(&payload)
                .ok()
                .filter(|p| target_id.is_none_or(|t| p.target_id == t));
            let changed = event.filter(|p| {
                let previous = last_status.insert(p.scan_id, p.status);
                if p.is_terminal() {
                    last_status.remove(&p.scan_id);
                }
                previous != Some(p.status)
            });
            futures::future::ready(changed)
        })
        .boxed()
}

/// Subscriptions whose every item is the subscriber's whole current state (not a change), so
/// one execution may serve many subscribers and a late one may start from the latest item.
const SNAPSHOT_FIELDS: &[&str] = &["scanProgress"];

/// Whether the operation `operation_name` of `query` subscribes to snapshot fields only.
/// Anything else (a parse error included) is left to the normal per-subscriber execution.
pub fn is_snapshot_subscription(query: &str, operation_name: Option<&str>) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return false;
    };
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), _) => operation,
        (DocumentOperations::Multiple(operations), Some(name)) => {
            match operations.iter().find(|(n, _)| n.as_str() == name) {
                Some((_, operation)) => operation,
                None => return false,
            }
        }
        (DocumentOperations::Multiple(_), None) => return false,
    };
    let fields = &operation.node.selection_set.node.items;
    operation.node.ty == OperationType::Subscription
        && !fields.is_empty()
        && fields.iter().all(|selection| {
            matches!(&selection.node, Selection::Field(field)
                if SNAPSHOT_FIELDS.contains(&field.node.name.node.as_str()))
        })
}

/// The scan subscriptions (merged into the schema's `SubscriptionRoot`).
#[derive(Default)]
pub struct ScanSubscription;

#[Subscription]
impl ScanSubscription {
    /// A scan's current progress first, then each change; completes after `COMPLETE`, `FAILED`
    /// or `CANCELLED`.
    async fn scan_progress(
        &self,
        ctx: &Context<'_>,
        scan_id: Uuid,
    ) -> Result<impl futures::Stream<Item = Arc<ScanProgress>>> {
        let slot = take_slot(ctx)?;
        let stream = follow_scan_stream(state(ctx), caller(ctx)?, scan_id).await?;
        Ok(stream.map(move |p| {
            let _held = &slot;
            p
        }))
    }

    /// Status changes of every scan of the org, or of one target's scans.
    async fn scan_events(
        &self,
        ctx: &Context<'_>,
        target_id: Option<Uuid>,
    ) -> Result<impl futures::Stream<Item = ScanProgress>> {
        let slot = take_slot(ctx)?;
        let stream = org_scan_events(state(ctx), caller(ctx)?, target_id);
        Ok(stream.map(move |p| {
            let _held = &slot;
            p
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::is_snapshot_subscription;

    #[test]
    fn only_scan_progress_subscriptions_are_snapshots() {
        let progress = "subscription($id: UUID!) { scanProgress(scanId: $id) { phase percent } }";
        assert!(is_snapshot_subscription(progress, None));
        let named = "subscription A { scanEvents { phase } } subscription B($id: UUID!) { scanProgress(scanId: $id) { phase } }";
        assert!(is_snapshot_subscription(named, Some("B")));
        assert!(!is_snapshot_subscription(named, Some("A")));
        assert!(!is_snapshot_subscription(named, None));
        assert!(!is_snapshot_subscription(
            "subscription { scanEvents { phase } }",
            None
        ));
        assert!(!is_snapshot_subscription(
            "{ scanProgress { phase } }",
            None
        ));
        assert!(!is_snapshot_subscription(
            "subscription { ...F } fragment F on SubscriptionRoot { scanProgress(scanId: \"x\") { phase } }",
            None
        ));
        assert!(!is_snapshot_subscription("subscription {", None));
    }
}
