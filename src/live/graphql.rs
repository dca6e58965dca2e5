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

fn take_slot(ctx: &Context<'_>) -> Result<Slot, AppError> {
    let Some(budget) = ctx.data_opt::<SubscriptionBudget>() else {
        return Ok(Slot(None));
    };
    budget.take().ok_or_else(|| AppError::rate_limited(1))
}

/// The scan's current progress, then every newer change, ending after the terminal one. The
/// events are shared with every other follower of the scan in this process.
///
/// # Errors
/// `NOT_FOUND` for a scan outside the caller's org.
pub async fn follow_scan_stream(
    state: &AppState,
    ctx: &Ctx,
    scan_id: Uuid,
) -> Result<BoxStream<'static, Arc<ScanProgress>>, AppError> {
    // Listen first, then read the row: nothing published in between is missed.
    let events = state.scan_feeds.follow(state.bus.as_ref(), scan_id);
    let scan = crate::scans::get(ctx, state, scan_id).await?;
    let current = scan.progress.clone().unwrap_or_else(|| {
        let phase = scan.status.as_str();
        ScanProgress::new(scan.id, scan.target_id, scan.status, phase)
    });
    // Ordered by the scan's sequence number, not by time: events come from several
    // processes, whose clocks may disagree.
    let mut last_seq = current.seq;
    let updates = events.filter(move |p| {
        let newer = p.seq > last_seq;
        if newer {
            last_seq = p.seq;
        }
        futures::future::ready(newer)
    });
    let all = stream::once(async move { Arc::new(current) })
        .chain(updates)
        .boxed();
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

#[derive(Default)]
pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
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
