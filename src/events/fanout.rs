//! Local delivery of events to this process's subscribers, one broadcast channel per topic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

/// How many events a slow subscriber may lag behind before it skips ahead.
const TOPIC_CAPACITY: usize = 256;

/// Topic → channel. Channels are created by the first subscriber and dropped once the last
/// one has gone, so idle topics cost nothing.
#[derive(Clone, Default)]
pub struct Fanout {
    topics: Arc<Mutex<HashMap<String, broadcast::Sender<Arc<str>>>>>,
}

impl Fanout {
    /// Delivers to this process's subscribers of `topic`; returns how many received it.
    pub fn deliver(&self, topic: &str, payload: &str) -> usize {
        let mut topics = self.topics.lock().expect("fanout lock");
        let Some(sender) = topics.get(topic) else {
            return 0;
        };
        match sender.send(Arc::from(payload)) {
            Ok(receivers) => receivers,
            Err(_) => {
                topics.remove(topic);
                0
            }
        }
    }

    pub fn subscribe(&self, topic: &str) -> BoxStream<'static, String> {
        let receiver = {
            let mut topics = self.topics.lock().expect("fanout lock");
            topics.retain(|_, sender| sender.receiver_count() > 0);
            topics
                .entry(topic.to_string())
                .or_insert_with(|| broadcast::channel(TOPIC_CAPACITY).0)
                .subscribe()
        };
        BroadcastStream::new(receiver)
            .filter_map(|item| async move { item.ok().map(|payload| payload.to_string()) })
            .boxed()
    }

    /// Number of topics with at least one live subscriber (for tests and metrics).
    pub fn live_topics(&self) -> usize {
        let topics = self.topics.lock().expect("fanout lock");
        topics.values().filter(|s| s.receiver_count() > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_only_to_the_topic_and_forgets_dropped_subscribers() {
        let fanout = Fanout::default();
        let mut a = fanout.subscribe("a");
        let b = fanout.subscribe("b");
        assert_eq!(fanout.deliver("a", "1"), 1);
        assert_eq!(a.next().await.as_deref(), Some("1"));
        drop(b);
        assert_eq!(fanout.deliver("b", "2"), 0);
        assert_eq!(fanout.live_topics(), 1);
    }
}
