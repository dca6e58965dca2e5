//! Fixed-window rate limits: in this process by default, in Redis when configured so several
//! server processes share one budget. Redis trouble never fails a request, nor lifts the
//! limits: while Redis cannot be reached each process counts on its own (a budget per process
//! instead of per deployment), and says so with `RateLimit-Scope: process`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// The outcome of counting one request against a budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window resets.
    pub reset_secs: u64,
    /// Counted by this process alone, because the shared counter (Redis) could not be reached.
    pub process_only: bool,
}

impl Decision {
    /// Reports this budget in `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`
    /// (replacing any budget reported before).
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert("ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(self.reset_secs));
        if self.process_only {
            headers.insert("ratelimit-scope", HeaderValue::from_static("process"));
        } else {
            headers.remove("ratelimit-scope");
        }
    }
}

type Counts = Mutex<HashMap<String, (u64, u32)>>;

enum Counter {
    Memory(Counts),
    /// Keys are `<prefix>:rl:<bucket>:<window>`; the counts are this process's own, used while
    /// Redis cannot be reached.
    Redis(ConnectionManager, String, Counts),
}

/// Counts hits per bucket (e.g. `login:<ip>`, `key:<id>`) in fixed windows.
pub struct RateLimiter {
    counter: Counter,
}

const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

impl RateLimiter {
    pub fn in_memory() -> Self {
        Self {
            counter: Counter::Memory(Mutex::new(HashMap::new())),
        }
    }

    /// A limiter backed by Redis; connects lazily, so a Redis outage at start-up is survivable.
    ///
    /// # Errors
    /// When the URL is malformed.
    pub fn redis(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(0);
        let manager = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            counter: Counter::Redis(manager, format!("{prefix}:rl:"), Mutex::default()),
        })
    }

    /// Counts one hit on `bucket` against `limit` per `window_secs`.
    pub async fn hit(&self, bucket: &str, limit: u32, window_secs: u64) -> Decision {
        let (window, reset_secs) = window_of(window_secs);
        let (count, process_only) = match &self.counter {
            Counter::Memory(map) => (count_in_memory(map, bucket, window), false),
            Counter::Redis(manager, prefix, local) => {
                let key = format!("{prefix}{bucket}:{window}");
                match count_in_redis(manager, key, window_secs).await {
                    Some(count) => (count, false),
                    None => (count_in_memory(local, bucket, window), true),
                }
            }
        };
        decide(count, limit, reset_secs, process_only)
    }

    /// Whether one more hit on `bucket` would still be within `limit`, without counting it
    /// (for budgets that only failures spend, such as an account's failed logins).
    pub async fn peek(&self, bucket: &str, limit: u32, window_secs: u64) -> Decision {
        let (window, reset_secs) = window_of(window_secs);
        let (count, process_only) = match &self.counter {
            Counter::Memory(map) => (read_in_memory(map, bucket, window), false),
            Counter::Redis(manager, prefix, local) => {
                let key = format!("{prefix}{bucket}:{window}");
                match read_in_redis(manager, key).await {
                    Some(count) => (count, false),
                    None => (read_in_memory(local, bucket, window), true),
                }
            }
        };
        decide(count.saturating_add(1), limit, reset_secs, process_only)
    }
}

/// The current fixed window of `window_secs` and the seconds until it ends.
fn window_of(window_secs: u64) -> (u64, u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let window = now / window_secs;
    (window, (window + 1) * window_secs - now)
}

fn decide(count: u32, limit: u32, reset_secs: u64, process_only: bool) -> Decision {
    Decision {
        allowed: count <= limit,
        limit,
        remaining: limit.saturating_sub(count),
        reset_secs,
        process_only,
    }
}

fn read_in_memory(map: &Counts, bucket: &str, window: u64) -> u32 {
    let map = map.lock().expect("rate limit lock");
    map.get(bucket)
        .filter(|(w, _)| *w == window)
        .map_or(0, |(_, n)| *n)
}

fn count_in_memory(map: &Counts, bucket: &str, window: u64) -> u32 {
    let mut map = map.lock().expect("rate limit lock");
    if map.len() > 50_000 {
        map.retain(|_, (w, _)| *w >= window);
    }
    let entry = map.entry(bucket.to_string()).or_insert((window, 0));
    if entry.0 != window {
        *entry = (window, 0);
    }
    entry.1 = entry.1.saturating_add(1);
    entry.1
}

async fn read_in_redis(manager: &ConnectionManager, key: String) -> Option<u32> {
    let mut conn = manager.clone();
    let get = redis::cmd("GET").arg(&key).to_owned();
    match tokio::time::timeout(REDIS_TIMEOUT * 2, get.query_async::<Option<u32>>(&mut conn)).await {
        Ok(Ok(count)) => Some(count.unwrap_or(0)),
        Ok(Err(err)) => {
            tracing::warn!(%err, "shared rate limit counter unavailable; counting in this process");
            None
        }
        Err(_) => {
            tracing::warn!("shared rate limit counter timed out; counting in this process");
            None
        }
    }
}

async fn count_in_redis(manager: &ConnectionManager, key: String, window_secs: u64) -> Option<u32> {
    let mut conn = manager.clone();
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("INCR")
        .arg(&key)
        .cmd("EXPIRE")
        .arg(&key)
        .arg(window_secs + 1)
        .ignore();
    let counted = tokio::time::timeout(REDIS_TIMEOUT * 2, pipe.query_async::<(u32,)>(&mut conn));
    match counted.await {
        Ok(Ok((count,))) => Some(count),
        Ok(Err(err)) => {
            tracing::warn!(%err, "shared rate limit counter unavailable; counting in this process");
            None
        }
        Err(_) => {
            tracing::warn!("shared rate limit counter timed out; counting in this process");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn budget_runs_out_then_refuses() {
        let limiter = RateLimiter::in_memory();
        for n in 1..=3 {
            let d = limiter.hit("b", 3, 60).await;
            assert!(d.allowed);
            assert_eq!(d.remaining, 3 - n);
        }
        let refused = limiter.hit("b", 3, 60).await;
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert!(refused.reset_secs <= 60);
        assert!(limiter.hit("other", 3, 60).await.allowed);
    }

    #[tokio::test]
    async fn peeking_spends_nothing() {
        let limiter = RateLimiter::in_memory();
        assert!(limiter.peek("f", 2, 60).await.allowed);
        limiter.hit("f", 2, 60).await;
        assert!(limiter.peek("f", 2, 60).await.allowed);
        assert!(limiter.peek("f", 2, 60).await.allowed);
        limiter.hit("f", 2, 60).await;
        let locked = limiter.peek("f", 2, 60).await;
        assert!(!locked.allowed);
        assert_eq!(locked.remaining, 0);
    }

    #[tokio::test]
    async fn unreachable_redis_keeps_the_limits_in_this_process_and_says_so() {
        let limiter = RateLimiter::redis("redis://127.0.0.1:1", "t").unwrap();
        let first = limiter.hit("b", 2, 60).await;
        assert!(first.allowed && first.process_only);
        assert_eq!(first.remaining, 1);
        assert!(limiter.peek("b", 2, 60).await.allowed);
        assert!(limiter.hit("b", 2, 60).await.allowed);
        let refused = limiter.hit("b", 2, 60).await;
        assert!(!refused.allowed && refused.process_only);
        assert!(!limiter.peek("b", 2, 60).await.allowed);
        let mut headers = HeaderMap::new();
        refused.write_headers(&mut headers);
        assert_eq!(headers["ratelimit-scope"], "process");
        assert_eq!(headers["ratelimit-remaining"], "0");
    }
}
