//! The event bus: in-process, and across instances through real Redis.

use std::time::Duration;

use futures::StreamExt;
use rampart::events::{EventBus, MemoryBus, RedisBus};

use crate::support::TestEnv;

async fn next_within(stream: &mut futures::stream::BoxStream<'static, String>) -> String {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("event arrives in time")
        .expect("stream open")
}

#[tokio::test]
async fn in_process_bus_delivers_in_order_to_each_subscriber() {
    let bus = MemoryBus::default();
    let mut first = bus.subscribe("scan:1");
    let mut second = bus.subscribe("scan:1");
    let mut other = bus.subscribe("scan:2");
    for n in 0..3 {
        bus.publish("scan:1", &n.to_string()).await.unwrap();
    }
    for stream in [&mut first, &mut second] {
        for n in 0..3 {
            assert_eq!(next_within(stream).await, n.to_string());
        }
    }
    // Delivery is in publish order: had `other` been sent scan:1's events, they would come
    // before this marker.
    bus.publish("scan:2", "marker").await.unwrap();
    assert_eq!(
        next_within(&mut other).await,
        "marker",
        "another topic's subscriber got nothing else"
    );
}

#[tokio::test]
#[cfg_attr(
    not(rampart_test_redis),
    ignore = "needs RAMPART_TEST_REDIS_URL (the scale-out run)"
)]
async fn event_published_on_one_instance_reaches_another_through_redis() {
    let url = TestEnv::from_env()
        .redis_url
        .expect("RAMPART_TEST_REDIS_URL was set when this test was built");
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let publisher = RedisBus::connect(&url, &prefix)
        .await
        .expect("redis reachable");
    let subscriber = RedisBus::connect(&url, &prefix)
        .await
        .expect("redis reachable");
    let topic = format!("test:{}", uuid::Uuid::new_v4());
    let mut events = subscriber.subscribe(&topic);
    let mut unrelated = subscriber.subscribe("test:unrelated");

    for n in 0..5 {
        publisher
            .publish(&topic, &format!("event-{n}"))
            .await
            .unwrap();
    }
    for n in 0..5 {
        assert_eq!(next_within(&mut events).await, format!("event-{n}"));
    }
    // One connection delivers in publish order: anything of `topic` sent to `unrelated` would
    // come before this marker.
    publisher.publish("test:unrelated", "marker").await.unwrap();
    assert_eq!(next_within(&mut unrelated).await, "marker");
    subscriber.check().await.expect("ping");
}
