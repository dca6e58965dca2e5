//! Snapshot subscriptions executed once per distinct request in this process and shared by
//! every subscriber of it.
//!
//! async-graphql executes a subscription's selection set and serialises the result once per
//! subscriber per event: with 10,000 followers of one scan that was most of the fan-out's CPU.
//! Every item of a snapshot subscription (`scanProgress`) is the whole current state, so a
//! subscriber joining late may start from the latest item, and one execution can serve all
//! subscribers that would get the same answers: same org, same document, same variables.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::stream::{self, BoxStream};
use futures::StreamExt;
use tokio::sync::broadcast;
use uuid::Uuid;

/// Answers a subscriber may fall behind by before it skips ahead (progress is coalesced to
/// ~10 answers per second per scan, so this is seconds of lag).
const BACKLOG: usize = 64;

/// What makes two subscriptions' answers the same. Reading a scan needs no more than
/// membership of its org, so the org stands for the caller.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ShareKey {
    pub org_id: Uuid,
    pub query: String,
    pub operation_name: Option<String>,
    /// The variables as JSON text.
    pub variables: String,
}

/// One answer of a shared execution, serialised.
#[derive(Debug)]
struct Item {
    /// 1 for the first answer; the final marker repeats the last answer's number.
    seq: u64,
    payload: Option<Arc<str>>,
    /// The execution has ended: after this answer the subscription completes.
    last: bool,
}

/// A running execution: its latest answer, for subscribers joining now, and every answer from
/// now on, for those already in.
struct Execution {
    latest: Mutex<Option<Arc<Item>>>,
    answers: broadcast::Sender<Arc<Item>>,
}

impl Execution {
    fn publish(&self, item: Item) {
        let item = Arc::new(item);
        let mut latest = self.latest.lock().expect("latest answer lock");
        *latest = Some(item.clone());
        // No receivers is not an error here: the execution then stops by itself.
        let _ = self.answers.send(item);
    }

    fn follow(&self) -> BoxStream<'static, Delivery> {
        let latest = self.latest.lock().expect("latest answer lock");
        deliveries(latest.clone(), self.answers.subscribe())
    }
}

/// What a subscriber sends next.
#[derive(Clone, Debug, PartialEq)]
pub enum Delivery {
    /// A GraphQL response, as JSON text.
    Next(Arc<str>),
    Complete,
}

/// Share key → the running execution.
#[derive(Clone, Default)]
pub struct SharedSubscriptions {
    executions: Arc<Mutex<HashMap<ShareKey, Arc<Execution>>>>,
}

impl SharedSubscriptions {
    /// The answers of the execution for `key`: the latest one first, then each newer one, then
    /// `Complete`. `start` runs the execution (yielding serialised responses) when none is
    /// running yet; it stops when its last subscriber has gone. A subscriber more than
    /// [`BACKLOG`] answers behind skips ahead, but never misses the last one.
    pub fn join<F>(&self, key: ShareKey, start: F) -> BoxStream<'static, Delivery>
    where
        F: FnOnce() -> BoxStream<'static, String>,
    {
        let mut executions = self.executions.lock().expect("shared subscriptions lock");
        if let Some(execution) = executions.get(&key) {
            return execution.follow();
        }
        let execution = Arc::new(Execution {
            latest: Mutex::new(None),
            answers: broadcast::channel(BACKLOG).0,
        });
        let follower = execution.follow();
        executions.insert(key.clone(), execution.clone());
        tokio::spawn(drive(self.clone(), key, execution, start()));
        follower
    }

    /// Executions running (for tests).
    pub fn running(&self) -> usize {
        self.executions
            .lock()
            .expect("shared subscriptions lock")
            .len()
    }

    /// Forgets the execution when it has ended (`always`) or nobody follows it any more; under
    /// the lock, so nobody joins an execution that is going away.
    fn retire(&self, key: &ShareKey, execution: &Arc<Execution>, always: bool) -> bool {
        let mut executions = self.executions.lock().expect("shared subscriptions lock");
        if !always && execution.answers.receiver_count() > 0 {
            return false;
        }
        if executions
            .get(key)
            .is_some_and(|current| Arc::ptr_eq(current, execution))
        {
            executions.remove(key);
        }
        true
    }
}

/// Runs one execution, publishing each answer.
async fn drive(
    shared: SharedSubscriptions,
    key: ShareKey,
    execution: Arc<Execution>,
    mut answers: BoxStream<'static, String>,
) {
    let mut seq = 0;
    let mut last_payload: Option<Arc<str>> = None;
    loop {
        tokio::select! {
            answer = answers.next() => {
                let Some(answer) = answer else {
                    // New subscribers start a fresh execution from here on; the ones already
                    // in get the last answer (if they missed it) and complete.
                    shared.retire(&key, &execution, true);
                    execution.publish(Item { seq, payload: last_payload, last: true });
                    return;
                };
                seq += 1;
                let payload: Arc<str> = answer.into();
                last_payload = Some(payload.clone());
                execution.publish(Item { seq, payload: Some(payload), last: false });
            }
            () = execution.answers.closed() => {
                if shared.retire(&key, &execution, false) {
                    return;
                }
            }
        }
    }
}

/// One subscriber's view of an execution: `latest` (when there is one yet), then what
/// `answers` brings, each answer once.
fn deliveries(
    latest: Option<Arc<Item>>,
    answers: broadcast::Receiver<Arc<Item>>,
) -> BoxStream<'static, Delivery> {
    struct Follower {
        first: Option<Arc<Item>>,
        answers: broadcast::Receiver<Arc<Item>>,
        delivered: u64,
        finishing: bool,
    }
    let follower = Follower {
        first: latest,
        answers,
        delivered: 0,
        finishing: false,
    };
    stream::unfold(Some(follower), |follower| async move {
        let mut f = follower?;
        if f.finishing {
            return Some((Delivery::Complete, None));
        }
        loop {
            let item = match f.first.take() {
                Some(item) => item,
                None => match f.answers.recv().await {
                    Ok(item) => item,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    // The execution went away without a last answer (the runtime is stopping).
                    Err(broadcast::error::RecvError::Closed) => {
                        return Some((Delivery::Complete, None))
                    }
                },
            };
            if item.seq > f.delivered {
                if let Some(payload) = &item.payload {
                    f.delivered = item.seq;
                    f.finishing = item.last;
                    return Some((Delivery::Next(payload.clone()), Some(f)));
                }
            }
            if item.last {
                return Some((Delivery::Complete, None));
            }
        }
    })
    .fuse()
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::mpsc;

    fn key(org: u128) -> ShareKey {
        ShareKey {
            org_id: Uuid::from_u128(org),
            query: "subscription { scanProgress(scanId: \"x\") { phase } }".into(),
            operation_name: None,
            variables: "{}".into(),
        }
    }

    fn next(text: &str) -> Delivery {
        Delivery::Next(text.into())
    }

    /// Lets spawned executions run until `running` executions are left.
    async fn settle_at(shared: &SharedSubscriptions, running: usize) {
        for _ in 0..100 {
            if shared.running() == running {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(shared.running(), running);
    }

    #[tokio::test]
    async fn one_execution_serves_every_subscriber_of_a_key_and_late_joiners_start_from_the_latest()
    {
        let shared = SharedSubscriptions::default();
        let (answers, source) = mpsc::unbounded::<String>();
        let mut source = Some(source);
        let mut starts = 0;
        let mut start = || {
            starts += 1;
            source.take().expect("started once").boxed()
        };
        let mut first = shared.join(key(1), &mut start);
        let mut second = shared.join(key(1), &mut start);
        assert_eq!(shared.running(), 1);

        answers.unbounded_send("a".into()).unwrap();
        assert_eq!(first.next().await, Some(next("a")));
        assert_eq!(second.next().await, Some(next("a")));
        answers.unbounded_send("b".into()).unwrap();
        assert_eq!(first.next().await, Some(next("b")));
        assert_eq!(second.next().await, Some(next("b")));

        // A late joiner gets the latest answer first.
        let mut late = shared.join(key(1), &mut start);
        assert_eq!(late.next().await, Some(next("b")));
        assert_eq!(starts, 1);

        // The last answer then `Complete`, for everyone; nobody misses the last answer even
        // when the execution ends before they read it.
        answers.unbounded_send("c".into()).unwrap();
        drop(answers);
        for follower in [&mut first, &mut second, &mut late] {
            assert_eq!(follower.next().await, Some(next("c")));
            assert_eq!(follower.next().await, Some(Delivery::Complete));
            assert_eq!(follower.next().await, None);
        }
        assert_eq!(second.next().await, None);
        assert_eq!(shared.running(), 0);
    }

    #[tokio::test]
    async fn keys_do_not_share_and_an_execution_stops_when_its_last_subscriber_leaves() {
        let shared = SharedSubscriptions::default();
        let (org_a, source_a) = mpsc::unbounded::<String>();
        let (_org_b, source_b) = mpsc::unbounded::<String>();
        let a = shared.join(key(1), || source_a.boxed());
        let b = shared.join(key(2), || source_b.boxed());
        assert_eq!(shared.running(), 2);

        drop(a);
        // The execution notices within a scheduling round.
        settle_at(&shared, 1).await;
        assert!(org_a.is_closed(), "the abandoned execution was dropped");
        drop(b);
    }

    #[tokio::test]
    async fn a_slow_subscriber_still_gets_every_answer_then_the_last_one_once() {
        let shared = SharedSubscriptions::default();
        let (answers, source) = mpsc::unbounded::<String>();
        let mut slow = shared.join(key(1), || source.boxed());
        for text in ["1", "2", "3"] {
            answers.unbounded_send(text.into()).unwrap();
        }
        drop(answers);
        // Let the execution publish everything, and end, before the subscriber reads.
        settle_at(&shared, 0).await;
        for text in ["1", "2", "3"] {
            assert_eq!(slow.next().await, Some(next(text)));
        }
        assert_eq!(slow.next().await, Some(Delivery::Complete));
        assert_eq!(slow.next().await, None);
    }
}
