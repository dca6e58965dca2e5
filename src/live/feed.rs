//! One event-bus subscription per followed scan in this process, shared by all its followers.
//!
//! With thousands of followers of one scan, giving each its own bus subscription meant each
//! copied and decoded every payload itself; here a payload is decoded once and the followers
//! share it.
//!
//! Events may be lost (published while the bus was down). So the feed also reads the scan row
//! again when the bus reconnects and whenever the scan has been quiet for a while, and hands
//! on what it finds if it is newer: a follower always ends when its scan ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use entity::scan;
use futures::stream::BoxStream;
use futures::StreamExt;
use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use uuid::Uuid;

use super::{scan_topic, ScanProgress};
use crate::events::EventBus;

/// How many events a slow follower may lag behind before it skips ahead (the scan row holds
/// the truth; progress is coalesced to ~10 events per second per scan).
const FEED_CAPACITY: usize = 256;
/// How long a followed scan may be quiet before its row is read again (and before a feed
/// nobody follows any more goes away).
const RESYNC_WHEN_QUIET: Duration = Duration::from_secs(3);

type Feed = broadcast::Sender<Arc<ScanProgress>>;

/// Scan id → the shared, decoded feed of its events.
#[derive(Clone, Default)]
pub struct ScanFeeds {
    feeds: Arc<Mutex<HashMap<Uuid, Feed>>>,
}

impl ScanFeeds {
    /// Every event of `scan_id` published from now on (the bus subscription is live when this
    /// returns, so reading the scan row afterwards misses nothing).
    pub fn follow(
        &self,
        bus: &dyn EventBus,
        db: &DatabaseConnection,
        scan_id: Uuid,
    ) -> BoxStream<'static, Arc<ScanProgress>> {
        let receiver = {
            let mut feeds = self.feeds.lock().expect("scan feeds lock");
            match feeds.get(&scan_id) {
                Some(feed) => feed.subscribe(),
                None => {
                    let (feed, receiver) = broadcast::channel(FEED_CAPACITY);
                    let sources = Sources {
                        events: bus.subscribe(&scan_topic(scan_id)),
                        reconnections: bus.reconnections(),
                        db: db.clone(),
                    };
                    tokio::spawn(relay(self.clone(), scan_id, feed.clone(), sources));
                    feeds.insert(scan_id, feed);
                    receiver
                }
            }
        };
        BroadcastStream::new(receiver)
            .filter_map(|item| futures::future::ready(item.ok()))
            .boxed()
    }

    /// Scans with a live feed (for tests).
    pub fn live_feeds(&self) -> usize {
        self.feeds.lock().expect("scan feeds lock").len()
    }

    /// Drops the feed when it has ended (`always`) or nobody follows it; under the lock, so
    /// nobody joins a feed that is going away.
    fn retire(&self, scan_id: Uuid, feed: &Feed, always: bool) -> bool {
        let mut feeds = self.feeds.lock().expect("scan feeds lock");
        if !always && feed.receiver_count() > 0 {
            return false;
        }
        if feeds.get(&scan_id).is_some_and(|f| f.same_channel(feed)) {
            feeds.remove(&scan_id);
        }
        true
    }
}

/// Where a feed learns of a scan's progress.
struct Sources {
    events: BoxStream<'static, String>,
    /// An item each time the bus has subscribed again after losing its connection.
    reconnections: BoxStream<'static, ()>,
    db: DatabaseConnection,
}

/// The scan's progress as its row holds it, if it can be read.
async fn stored_progress(db: &DatabaseConnection, scan_id: Uuid) -> Option<ScanProgress> {
    match scan::Entity::find_by_id(scan_id).one(db).await {
        Ok(row) => row.map(|row| super::progress_of(&row)),
        Err(err) => {
            tracing::warn!(%err, %scan_id, "could not re-read a followed scan");
            None
        }
    }
}

/// Decodes the scan's bus events once and hands them to every follower (each follower keeps
/// only what is newer than what it has seen); ends after the terminal event (followers joining
/// later read it from the scan row), or when nobody follows any more.
async fn relay(feeds: ScanFeeds, scan_id: Uuid, feed: Feed, sources: Sources) {
    let Sources {
        mut events,
        mut reconnections,
        db,
    } = sources;
    loop {
        let progress = tokio::select! {
            payload = events.next() => {
                let Some(payload) = payload else {
                    feeds.retire(scan_id, &feed, true);
                    return;
                };
                let Ok(progress) = serde_json::from_str::<ScanProgress>(&payload) else {
                    continue;
                };
                progress
            }
            Some(()) = reconnections.next() => match stored_progress(&db, scan_id).await {
                Some(progress) => progress,
                None => continue,
            },
            () = tokio::time::sleep(RESYNC_WHEN_QUIET) => {
                if feeds.retire(scan_id, &feed, false) {
                    return;
                }
                match stored_progress(&db, scan_id).await {
                    Some(progress) => progress,
                    None => continue,
                }
            }
        };
        let terminal = progress.is_terminal();
        let delivered = feed.send(Arc::new(progress)).is_ok();
        if terminal || (!delivered && feeds.retire(scan_id, &feed, false)) {
            feeds.retire(scan_id, &feed, true);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::MemoryBus;
    use crate::scans::ScanStatus;

    #[tokio::test]
    async fn followers_of_a_scan_share_one_feed_that_ends_after_the_terminal_event() {
        let bus = MemoryBus::default();
        // No scan table: the feed's re-reads fail (and are logged); bus events still flow.
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        let feeds = ScanFeeds::default();
        let scan = Uuid::new_v4();
        let mut first = feeds.follow(&bus, &db, scan);
        let mut second = feeds.follow(&bus, &db, scan);
        assert_eq!(feeds.live_feeds(), 1);

        let mut running = ScanProgress::new(scan, Uuid::nil(), ScanStatus::Running, "parsing");
        running.percent = 40.0;
        crate::live::publish(&bus, Uuid::nil(), &running).await;
        let got = first.next().await.unwrap();
        assert!(Arc::ptr_eq(&got, &second.next().await.unwrap()));
        assert_eq!(*got, running);

        let done = ScanProgress::new(scan, Uuid::nil(), ScanStatus::Complete, "complete");
        crate::live::publish(&bus, Uuid::nil(), &done).await;
        assert_eq!(first.next().await.unwrap().status, ScanStatus::Complete);
        assert_eq!(second.next().await.unwrap().status, ScanStatus::Complete);
        assert!(
            first.next().await.is_none(),
            "the feed ends after the terminal event"
        );
        assert_eq!(feeds.live_feeds(), 0);

        // A later follower gets a fresh feed.
        let _third = feeds.follow(&bus, &db, scan);
        assert_eq!(feeds.live_feeds(), 1);
    }
}
