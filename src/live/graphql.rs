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

/// Releases a subscription's slot when its stream is dropped.
struct Slot(Option<SubscriptionBudget>);

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
    if budget.0.fetch_add(1, Ordering::SeqCst) >= MAX_SUBSCRIPTIONS_PER_CONNECTION {
        budget.0.fetch_sub(1, Ordering::SeqCst);
        return Err(AppError::rate_limited(1));
    }
    Ok(Slot(Some(budget.clone())))
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
    let mut last_at = current.at;
    let updates = events.filter(move |p| {
        let newer = p.at > last_at;
        if newer {
            last_at = p.at;
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
