//! The scale-out bus: events travel through Redis pub/sub to every server process.

use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{BusError, EventBus, Fanout};

const TIMEOUT: Duration = Duration::from_secs(2);

/// Publishes with `PUBLISH`; one `PSUBSCRIBE` connection per process feeds local subscribers.
pub struct RedisBus {
    /// Every channel of this bus starts with it (`<prefix>:events:`), so one pattern
    /// subscription per process receives them all.
    channel_prefix: String,
    publisher: ConnectionManager,
    fanout: Fanout,
    listener: JoinHandle<()>,
    /// Told each time the subscription is live again after an interruption.
    reconnected: tokio::sync::broadcast::Sender<()>,
}

impl RedisBus {
    /// Connects to `url` and starts listening; returns once the subscription is live, so no
    /// event published after this returns is missed.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, BusError> {
        let channel_prefix = format!("{prefix}:events:");
        let client = redis::Client::open(url).map_err(|e| BusError(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        let publisher = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| BusError(format!("cannot connect to redis: {e}")))?;
        let fanout = Fanout::default();
        let (ready_tx, ready_rx) = oneshot::channel();
        let (reconnected, _) = tokio::sync::broadcast::channel(4);
        let listener = tokio::spawn(listen(
            client,
            channel_prefix.clone(),
            fanout.clone(),
            ready_tx,
            reconnected.clone(),
        ));
        match tokio::time::timeout(TIMEOUT * 2, ready_rx).await {
            Ok(Ok(())) => Ok(Self {
                channel_prefix,
                publisher,
                fanout,
                listener,
                reconnected,
            }),
            _ => {
                listener.abort();
                Err(BusError("cannot subscribe on redis".into()))
            }
        }
    }
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Keeps one pattern subscription alive, reconnecting with backoff, and hands every message to
/// the local fan-out.
async fn listen(
    client: redis::Client,
    channel_prefix: String,
    fanout: Fanout,
    ready: oneshot::Sender<()>,
    reconnected: tokio::sync::broadcast::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(100);
    loop {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.psubscribe(format!("{channel_prefix}*")).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(TIMEOUT, subscribed).await {
            Ok(Ok(pubsub)) => {
                backoff = Duration::from_millis(100);
                match ready.take() {
                    Some(ready) => {
                        let _ = ready.send(());
                    }
                    None => {
                        tracing::info!("redis event subscription live again");
                        let _ = reconnected.send(());
                    }
                }
                let mut messages = pubsub.into_on_message();
                while let Some(msg) = messages.next().await {
                    let Some(topic) = msg.get_channel_name().strip_prefix(channel_prefix.as_str())
                    else {
                        continue;
                    };
                    match msg.get_payload::<String>() {
                        Ok(payload) => {
                            fanout.deliver(topic, &payload);
                        }
                        Err(err) => tracing::warn!(%err, "undecodable event from redis"),
                    }
                }
                tracing::warn!("redis event subscription ended; reconnecting");
            }
            Ok(Err(err)) => tracing::warn!(%err, "redis event subscription failed"),
            Err(_) => tracing::warn!("redis event subscription timed out"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, topic: &str, payload: &str) -> Result<(), BusError> {
        let mut conn = self.publisher.clone();
        redis::cmd("PUBLISH")
            .arg(format!("{}{topic}", self.channel_prefix))
            .arg(payload)
            .query_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| BusError(format!("publish failed: {e}")))
    }

    fn subscribe(&self, topic: &str) -> BoxStream<'static, String> {
        self.fanout.subscribe(topic)
    }

    fn reconnections(&self) -> BoxStream<'static, ()> {
        tokio_stream::wrappers::BroadcastStream::new(self.reconnected.subscribe())
            .filter_map(|item| futures::future::ready(item.ok()))
            .boxed()
    }

    async fn check(&self) -> Result<(), BusError> {
        let mut conn = self.publisher.clone();
        let ping = redis::cmd("PING");
        match tokio::time::timeout(TIMEOUT, ping.query_async::<String>(&mut conn)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(BusError(e.to_string())),
            Err(_) => Err(BusError("redis did not answer in time".into())),
        }
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}
