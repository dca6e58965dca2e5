//! The embedded bus: events stay inside this process.

use async_trait::async_trait;
use futures::stream::BoxStream;

use super::{BusError, EventBus, Fanout};

/// In-process broadcast; enough for a single-machine install.
#[derive(Default)]
pub struct MemoryBus {
    fanout: Fanout,
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn publish(&self, topic: &str, payload: &str) -> Result<(), BusError> {
        self.fanout.deliver(topic, payload);
        Ok(())
    }

    fn subscribe(&self, topic: &str) -> BoxStream<'static, String> {
        self.fanout.subscribe(topic)
    }

    async fn check(&self) -> Result<(), BusError> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "in_process"
    }
}
