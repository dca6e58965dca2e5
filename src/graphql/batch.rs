//! Batching by rounds, without a clock: the keys an execution asks for until it has nothing
//! left to run become one fetch.
//!
//! A GraphQL executor resolves a list's items and an object's fields concurrently inside one
//! task (`try_join_all`, `FuturesUnordered`), not on tasks of their own. The execution runs
//! inside [`InRounds`], which notices when a poll of it ends with nothing ready to run: every
//! future is then waiting, either on I/O or on a key it asked a [`Batcher`] for. That ends a
//! round: the batches gathered in it are closed and their callers woken; the first to run sends
//! its batch, the others await that same fetch, and keys asked for afterwards open new batches.
//! There is no timer and no spawned task: how many fetches a query costs depends on its shape,
//! never on how busy the machine is or how fast the database answers, and a lone key waits for
//! nothing.
//!
//! A caller that merely yields once (wakes itself, returns `Pending`) and then sends is not
//! enough: `FuturesUnordered` polls a self-woken future again within the same pass when few of
//! its siblings are queued, so the batch would go out before other objects' fields had asked.
//!
//! Nothing is cached: every batch is fetched afresh.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use futures::future::{poll_fn, BoxFuture, FutureExt, Shared};
use futures::task::{waker_ref, ArcWake, AtomicWaker};
use futures::Stream;

/// Fetches the values of many keys at once.
pub trait BatchFn: Send + Sync + 'static {
    type Key: Clone + Eq + Hash + Send + Sync + 'static;
    type Value: Clone + Send + Sync + 'static;
    /// Handed to every caller of a failed batch, hence `Clone`.
    type Error: Clone + Send + Sync + 'static;

    /// The values of `keys` (distinct); a key without a value is left out.
    fn load(
        &self,
        keys: &[Self::Key],
    ) -> impl Future<Output = Result<HashMap<Self::Key, Self::Value>, Self::Error>> + Send;
}

/// The rounds of one execution: the batches gathering keys in the current round.
#[derive(Default)]
pub struct Rounds {
    gathering: Mutex<Vec<Arc<dyn Close>>>,
}

impl Rounds {
    /// Ends the round: the batches gathered in it stop taking keys and their callers are woken
    /// to send them. Whether there were any.
    fn end(&self) -> bool {
        let closing = std::mem::take(&mut *lock(&self.gathering));
        let any = !closing.is_empty();
        for batch in closing {
            batch.close();
        }
        any
    }
}

trait Close: Send + Sync {
    fn close(&self);
}

type Answer<F> =
    Result<Arc<HashMap<<F as BatchFn>::Key, <F as BatchFn>::Value>>, <F as BatchFn>::Error>;
type Fetch<F> = Shared<BoxFuture<'static, Answer<F>>>;

/// One batch: taking keys until its round ends, then waiting to be sent, then the fetch every
/// caller of it awaits.
enum Batch<F: BatchFn> {
    Gathering {
        keys: Vec<F::Key>,
        seen: HashSet<F::Key>,
        callers: Vec<Waker>,
    },
    Closed(Vec<F::Key>),
    Sent(Fetch<F>),
}

struct BatchCell<F: BatchFn>(Mutex<Batch<F>>);

impl<F: BatchFn> Close for BatchCell<F> {
    fn close(&self) {
        let mut batch = lock(&self.0);
        if let Batch::Gathering { keys, callers, .. } = &mut *batch {
            let callers = std::mem::take(callers);
            *batch = Batch::Closed(std::mem::take(keys));
            drop(batch);
            for caller in callers {
                caller.wake();
            }
        }
    }
}

/// Turns the keys an execution asks for in one round into one call of `F` (see the module's
/// documentation). The execution must run inside [`InRounds`] with the same [`Rounds`].
pub struct Batcher<F: BatchFn> {
    fetch: Arc<F>,
    rounds: Arc<Rounds>,
    /// The batch new keys join, while it gathers.
    open: Mutex<Option<Arc<BatchCell<F>>>>,
}

impl<F: BatchFn> Batcher<F> {
    pub fn new(fetch: F, rounds: Arc<Rounds>) -> Self {
        Self {
            fetch: Arc::new(fetch),
            rounds,
            open: Mutex::new(None),
        }
    }

    /// The value of `key`, fetched together with the other keys asked for in this round.
    ///
    /// # Errors
    /// The batch's error, handed to every caller of the batch.
    pub async fn load_one(&self, key: F::Key) -> Result<Option<F::Value>, F::Error> {
        let batch = self.join(key.clone());
        let mut slot = None;
        let fetch = poll_fn(|cx| self.sendable(&batch, &mut slot, cx)).await;
        let answer = fetch.await?;
        Ok(answer.get(&key).cloned())
    }

    /// Adds `key` to the gathering batch, opening one if none gathers.
    fn join(&self, key: F::Key) -> Arc<BatchCell<F>> {
        let mut open = lock(&self.open);
        if let Some(batch) = open.as_ref() {
            let mut state = lock(&batch.0);
            if let Batch::Gathering { keys, seen, .. } = &mut *state {
                if seen.insert(key.clone()) {
                    keys.push(key);
                }
                drop(state);
                return batch.clone();
            }
        }
        let batch = Arc::new(BatchCell(Mutex::new(Batch::Gathering {
            keys: vec![key.clone()],
            seen: HashSet::from([key]),
            callers: Vec::new(),
        })));
        lock(&self.rounds.gathering).push(batch.clone());
        *open = Some(batch.clone());
        batch
    }

    /// Pending while the batch gathers; then its fetch, started by the first caller here.
    fn sendable(
        &self,
        batch: &BatchCell<F>,
        slot: &mut Option<usize>,
        cx: &mut Context<'_>,
    ) -> Poll<Fetch<F>> {
        let mut state = lock(&batch.0);
        match &mut *state {
            Batch::Gathering { callers, .. } => {
                match slot {
                    Some(i) => callers[*i].clone_from(cx.waker()),
                    None => {
                        *slot = Some(callers.len());
                        callers.push(cx.waker().clone());
                    }
                }
                Poll::Pending
            }
            Batch::Closed(keys) => {
                let keys = std::mem::take(keys);
                let fetch = self.fetch.clone();
                let shared = async move { fetch.load(&keys).await.map(Arc::new) }
                    .boxed()
                    .shared();
                *state = Batch::Sent(shared.clone());
                Poll::Ready(shared)
            }
            Batch::Sent(shared) => Poll::Ready(shared.clone()),
        }
    }
}

/// Runs an execution (a future, or a stream of answers) in rounds: when a poll of it ends with
/// nothing woken, the round's batches go out.
///
/// The execution is polled without tokio's cooperative budget: a resource that has used up
/// the budget returns `Pending` and asks to be woken only after the poll, which would look
/// like a round's end while work is still ready.
pub struct InRounds<T> {
    inner: T,
    rounds: Arc<Rounds>,
    signal: Arc<Signal>,
}

/// The waker the execution sees: it records that something woke, then wakes the task.
#[derive(Default)]
struct Signal {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl ArcWake for Signal {
    fn wake_by_ref(signal: &Arc<Self>) {
        signal.woken.store(true, Ordering::SeqCst);
        signal.task.wake();
    }
}

impl<T: Unpin> InRounds<T> {
    pub fn new(rounds: Arc<Rounds>, inner: T) -> Self {
        Self {
            inner,
            rounds,
            signal: Arc::default(),
        }
    }

    fn drive<R>(
        &mut self,
        cx: &mut Context<'_>,
        mut step: impl FnMut(&mut T, &mut Context<'_>) -> Poll<R>,
    ) -> Poll<R> {
        let signal = self.signal.clone();
        let waker = waker_ref(&signal);
        let mut inner_cx = Context::from_waker(&waker);
        loop {
            signal.task.register(cx.waker());
            signal.woken.store(false, Ordering::SeqCst);
            let inner = &mut self.inner;
            let mut poll = tokio::task::unconstrained(poll_fn(|cx| step(inner, cx)));
            if let Poll::Ready(answer) = Pin::new(&mut poll).poll(&mut inner_cx) {
                return Poll::Ready(answer);
            }
            // Something is ready to run (the task was woken): the round goes on.
            if signal.woken.load(Ordering::SeqCst) {
                return Poll::Pending;
            }
            // Everything waits. Without batches to send it waits on I/O; else they go out now.
            if !self.rounds.end() {
                return Poll::Pending;
            }
        }
    }
}

impl<T: Future + Unpin> Future for InRounds<T> {
    type Output = T::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        self.get_mut()
            .drive(cx, |inner, cx| Pin::new(inner).poll(cx))
    }
}

impl<T: Stream + Unpin> Stream for InRounds<T> {
    type Item = T::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T::Item>> {
        self.get_mut()
            .drive(cx, |inner, cx| Pin::new(inner).poll_next(cx))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::executor::block_on;
    use futures::future::{join_all, try_join_all};
    use futures::stream::FuturesUnordered;
    use futures::task::noop_waker_ref;
    use futures::StreamExt;
    use rand::Rng;

    use super::*;

    /// Doubles its keys (odd keys have none) and records each call's keys. With `latency`, it
    /// answers from another thread after a random pause of up to that long, as a database
    /// would, so what is ready when varies from run to run.
    #[derive(Default)]
    struct Doubler {
        calls: Mutex<Vec<Vec<u32>>>,
        latency: Option<Duration>,
        fail: bool,
    }

    impl BatchFn for Arc<Doubler> {
        type Key = u32;
        type Value = u32;
        type Error = String;

        async fn load(&self, keys: &[u32]) -> Result<HashMap<u32, u32>, String> {
            self.calls.lock().unwrap().push(keys.to_vec());
            if let Some(latency) = self.latency {
                let (answer, answered) = futures::channel::oneshot::channel();
                let pause = rand::thread_rng().gen_range(Duration::ZERO..=latency);
                std::thread::spawn(move || {
                    std::thread::sleep(pause);
                    let _ = answer.send(());
                });
                answered.await.map_err(|e| e.to_string())?;
            }
            if self.fail {
                return Err("database unavailable".into());
            }
            Ok(keys
                .iter()
                .filter(|k| *k % 2 == 0)
                .map(|k| (*k, k * 2))
                .collect())
        }
    }

    fn doubler(rounds: &Arc<Rounds>, latency_ms: u64) -> (Arc<Doubler>, Batcher<Arc<Doubler>>) {
        let d = Arc::new(Doubler {
            latency: (latency_ms > 0).then(|| Duration::from_millis(latency_ms)),
            ..Default::default()
        });
        (d.clone(), Batcher::new(d, rounds.clone()))
    }

    fn calls(d: &Doubler) -> Vec<Vec<u32>> {
        d.calls.lock().unwrap().clone()
    }

    /// Runs `execution` to its end in rounds.
    fn run<T>(rounds: &Arc<Rounds>, execution: impl Future<Output = T> + Send) -> T {
        block_on(InRounds::new(rounds.clone(), Box::pin(execution)))
    }

    #[test]
    fn concurrent_keys_make_one_call() {
        for n in [2, 30, 31, 500] {
            let rounds = Arc::<Rounds>::default();
            let (d, batcher) = doubler(&rounds, 3);
            let answers = run(&rounds, join_all((0..n).map(|k| batcher.load_one(k))));
            let expected: Vec<_> = (0..n).map(|k| Ok((k % 2 == 0).then_some(k * 2))).collect();
            assert_eq!(answers, expected);
            assert_eq!(calls(&d), vec![(0..n).collect::<Vec<_>>()]);
        }
    }

    #[test]
    fn a_repeated_key_is_fetched_once() {
        let rounds = Arc::<Rounds>::default();
        let (d, batcher) = doubler(&rounds, 0);
        let answers = run(&rounds, join_all([4, 4, 6].map(|k| batcher.load_one(k))));
        assert_eq!(answers, vec![Ok(Some(8)), Ok(Some(8)), Ok(Some(12))]);
        assert_eq!(calls(&d), vec![vec![4, 6]]);
    }

    /// No timer, no other task: one poll asks, sends and (the fetch being ready) answers.
    #[test]
    fn a_lone_key_waits_for_nothing() {
        let rounds = Arc::<Rounds>::default();
        let (d, batcher) = doubler(&rounds, 0);
        let mut load = InRounds::new(rounds.clone(), Box::pin(batcher.load_one(2)));
        let mut cx = Context::from_waker(noop_waker_ref());
        assert_eq!(Pin::new(&mut load).poll(&mut cx), Poll::Ready(Ok(Some(4))));
        assert_eq!(calls(&d), vec![vec![2]]);
    }

    #[test]
    fn an_error_reaches_every_caller() {
        let rounds = Arc::<Rounds>::default();
        let d = Arc::new(Doubler {
            fail: true,
            latency: Some(Duration::from_millis(2)),
            ..Default::default()
        });
        let batcher = Batcher::new(d.clone(), rounds.clone());
        let answers = run(&rounds, join_all((0..5).map(|k| batcher.load_one(k))));
        assert_eq!(answers, vec![Err("database unavailable".to_string()); 5]);
        assert_eq!(calls(&d).len(), 1);
    }

    #[test]
    fn keys_asked_for_after_a_batch_is_sent_go_into_the_next() {
        let rounds = Arc::<Rounds>::default();
        let (d, batcher) = doubler(&rounds, 2);
        run(&rounds, async {
            join_all((0..3).map(|k| batcher.load_one(k))).await;
            join_all((3..5).map(|k| batcher.load_one(k))).await;
        });
        assert_eq!(calls(&d), vec![vec![0, 1, 2], vec![3, 4]]);
    }

    /// The executor's shape: a list of items, each resolving two fields concurrently, one
    /// field's answer asking for the next level. Each level is one call, however many items
    /// and whenever the database answers.
    #[test]
    fn each_level_is_one_call_whatever_the_latency() {
        for _ in 0..20 {
            for n in [1, 10, 31, 100] {
                let rounds = Arc::<Rounds>::default();
                let (outer, outer_batcher) = doubler(&rounds, 3);
                let (inner, inner_batcher) = doubler(&rounds, 3);
                let (other, other_batcher) = doubler(&rounds, 3);
                let item = |k: u32| {
                    let (outer_batcher, inner_batcher, other_batcher) =
                        (&outer_batcher, &inner_batcher, &other_batcher);
                    async move {
                        let fields: FuturesUnordered<BoxFuture<'_, ()>> = [
                            async move {
                                let v = outer_batcher.load_one(2 * k).await.unwrap().unwrap();
                                inner_batcher.load_one(v).await.unwrap();
                            }
                            .boxed(),
                            async move {
                                other_batcher.load_one(k).await.unwrap();
                            }
                            .boxed(),
                        ]
                        .into_iter()
                        .collect();
                        fields.collect::<Vec<()>>().await;
                        Ok::<(), ()>(())
                    }
                };
                run(&rounds, try_join_all((0..n).map(item))).unwrap();
                for d in [&outer, &inner, &other] {
                    let calls = calls(d);
                    assert_eq!(calls.len(), 1, "{n} items: {calls:?}");
                    assert_eq!(calls[0].len(), n as usize);
                }
            }
        }
    }

    /// Resolvers that touch tokio resources (a semaphore here) spend the task's cooperative
    /// budget; once it is spent, such a resource answers `Pending` and asks to be woken only
    /// after the task's poll, which must not end the round early and split the batch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_spent_cooperative_budget_does_not_split_a_batch() {
        let permits = Arc::new(tokio::sync::Semaphore::new(1));
        let rounds = Arc::<Rounds>::default();
        let (d, batcher) = doubler(&rounds, 1);
        let batcher = Arc::new(batcher);
        let item = move |k: u32| {
            let (permits, batcher) = (permits.clone(), batcher.clone());
            async move {
                drop(permits.acquire().await.unwrap());
                batcher.load_one(k).await
            }
        };
        // On a worker of the runtime, where the budget applies and wake-ups can be deferred.
        let execution = InRounds::new(rounds, Box::pin(join_all((0..1000).map(item))));
        let answers = tokio::spawn(execution).await.unwrap();
        assert_eq!(answers.len(), 1000);
        let calls = calls(&d);
        let sizes: Vec<_> = calls.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![1000]);
    }

    /// The caller that sent the batch may be dropped (a failed sibling cancels it); the others
    /// still get their answers.
    #[test]
    fn the_sender_can_be_dropped() {
        let rounds = Arc::<Rounds>::default();
        let (d, batcher) = doubler(&rounds, 5);
        let mut cx = Context::from_waker(noop_waker_ref());
        let mut first = Box::pin(batcher.load_one(2));
        let mut second = Box::pin(batcher.load_one(4));
        assert!(first.as_mut().poll(&mut cx).is_pending());
        assert!(second.as_mut().poll(&mut cx).is_pending());
        assert!(rounds.end());
        // The first sends the batch, and is dropped while the fetch is pending.
        assert!(first.as_mut().poll(&mut cx).is_pending());
        drop(first);
        assert_eq!(run(&rounds, second), Ok(Some(8)));
        assert_eq!(calls(&d), vec![vec![2, 4]]);
    }

    #[test]
    fn nothing_is_cached() {
        let rounds = Arc::<Rounds>::default();
        let (d, batcher) = doubler(&rounds, 0);
        run(&rounds, async {
            for _ in 0..3 {
                assert_eq!(batcher.load_one(2).await, Ok(Some(4)));
            }
        });
        assert_eq!(calls(&d).len(), 3);
    }

    /// A stream (a subscription) runs in rounds too: each answer's keys are one batch.
    #[test]
    fn streams_run_in_rounds() {
        let rounds = Arc::<Rounds>::default();
        let (d, batcher) = doubler(&rounds, 2);
        let batcher = &batcher;
        let answers = futures::stream::iter(0..3u32)
            .then(|i| async move { join_all((0..4).map(|k| batcher.load_one(10 * i + k))).await })
            .boxed();
        let answers: Vec<_> = block_on(InRounds::new(rounds.clone(), answers).collect());
        assert_eq!(answers.len(), 3);
        assert_eq!(
            calls(&d),
            vec![vec![0, 1, 2, 3], vec![10, 11, 12, 13], vec![20, 21, 22, 23]]
        );
    }
}
