//! The event bus for live events: in-process by default, Redis pub/sub across processes.
//!
//! Events are fire-and-forget notifications (progress, status changes). Anything that must
//! survive is written to the database first; a subscriber that misses an event catches up from
//! there.

mod fanout;
mod memory;
mod redis;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;

pub use fanout::Fanout;
pub use memory::MemoryBus;
pub use redis::RedisBus;

/// Why the bus could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[error("event bus: {0}")]
pub struct BusError(pub String);

/// Publishes to and subscribes on named topics (e.g. `scan:<id>`, `org:<id>:scans`).
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Sends `payload` to every subscriber of `topic`, in this and (with Redis) other processes.
    async fn publish(&self, topic: &str, payload: &str) -> Result<(), BusError>;

    /// Every payload published on `topic` from now on, in order. A subscriber that falls too
    /// far behind skips ahead rather than holding memory for it.
    fn subscribe(&self, topic: &str) -> BoxStream<'static, String>;

    /// An item each time the bus has subscribed again after losing its connection: events
    /// published meanwhile were lost, and subscribers catch up from the database.
    fn reconnections(&self) -> BoxStream<'static, ()> {
        futures::stream::pending().boxed()
    }

    /// Proves the bus works end to end (for Redis: a round trip to the server).
    async fn check(&self) -> Result<(), BusError>;

    /// `in_process` or `redis`.
    fn kind(&self) -> &'static str;
}
