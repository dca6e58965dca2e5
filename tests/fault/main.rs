//! The fault suite: two API and two worker processes of the built binary on a PostgreSQL,
//! Redis and S3 of the suite's own, with each backend broken in turn while scans run and
//! subscribers follow them. After each fault: every scan ends complete with exact counts (a
//! scan that failed for a retryable reason is retried and then completes), every subscriber
//! received its scan's terminal event, no answer was a 500 and every answer came within the
//! client's bound, and no stored report is left that no scan refers to.
//!
//! The suite starts and stops real servers and takes about a minute per fault, so it is not
//! part of the README's test command: `.ci/run` runs it after the scale-out suite with
//! `cargo test --test fault -- --ignored --test-threads=1`. Each test prints a `FAULT` line
//! with the outage window and the recovery time (docs/operations.md keeps the figures).

mod cluster;
mod services;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use uuid::Uuid;

use cluster::{report, Answers, Client, Deployment, Probe, Process, BUCKET};
use services::{Postgres, Redis, S3};

/// Results per report: enough that a scan is still running when the fault starts.
const RESULTS: u64 = 15_000;
const REPORTS: u64 = 4;

/// A deployment and its backends.
struct Stack {
    pg: Postgres,
    redis: Redis,
    s3: S3,
    deployment: Deployment,
    apis: Vec<Process>,
    workers: Vec<Process>,
    client: Client,
    http: reqwest::Client,
}

impl Stack {
    /// Backends, then two API and two worker processes, all started at once.
    async fn start() -> Self {
        let pg = Postgres::start();
        pg.create_database("rampart");
        let redis = Redis::start();
        let s3 = S3::start();
        let deployment = Deployment::new(&pg, "rampart", &redis, &s3);
        let http = reqwest::Client::builder()
            .timeout(cluster::CLIENT_TIMEOUT)
            .build()
            .unwrap();
        let mut apis = vec![deployment.spawn("api"), deployment.spawn("api")];
        let mut workers = vec![deployment.spawn("worker"), deployment.spawn("worker")];
        for process in apis.iter_mut().chain(workers.iter_mut()) {
            process.ready(&http).await.expect("process ready");
        }
        let client = Client::sign_in(&http, &apis[0]).await;
        Self {
            pg,
            redis,
            s3,
            deployment,
            apis,
            workers,
            client,
            http,
        }
    }

    /// Uploads the reports, alternating between the API processes, and has a subscriber on
    /// the other API process follow each scan.
    async fn scans_running(&self) -> Running {
        let mut scans = Vec::new();
        let mut followers = Vec::new();
        for n in 0..REPORTS {
            let (to, from) = (
                &self.apis[(n % 2) as usize],
                &self.apis[1 - (n % 2) as usize],
            );
            let id = self
                .client
                .upload(to, &format!("fault-{n}"), report(n * RESULTS, RESULTS))
                .await
                .expect("upload accepted");
            followers.push(self.client.follow(from, id));
            scans.push(id);
        }
        // The fault must hit work in progress.
        let started = Instant::now();
        loop {
            if let Some(scan) = self.client.scan(&self.apis[0], scans[0]).await {
                if scan["status"] != "QUEUED" {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no scan started"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Running { scans, followers }
    }

    fn probe(&self) -> Probe {
        Probe::start(&self.client, &[&self.apis[0], &self.apis[1]])
    }

    /// Reports in the bucket that no scan refers to.
    async fn orphans(&self) -> Vec<String> {
        let mut stored = BTreeSet::new();
        collect_keys(&self.s3.root().join(BUCKET), "", &mut stored);
        let pool = sea_orm::sqlx::PgPool::connect(&self.deployment.database_url)
            .await
            .expect("database");
        let referred: Vec<(Option<String>,)> = sea_orm::sqlx::query_as("SELECT raw_key FROM scan")
            .fetch_all(&pool)
            .await
            .expect("raw keys");
        let referred: BTreeSet<String> = referred.into_iter().filter_map(|(k,)| k).collect();
        stored
            .into_iter()
            .filter(|key| key.starts_with("reports/") && !referred.contains(key))
            .collect()
    }

    async fn retry(&self, id: Uuid) {
        let res = self
            .http
            .post(format!("{}/api/v1/scans/{id}/retry", self.apis[0].base()))
            .bearer_auth(&self.client.token)
            .send()
            .await
            .expect("retry");
        assert_eq!(res.status(), 202, "retrying {id}");
    }
}

/// Object keys under `dir` (s3s-fs keeps an object as a file at its key).
fn collect_keys(dir: &Path, prefix: &str, keys: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let key = format!("{prefix}{name}");
        if entry.path().is_dir() {
            collect_keys(&entry.path(), &format!("{key}/"), keys);
        } else {
            keys.insert(key);
        }
    }
}

struct Running {
    scans: Vec<Uuid>,
    followers: Vec<tokio::task::JoinHandle<Result<String, String>>>,
}

/// Checks everything the suite promises after a fault and prints its `FAULT` line.
async fn assert_recovered(
    name: &str,
    stack: &Stack,
    running: Running,
    outage: f64,
    answers: Answers,
) {
    let ended = stack
        .client
        .wait_ended(&stack.apis[0], &running.scans, Duration::from_secs(300))
        .await;
    let mut retried = 0;
    for scan in &ended {
        let id: Uuid = scan["id"].as_str().unwrap().parse().unwrap();
        let scan: Value = if scan["status"] == "FAILED" {
            // Failed for good only after its retries: an admin can run it again.
            retried += 1;
            stack.retry(id).await;
            stack
                .client
                .wait_ended(&stack.apis[0], &[id], Duration::from_secs(300))
                .await
                .remove(0)
        } else {
            scan.clone()
        };
        assert_eq!(scan["status"], "COMPLETE", "{name}: {scan}");
        assert_eq!(scan["counts"]["total"], RESULTS, "{name}: {scan}");
        assert_eq!(scan["findingsNew"], RESULTS, "{name}: {scan}");
    }
    let mut followed = 0;
    for follower in running.followers {
        let ended = tokio::time::timeout(Duration::from_secs(60), follower)
            .await
            .unwrap_or_else(|_| {
                panic!("{name}: a subscriber was still waiting a minute after its scan ended")
            })
            .unwrap();
        let status = ended.unwrap_or_else(|e| panic!("{name}: {e}"));
        // SSE payloads are snake_case: `complete`, `failed`.
        assert!(
            ["complete", "failed"].contains(&status.as_str()),
            "{name}: {status}"
        );
        followed += 1;
    }
    let errors = answers.count(|s| s >= 500 && s != 503);
    let unanswered = answers.count(|s| s == 0);
    assert_eq!(
        errors, 0,
        "{name}: answers other than 503 among the failures: {:?}",
        answers.seen
    );
    assert_eq!(
        unanswered,
        0,
        "{name}: requests without an answer within {:?}",
        cluster::CLIENT_TIMEOUT
    );
    let orphans = stack.orphans().await;
    assert!(
        orphans.is_empty(),
        "{name}: stored reports no scan refers to: {orphans:?}"
    );
    println!(
        "FAULT {name}: outage {outage:.1} s; last failed answer {:.1} s after the fault began \
         (recovered {:.1} s after the backend was back); answers {} ok / {} 503 / 0 other, \
         slowest {:.2} s; {} scans complete ({retried} after an admin's retry); {followed} \
         subscribers ended",
        answers.last_failure(),
        (answers.last_failure() - outage).max(0.0),
        answers.count(|s| (200..300).contains(&s)),
        answers.count(|s| s == 503),
        answers.slowest(),
        ended.len(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: starts its own PostgreSQL, Redis and s3s-fs and breaks them; run by .ci/run (cargo test --test fault -- --ignored)"]
async fn postgres_restarts_while_scans_run() {
    let stack = Stack::start().await;
    let running = stack.scans_running().await;
    let probe = stack.probe();
    let began = Instant::now();
    stack.pg.down();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stack.pg.up();
    let outage = began.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let answers = probe.stop().await;
    assert_recovered("postgres restart", &stack, running, outage, answers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: starts its own PostgreSQL, Redis and s3s-fs and breaks them; run by .ci/run (cargo test --test fault -- --ignored)"]
async fn redis_restarts_while_subscribers_follow() {
    let mut stack = Stack::start().await;
    let running = stack.scans_running().await;
    let probe = stack.probe();
    let began = Instant::now();
    stack.redis.down();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stack.redis.up();
    let outage = began.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let answers = probe.stop().await;
    assert_recovered("redis restart", &stack, running, outage, answers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: starts its own PostgreSQL, Redis and s3s-fs and breaks them; run by .ci/run (cargo test --test fault -- --ignored)"]
async fn s3_stops_then_hangs() {
    let mut stack = Stack::start().await;
    let running = stack.scans_running().await;
    let probe = stack.probe();
    let began = Instant::now();
    stack.s3.down();
    // An upload while S3 is down is answered (503), not held.
    let asked = Instant::now();
    let refused = stack
        .client
        .upload(&stack.apis[0], "fault-during", report(0, 10))
        .await;
    assert_eq!(refused, Err(503), "an upload while S3 is down");
    let down_answer = asked.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stack.s3.up();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stack.s3.freeze();
    let asked = Instant::now();
    let refused = stack
        .client
        .upload(&stack.apis[1], "fault-during", report(0, 10))
        .await;
    let hung_answer = asked.elapsed().as_secs_f64();
    assert_eq!(refused, Err(503), "an upload while S3 hangs");
    tokio::time::sleep(Duration::from_secs(2)).await;
    stack.s3.thaw();
    let outage = began.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let answers = probe.stop().await;
    println!(
        "FAULT s3: an upload was refused in {down_answer:.1} s while S3 was down and in \
         {hung_answer:.1} s while it hung"
    );
    assert_recovered("s3 stop, then hang", &stack, running, outage, answers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: starts its own PostgreSQL, Redis and s3s-fs and breaks them; run by .ci/run (cargo test --test fault -- --ignored)"]
async fn a_worker_is_killed_mid_scan() {
    let mut stack = Stack::start().await;
    let running = stack.scans_running().await;
    let probe = stack.probe();
    let began = Instant::now();
    stack.workers[0].kill();
    let outage = began.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let answers = probe.stop().await;
    assert_recovered("worker SIGKILL", &stack, running, outage, answers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: starts its own PostgreSQL, Redis and s3s-fs and breaks them; run by .ci/run (cargo test --test fault -- --ignored)"]
async fn four_replicas_start_together_on_an_empty_database() {
    let pg = Postgres::start();
    pg.create_database("empty");
    let redis = Redis::start();
    let s3 = S3::start();
    let deployment = Deployment::new(&pg, "empty", &redis, &s3);
    let http = reqwest::Client::new();
    let began = Instant::now();
    let mut processes: Vec<Process> = ["api", "api", "worker", "worker"]
        .iter()
        .map(|role| deployment.spawn(role))
        .collect();
    for process in &mut processes {
        process.ready(&http).await.expect("every replica starts");
    }
    let all_up = began.elapsed().as_secs_f64();
    for api in &processes[..2] {
        Client::sign_in(&http, api).await;
    }
    let pool = sea_orm::sqlx::PgPool::connect(&deployment.database_url)
        .await
        .unwrap();
    let (orgs, users): (i64, i64) = sea_orm::sqlx::query_as(
        "SELECT (SELECT count(*) FROM organization), (SELECT count(*) FROM \"user\")",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((orgs, users), (1, 1));
    println!("FAULT replicas: 4 processes started together on an empty database, all up in {all_up:.1} s");
}
