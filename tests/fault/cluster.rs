//! Rampart processes of the built binary on the suite's backends, and what the suite does with
//! them as a client: upload reports, follow scans over Server-Sent Events, keep asking while a
//! backend is broken and record every answer.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart::ingest::synthetic::{sarif, SyntheticResult};
use serde_json::{json, Value};
use tempfile::TempDir;
use uuid::Uuid;

use crate::services::{free_port, Postgres, Redis, S3};

pub const ADMIN_EMAIL: &str = "admin@fault.test";
pub const ADMIN_PASSWORD: &str = "fault-suite-password";
pub const BUCKET: &str = "reports";

/// Every client request gives up after this: a wait longer than it is a failure of the suite.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

/// The environment every process of one deployment shares.
pub struct Deployment {
    pub database_url: String,
    pub redis_url: String,
    pub s3_endpoint: String,
    pub s3_access_key: String,
    pub s3_secret_key: String,
    jwt_secret: String,
    logs: TempDir,
}

impl Deployment {
    pub fn new(pg: &Postgres, database: &str, redis: &Redis, s3: &S3) -> Self {
        s3.create_bucket(BUCKET);
        Self {
            database_url: pg.url(database),
            redis_url: redis.url(),
            s3_endpoint: s3.endpoint(),
            s3_access_key: s3.access_key.clone(),
            s3_secret_key: s3.secret_key.clone(),
            jwt_secret: format!("fault-suite-secret-{}", Uuid::new_v4().simple()),
            logs: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Starts a process of the built binary with `role` (`api` or `worker`).
    pub fn spawn(&self, role: &str) -> Process {
        let port = free_port();
        let data = tempfile::tempdir().expect("temp dir");
        let log = self.logs.path().join(format!("{role}-{port}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RAMPART_ROLE", role)
            .env("RAMPART_BIND", format!("127.0.0.1:{port}"))
            .env("RAMPART_DATA_DIR", data.path())
            .env("DATABASE_URL", &self.database_url)
            .env("REDIS_URL", &self.redis_url)
            .env("RAMPART_S3_BUCKET", BUCKET)
            .env("RAMPART_S3_ENDPOINT", &self.s3_endpoint)
            .env("AWS_ACCESS_KEY_ID", &self.s3_access_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.s3_secret_key)
            .env("RAMPART_JWT_SECRET", &self.jwt_secret)
            .env("RAMPART_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("RAMPART_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("RAMPART_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            // Short enough that a killed worker's job is taken over within the test.
            .env("RAMPART_JOB_LEASE_SECS", "4")
            .env("RAMPART_JOB_RETRY_BASE_SECS", "1")
            .env("RAMPART_JOB_RETRY_MAX_DELAY_SECS", "4")
            .env("RAMPART_S3_READ_TIMEOUT_MS", "3000")
            .env("RAMPART_S3_ATTEMPT_TIMEOUT_MS", "5000")
            .env("RAMPART_S3_OPERATION_TIMEOUT_MS", "8000")
            .env("RAMPART_STORE_SWEEP_GRACE_SECS", "0")
            .env("RAMPART_STORE_SWEEP_INTERVAL_SECS", "0")
            .env("RAMPART_RATE_LIMIT_PER_MINUTE", "100000")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("the rampart binary");
        Process {
            child: Some(child),
            port,
            log,
            _data: data,
        }
    }
}

/// One running Rampart process; killed when dropped.
pub struct Process {
    child: Option<Child>,
    pub port: u16,
    pub log: PathBuf,
    _data: TempDir,
}

impl Process {
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until `/health` answers, or the process exits (then its log is the panic message).
    pub async fn ready(&mut self, http: &reqwest::Client) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("exited with {status}: {}", self.log_text()));
                }
            }
            if let Ok(res) = http.get(format!("{}/health", self.base())).send().await {
                if res.status().is_success() {
                    return Ok(());
                }
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(format!("not ready after 60 s: {}", self.log_text()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no shutdown, no lease handed back.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A client of the deployment, signed in as its first administrator.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub token: String,
}

/// A report of `results` distinct findings (numbered from `first`).
pub fn report(first: u64, results: u64) -> Vec<u8> {
    sarif(
        "semgrep",
        (first..first + results).map(SyntheticResult::numbered),
    )
}

impl Client {
    pub async fn sign_in(http: &reqwest::Client, api: &Process) -> Self {
        let query =
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";
        let res: Value = http
            .post(format!("{}/graphql", api.base()))
            .json(&json!({"query": query, "variables": {"e": ADMIN_EMAIL, "p": ADMIN_PASSWORD}}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("login answer");
        Self {
            http: http.clone(),
            token: res["data"]["login"]["token"]
                .as_str()
                .unwrap_or_else(|| panic!("login failed: {res}"))
                .to_string(),
        }
    }

    /// Uploads `body` as a report of target `target`; the scan id, or the status of a refusal.
    pub async fn upload(&self, api: &Process, target: &str, body: Vec<u8>) -> Result<Uuid, u16> {
        let res = self
            .http
            .post(format!("{}/api/v1/ingest?target={target}", api.base()))
            .bearer_auth(&self.token)
            .body(body)
            .send()
            .await
            .map_err(|_| 0u16)?;
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        match body["data"]["id"].as_str() {
            Some(id) if status == 202 || status == 200 => Ok(id.parse().expect("scan id")),
            _ => Err(status),
        }
    }

    /// A scan as GraphQL shows it, when the request succeeds.
    pub async fn scan(&self, api: &Process, id: Uuid) -> Option<Value> {
        let query =
            "query($id: UUID!) { scan(id: $id) { id status error findingsNew counts { total } } }";
        let res = self
            .http
            .post(format!("{}/graphql", api.base()))
            .bearer_auth(&self.token)
            .json(&json!({"query": query, "variables": {"id": id}}))
            .send()
            .await
            .ok()?;
        let body: Value = res.json().await.ok()?;
        body["data"]["scan"]
            .as_object()
            .map(|_| body["data"]["scan"].clone())
    }

    /// Waits until every scan has ended; the scans as they ended.
    pub async fn wait_ended(&self, api: &Process, ids: &[Uuid], within: Duration) -> Vec<Value> {
        let started = Instant::now();
        let mut ended = Vec::new();
        for id in ids {
            loop {
                if let Some(scan) = self.scan(api, *id).await {
                    if ["COMPLETE", "FAILED", "CANCELLED"]
                        .contains(&scan["status"].as_str().unwrap_or(""))
                    {
                        ended.push(scan);
                        break;
                    }
                }
                assert!(
                    started.elapsed() < within,
                    "scan {id} did not end within {within:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        ended
    }

    /// Follows a scan over Server-Sent Events until its `done` event; the last status seen.
    pub fn follow(
        &self,
        api: &Process,
        id: Uuid,
    ) -> tokio::task::JoinHandle<Result<String, String>> {
        let (http, token, url) = (
            self.http.clone(),
            self.token.clone(),
            format!("{}/api/v1/scans/{id}/events", api.base()),
        );
        tokio::spawn(async move {
            let res = http
                .get(url)
                .bearer_auth(token)
                .timeout(Duration::from_secs(600))
                .send()
                .await
                .map_err(|e| format!("subscribing: {e}"))?;
            if !res.status().is_success() {
                return Err(format!("subscribing: {}", res.status()));
            }
            let text = res.text().await.map_err(|e| format!("stream cut: {e}"))?;
            let mut last_status = None;
            let mut done = false;
            for block in text.split("\n\n") {
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim().to_string())
                };
                if let Some(data) =
                    field("data:").and_then(|d| serde_json::from_str::<Value>(&d).ok())
                {
                    if let Some(status) = data["status"].as_str() {
                        last_status = Some(status.to_string());
                    }
                }
                done |= field("event:").as_deref() == Some("done");
            }
            match (done, last_status) {
                (true, Some(status)) => Ok(status),
                (_, status) => Err(format!(
                    "the stream ended without `done` (last status {status:?})"
                )),
            }
        })
    }
}

/// What the probes saw while a fault lasted.
#[derive(Default, Debug)]
pub struct Answers {
    /// (status, seconds since the fault began, latency) of every answer; status 0: no answer
    /// within [`CLIENT_TIMEOUT`] or the connection failed.
    pub seen: Vec<(u16, f64, f64)>,
}

impl Answers {
    pub fn count(&self, pred: impl Fn(u16) -> bool) -> usize {
        self.seen.iter().filter(|(s, _, _)| pred(*s)).count()
    }

    /// Seconds from the start until the last answer that was not a success.
    pub fn last_failure(&self) -> f64 {
        self.seen
            .iter()
            .filter(|(s, _, _)| !(200..300).contains(s))
            .map(|(_, at, _)| *at)
            .fold(0.0, f64::max)
    }

    pub fn slowest(&self) -> f64 {
        self.seen.iter().map(|(_, _, l)| *l).fold(0.0, f64::max)
    }
}

/// Asks every API process a REST and a GraphQL question every 200 ms until stopped.
pub struct Probe {
    answers: Arc<Mutex<Answers>>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Probe {
    pub fn start(client: &Client, apis: &[&Process]) -> Self {
        let answers = Arc::new(Mutex::new(Answers::default()));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let bases: Vec<String> = apis.iter().map(|p| p.base()).collect();
        let (client, seen) = (client.clone(), answers.clone());
        let started = Instant::now();
        let task = tokio::spawn(async move {
            loop {
                for base in &bases {
                    let rest = client
                        .http
                        .get(format!("{base}/api/v1/scans"))
                        .bearer_auth(&client.token);
                    let graphql = client
                        .http
                        .post(format!("{base}/graphql"))
                        .bearer_auth(&client.token)
                        .json(&json!({"query": "{ scans(pageSize: 5) { totalCount } }"}));
                    for request in [rest, graphql] {
                        let asked = Instant::now();
                        let status = match request.timeout(CLIENT_TIMEOUT).send().await {
                            Ok(res) => res.status().as_u16(),
                            Err(_) => 0,
                        };
                        seen.lock().unwrap().seen.push((
                            status,
                            started.elapsed().as_secs_f64(),
                            asked.elapsed().as_secs_f64(),
                        ));
                    }
                }
                tokio::select! {
                    _ = stopped.changed() => return,
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        });
        Self {
            answers,
            stop,
            task,
        }
    }

    pub async fn stop(self) -> Answers {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        std::mem::take(&mut *self.answers.lock().unwrap())
    }
}
