//! Live fan-out benchmark: N concurrent `graphql-transport-ws` subscribers to one scan's
//! `scanProgress`, held by one server process, while a worker in a second process drives the
//! scan. Reports connect time, delivery latency, events delivered vs expected and the server's
//! memory per subscriber.
//!
//! `cargo bench --bench fanout -- 1000 10000` (subscriber counts; default 1000 and 10000).
//! Options: `--results K` findings in the driven report (default 200000); `--worker-nice N`
//! runs the worker process at niceness N (on a machine this small the worker's parsing and
//! writing otherwise competes with the API process for the same two cores, which a deployment
//! with workers on other hosts would not see). Needs Redis
//! (`RAMPART_BENCH_REDIS_URL`, default `redis://127.0.0.1:6379`): the subscribers' server runs
//! with `--role api` so the scan waits, queued, until every subscriber is in; the worker process
//! then processes it and its events reach the API process through Redis. The server binary is
//! the `rampart` of the same profile (`RAMPART_BIN` overrides it). Both use SQLite in a temp dir.
//!
//! Latency is measured against the publish time: the bench subscribes to the scan's Redis
//! channel itself (on a thread of its own) and notes when each event is published; a
//! subscriber's latency for that event is its receive time minus that. It is also reported
//! against the event's own `at` timestamp, which adds the worker's progress write before the
//! publish (and for the terminal event, the final transaction).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use rampart::ingest::synthetic::{write_sarif, SyntheticResult};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

const ADMIN_EMAIL: &str = "bench@rampart.local";
const ADMIN_PASSWORD: &str = "bench-password-1";
/// Subscribers connecting at once (the listen backlog is 1024).
const CONNECT_CONCURRENCY: usize = 256;
const SUBSCRIPTION: &str = "subscription($id: UUID!) { scanProgress(scanId: $id) { scanId status phase percent processed findingsNew findingsFixed at } }";

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as i64
}

/// The event's own timestamp, in microseconds; the key that matches an event across
/// subscribers and the Redis observer (GraphQL and serde spell it differently).
fn at_us(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_micros())
}

/// The string value that follows `key` (which ends with the opening quote).
fn field_after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let start = text.find(key)? + key.len();
    let len = text[start..].find('"')?;
    Some(&text[start..start + len])
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time (user + system) a process has used, in seconds.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces): utime and stime are 12th/13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: Vec<f64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks.iter().sum::<f64>() / per_second
}

/// Allows as many open files as the hard limit (10,000 sockets need more than the usual 1024).
fn raise_open_file_limit() -> u64 {
    // SAFETY: plain libc calls on a local struct.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
        limit.rlim_cur
    }
}

fn server_binary() -> std::path::PathBuf {
    std::env::var_os("RAMPART_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_rampart").into())
}

/// A server process we started; killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// `nice`: the process's scheduling niceness (0 = as the bench's own).
    fn start(
        data_dir: &std::path::Path,
        redis_url: &str,
        prefix: &str,
        role: &str,
        nice: i32,
    ) -> Self {
        let mut command = Command::new(server_binary());
        if nice != 0 {
            use std::os::unix::process::CommandExt;
            // SAFETY: setpriority is async-signal-safe; it touches only the child being started.
            unsafe {
                command.pre_exec(move || {
                    libc::setpriority(libc::PRIO_PROCESS, 0, nice);
                    Ok(())
                });
            }
        }
        let mut child = command
            .args(["serve", "--bind", "127.0.0.1:0", "--role", role])
            .env_remove("DATABASE_URL")
            .env("RAMPART_DATA_DIR", data_dir)
            .env("REDIS_URL", redis_url)
            .env("RAMPART_REDIS_PREFIX", prefix)
            .env("RAMPART_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("RAMPART_ADMIN_PASSWORD", ADMIN_PASSWORD)
            // The bench's own traffic must not be rate limited.
            .env("RAMPART_RATE_LIMIT_PER_MINUTE", "100000000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the rampart binary (build it in this profile or set RAMPART_BIN)");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let base = loop {
            line.clear();
            let read = stdout.read_line(&mut line).expect("server output");
            assert!(read > 0, "server exited before listening");
            if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
                break url.to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in stdout.lines() {});
        Self { child, base }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn graphql(
    http: &reqwest::Client,
    base: &str,
    auth: Option<&str>,
    query: &str,
    variables: Value,
) -> Value {
    let mut request = http
        .post(format!("{base}/graphql"))
        .json(&json!({"query": query, "variables": variables}));
    if let Some(token) = auth {
        request = request.bearer_auth(token);
    }
    let answer: Value = request
        .send()
        .await
        .expect("graphql")
        .json()
        .await
        .expect("json");
    assert!(answer["errors"].is_null(), "{answer}");
    answer["data"].clone()
}

/// What one subscriber saw.
#[derive(Default)]
struct Received {
    /// Connect, `connection_init`, subscribe, first event.
    connect: Duration,
    /// (receive time µs, event `at` µs) of every event after the first.
    events: Vec<(i64, i64)>,
    completed: bool,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn subscribe(ws_url: &str, key: &str, scan_id: &str) -> Result<(Ws, Duration), String> {
    let started = Instant::now();
    let mut request = ws_url.into_client_request().map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    // A small read buffer: the 128 KiB default is zeroed on every read, which would spend the
    // client's (and so the shared machine's) CPU on memset.
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .map_err(|e| e.to_string())?;
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(
        json!({"type": "connection_init", "payload": {"apiKey": key}}),
    ))
    .await
    .map_err(|e| e.to_string())?;
    ws.send(send(json!({"id": "1", "type": "subscribe",
        "payload": {"query": SUBSCRIPTION, "variables": {"id": scan_id}}})))
        .await
        .map_err(|e| e.to_string())?;
    // The acknowledgement, then the scan's current state.
    loop {
        let Some(Ok(Message::Text(text))) = ws.next().await else {
            return Err("closed while subscribing".into());
        };
        let message: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        match message["type"].as_str() {
            Some("next") => return Ok((ws, started.elapsed())),
            Some("connection_ack" | "ping" | "pong") => continue,
            _ => return Err(format!("unexpected {text}")),
        }
    }
}

/// Reads events until the subscription completes; notes each one's receive time first thing.
async fn listen(mut ws: Ws, mut received: Received) -> Received {
    while let Some(Ok(message)) = ws.next().await {
        let at = now_us();
        let Message::Text(text) = message else {
            continue;
        };
        let text = text.as_str();
        if text.starts_with(r#"{"type":"ping""#) {
            let _ = ws.send(Message::Text(r#"{"type":"pong"}"#.into())).await;
            continue;
        }
        if text.contains(r#""type":"complete""#) {
            received.completed = true;
            break;
        }
        // Only the timestamp is needed; a full parse per message would load the client CPU
        // (which the server shares) with 10,000 parses per event.
        if let Some(event_at) = field_after(text, r#""at":""#).and_then(at_us) {
            received.events.push((at, event_at));
        }
    }
    let _ = ws.close(None).await;
    received
}

/// Notes when each event of the scan is published, from a thread of its own so a busy client
/// runtime does not delay it. Ends after the terminal event.
fn observe_publishes(
    redis_url: String,
    channel: String,
    ready: std::sync::mpsc::Sender<()>,
) -> std::thread::JoinHandle<HashMap<i64, i64>> {
    std::thread::spawn(move || {
        let client = redis::Client::open(redis_url).expect("redis url");
        let mut conn = client.get_connection().expect("redis connection");
        let mut pubsub = conn.as_pubsub();
        pubsub.subscribe(&channel).expect("subscribe");
        ready.send(()).expect("bench waiting");
        let mut published = HashMap::new();
        loop {
            let message = pubsub.get_message().expect("redis message");
            let seen = now_us();
            let payload: String = message.get_payload().expect("payload");
            let event: Value = serde_json::from_str(&payload).expect("event json");
            if let Some(at) = event["at"].as_str().and_then(at_us) {
                published.insert(at, seen);
            }
            if matches!(
                event["status"].as_str(),
                Some("complete" | "failed" | "cancelled")
            ) {
                return published;
            }
        }
    })
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank] as f64 / 1000.0
}

struct Row {
    subscribers: usize,
    connected: usize,
    connect_total: Duration,
    connect_p50: f64,
    connect_p99: f64,
    events_published: usize,
    delivered: usize,
    expected: usize,
    completed: usize,
    publish_p50: f64,
    publish_p99: f64,
    publish_max: f64,
    at_p50: f64,
    at_p99: f64,
    spread_p50: f64,
    spread_max: f64,
    rss_before_mib: f64,
    rss_after_mib: f64,
    per_subscriber_kib: f64,
    rss_peak_mib: f64,
    scan_seconds: f64,
    server_cpu: f64,
    client_cpu: f64,
}

async fn round(subscribers: usize, results: u64, worker_nice: i32, redis_url: &str) -> Row {
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = format!("fanout{}", uuid::Uuid::new_v4().simple());
    let api = Server::start(dir.path(), redis_url, &prefix, "api", 0);
    let http = reqwest::Client::new();
    let token = graphql(
        &http,
        &api.base,
        None,
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        json!({"e": ADMIN_EMAIL, "p": ADMIN_PASSWORD}),
    )
    .await["login"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    let key = graphql(
        &http,
        &api.base,
        Some(&token),
        "mutation { createApiKey(input: {label: \"fanout bench\", scopes: WRITE}) { key } }",
        json!({}),
    )
    .await["createApiKey"]["key"]
        .as_str()
        .expect("key")
        .to_string();

    let report = dir.path().join("report.sarif");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&report).expect("report file"));
    write_sarif(
        &mut file,
        "semgrep",
        (0..results).map(SyntheticResult::numbered),
    )
    .expect("report");
    std::io::Write::flush(&mut file).expect("report written");
    drop(file);
    let accepted: Value = http
        .post(format!(
            "{}/api/v1/ingest?target=fanout&target_kind=repository",
            api.base
        ))
        .header("x-api-key", &key)
        .body(tokio::fs::read(&report).await.expect("report"))
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("upload answer");
    let scan_id = accepted["data"]["id"]
        .as_str()
        .expect("scan id")
        .to_string();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_kib(api.pid());

    // Subscribers, CONNECT_CONCURRENCY at a time; each then listens on its own task.
    let ws_url = format!("{}/graphql/ws", api.base.replacen("http://", "ws://", 1));
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let connecting = Instant::now();
    let mut pending = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        let (gate, ws_url, key, scan_id) =
            (gate.clone(), ws_url.clone(), key.clone(), scan_id.clone());
        pending.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.expect("gate");
            subscribe(&ws_url, &key, &scan_id).await
        }));
    }
    let mut listeners = Vec::with_capacity(subscribers);
    let mut failures: HashMap<String, usize> = HashMap::new();
    for task in pending {
        match task.await.expect("subscriber task") {
            Ok((ws, connect)) => listeners.push(tokio::spawn(listen(
                ws,
                Received {
                    connect,
                    ..Default::default()
                },
            ))),
            Err(err) => *failures.entry(err).or_default() += 1,
        }
    }
    let connect_total = connecting.elapsed();
    for (err, count) in &failures {
        eprintln!("  {count} subscribers failed: {err}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = rss_kib(api.pid());

    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let observer = observe_publishes(
        redis_url.to_string(),
        format!("{prefix}:events:scan:{scan_id}"),
        ready_tx,
    );
    ready_rx.recv().expect("observer subscribed");

    // Drive the scan: a worker process on the same database and object store.
    let started = Instant::now();
    let (server_cpu_before, client_cpu_before) =
        (cpu_seconds(&api.pid().to_string()), cpu_seconds("self"));
    let worker = Server::start(dir.path(), redis_url, &prefix, "worker", worker_nice);
    let api_pid = api.pid();
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(rss_after));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(api_pid), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let mut seen = Vec::with_capacity(listeners.len());
    for listener in listeners {
        seen.push(
            tokio::time::timeout(Duration::from_secs(600), listener)
                .await
                .expect("scan ends in 10 min")
                .expect("listener"),
        );
    }
    let scan_seconds = started.elapsed().as_secs_f64();
    let server_cpu = cpu_seconds(&api.pid().to_string()) - server_cpu_before;
    let client_cpu = cpu_seconds("self") - client_cpu_before;
    sampler.abort();
    drop(worker);
    let published = tokio::task::spawn_blocking(move || observer.join().expect("observer"))
        .await
        .expect("join");

    let mut connect: Vec<i64> = seen.iter().map(|r| r.connect.as_micros() as i64).collect();
    connect.sort_unstable();
    let mut vs_publish = Vec::new();
    let mut vs_at = Vec::new();
    let mut arrivals: HashMap<i64, (i64, i64)> = HashMap::new();
    let mut delivered = 0;
    for received in &seen {
        let mut distinct = HashSet::new();
        for &(got, at) in &received.events {
            let Some(&publish) = published.get(&at) else {
                continue;
            };
            if !distinct.insert(at) {
                continue;
            }
            delivered += 1;
            vs_publish.push(got - publish);
            vs_at.push(got - at);
            let spread = arrivals.entry(at).or_insert((got, got));
            spread.0 = spread.0.min(got);
            spread.1 = spread.1.max(got);
        }
    }
    vs_publish.sort_unstable();
    vs_at.sort_unstable();
    let mut spreads: Vec<i64> = arrivals
        .values()
        .map(|(first, last)| last - first)
        .collect();
    spreads.sort_unstable();
    let rss_before_mib = rss_before as f64 / 1024.0;
    let rss_after_mib = rss_after as f64 / 1024.0;
    Row {
        subscribers,
        connected: seen.len(),
        connect_total,
        connect_p50: percentile(&connect, 50.0),
        connect_p99: percentile(&connect, 99.0),
        events_published: published.len(),
        delivered,
        expected: published.len() * subscribers,
        completed: seen.iter().filter(|r| r.completed).count(),
        publish_p50: percentile(&vs_publish, 50.0),
        publish_p99: percentile(&vs_publish, 99.0),
        publish_max: percentile(&vs_publish, 100.0),
        at_p50: percentile(&vs_at, 50.0),
        at_p99: percentile(&vs_at, 99.0),
        spread_p50: percentile(&spreads, 50.0),
        spread_max: percentile(&spreads, 100.0),
        rss_before_mib,
        rss_after_mib,
        per_subscriber_kib: (rss_after.saturating_sub(rss_before)) as f64
            / subscribers.max(1) as f64,
        rss_peak_mib: peak.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0,
        scan_seconds,
        server_cpu,
        client_cpu,
    }
}

fn main() {
    let mut sizes = Vec::new();
    let mut results: u64 = 200_000;
    let mut worker_nice = 0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--results" => {
                results = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--results K")
            }
            "--worker-nice" => {
                worker_nice = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--worker-nice N")
            }
            "--bench" => {}
            other => match other.parse::<usize>() {
                Ok(n) => sizes.push(n),
                Err(_) => eprintln!("ignoring argument {other}"),
            },
        }
    }
    if sizes.is_empty() {
        sizes = vec![1_000, 10_000];
    }
    let limit = raise_open_file_limit();
    let redis_url = std::env::var("RAMPART_BENCH_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    eprintln!(
        "open-file limit {limit}; server {}; report of {results} findings; worker niceness {worker_nice}",
        server_binary().display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = Vec::new();
    for &n in &sizes {
        eprintln!("{n} subscribers ...");
        let row = runtime.block_on(round(n, results, worker_nice, &redis_url));
        eprintln!(
            "  done: {} connected, {}/{} events delivered",
            row.connected, row.delivered, row.expected
        );
        rows.push(row);
    }
    println!("| subscribers | connected | connect all (s) | connect p50 / p99 (ms) | events published | delivered / expected | completed | latency vs publish p50 / p99 / max (ms) | latency vs `at` p50 / p99 (ms) | fan-out spread p50 / max (ms) | server RSS before → after (MiB) | per subscriber (KiB) | RSS peak (MiB) | scan (s) | server / client CPU during the scan (s) | server CPU per message (µs) |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {:.2} | {:.1} / {:.1} | {} | {} / {} | {} | {:.1} / {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} → {:.1} | {:.1} | {:.1} | {:.1} | {:.1} / {:.1} | {:.1} |",
            r.subscribers, r.connected, r.connect_total.as_secs_f64(), r.connect_p50, r.connect_p99,
            r.events_published, r.delivered, r.expected, r.completed,
            r.publish_p50, r.publish_p99, r.publish_max, r.at_p50, r.at_p99,
            r.spread_p50, r.spread_max, r.rss_before_mib, r.rss_after_mib, r.per_subscriber_kib,
            r.rss_peak_mib, r.scan_seconds, r.server_cpu, r.client_cpu,
            r.server_cpu * 1e6 / r.delivered.max(1) as f64,
        );
    }
}
