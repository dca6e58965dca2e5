//! Test harness: the real app on port 0, with a fresh database (and bucket) per test on
//! whichever backends the environment names.
//!
//! With no `RAMPART_TEST_*` variables the embedded default is used (temp SQLite file, local
//! disk store, in-process bus). `.ci/run` sets them for the scale-out run:
//! `RAMPART_TEST_DATABASE_URL` (a PostgreSQL server URL; a database is created per test),
//! `RAMPART_TEST_REDIS_URL`, `RAMPART_TEST_S3_ENDPOINT` with `RAMPART_TEST_S3_ACCESS_KEY` and
//! `RAMPART_TEST_S3_SECRET_KEY` (a bucket is created per test). A configured server that
//! cannot be reached fails the test.

#![allow(dead_code)]

pub mod builders;
pub mod proxy;
pub mod smtp;
pub mod store;

use std::net::SocketAddr;
use std::time::Duration;

use rampart::config::Config;
use rampart::App;
use sea_orm::{ConnectionTrait, Database};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The first administrator every test app starts with (owner of org `default`).
pub const ADMIN_EMAIL: &str = "owner@acme.test";
pub const ADMIN_PASSWORD: &str = "correct-horse-battery";

/// Everything logged by any test app in this process, for tests that prove a secret is never
/// logged.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).to_string()
}

static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct LogSink;

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("trace")
            // A line when each span closes, so spans show even where nothing inside them logs.
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_ansi(false)
            .with_writer(|| LogSink)
            .try_init();
    });
}

/// Which backends this test run uses, from the environment.
#[derive(Clone, Debug, Default)]
pub struct TestEnv {
    pub postgres_url: Option<String>,
    pub redis_url: Option<String>,
    pub s3: Option<S3Server>,
}

#[derive(Clone, Debug)]
pub struct S3Server {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl TestEnv {
    pub fn from_env() -> Self {
        Self {
            postgres_url: var("RAMPART_TEST_DATABASE_URL"),
            redis_url: var("RAMPART_TEST_REDIS_URL"),
            s3: var("RAMPART_TEST_S3_ENDPOINT").map(|endpoint| S3Server {
                endpoint,
                access_key: var("RAMPART_TEST_S3_ACCESS_KEY").unwrap_or_else(|| "rampart".into()),
                secret_key: var("RAMPART_TEST_S3_SECRET_KEY")
                    .unwrap_or_else(|| "rampart-secret".into()),
            }),
        }
    }
}

/// A PostgreSQL database that exists for one test and is dropped after it.
pub struct TestDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl TestDatabase {
    pub async fn create(admin_url: &str) -> Self {
        let name = format!("rampart_t_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} is not reachable: {e}"));
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create test database");
        admin.close().await.ok();
        let base = admin_url
            .rsplit_once('/')
            .map(|(base, _)| base)
            .expect("database URL has a path");
        Self {
            url: format!("{base}/{name}"),
            admin_url: admin_url.to_string(),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside any runtime guarantee; use a private one on its own thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(admin) = Database::connect(&admin_url).await {
                    let _ = admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await;
                    admin.close().await.ok();
                }
            });
        })
        .join();
    }
}

/// Creates a fresh bucket on the test S3 server.
pub async fn create_bucket(s3: &S3Server) -> String {
    let bucket = format!("rt-{}", uuid::Uuid::new_v4().simple());
    let client = s3_client(s3);
    client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "S3 at {} is not usable: {}",
                s3.endpoint,
                aws_sdk_s3::error::DisplayErrorContext(e)
            )
        });
    bucket
}

pub fn s3_client(s3: &S3Server) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&s3.endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(
            &s3.access_key,
            &s3.secret_key,
            None,
            None,
            "test",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A configuration for one test: its own data directory, database and bucket.
pub struct TestConfig {
    pub config: Config,
    pub data_dir: TempDir,
    pub database: Option<TestDatabase>,
}

impl TestConfig {
    pub async fn new() -> Self {
        Self::for_env(&TestEnv::from_env()).await
    }

    pub async fn for_env(env: &TestEnv) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::with_data_dir(data_dir.path());
        config.shutdown_grace_secs = 2;
        config.admin_email = Some(ADMIN_EMAIL.into());
        config.admin_password = Some(ADMIN_PASSWORD.into());
        let database = match &env.postgres_url {
            Some(url) => Some(TestDatabase::create(url).await),
            None => None,
        };
        config.database_url = database.as_ref().map(|d| d.url.clone());
        config.redis_url = env.redis_url.clone();
        // Each test its own Redis namespace, so rate-limit budgets and events do not mix.
        config.redis_prefix = format!("t{}", uuid::Uuid::new_v4().simple());
        if let Some(s3) = &env.s3 {
            config.s3_bucket = Some(create_bucket(s3).await);
            config.s3_endpoint = Some(s3.endpoint.clone());
            config.s3_access_key_id = Some(s3.access_key.clone());
            config.s3_secret_access_key = Some(s3.secret_key.clone());
        }
        Self {
            config,
            data_dir,
            database,
        }
    }
}

/// The real server, running in this process on a random port.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub http: reqwest::Client,
    pub state: rampart::AppState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    /// Kept so the data directory and database outlive the server.
    pub test_config: Option<TestConfig>,
    /// The `--metrics-bind` address, when the configuration asks for one.
    pub metrics_addr: Option<SocketAddr>,
}

impl TestApp {
    /// Starts the app on the backends the environment names.
    pub async fn spawn() -> Self {
        let test_config = TestConfig::new().await;
        let mut app = Self::spawn_with(test_config.config.clone()).await;
        app.test_config = Some(test_config);
        app
    }

    /// Starts the app with exactly this configuration (bind is forced to port 0).
    pub async fn spawn_with(config: Config) -> Self {
        let backends = rampart::app::open_backends(&config)
            .await
            .expect("backends open");
        Self::spawn_with_backends(config, backends).await
    }

    /// Starts the app on backends the test opened itself (e.g. to observe the database).
    pub async fn spawn_with_backends(mut config: Config, backends: rampart::app::Backends) -> Self {
        capture_logs();
        config.bind = SocketAddr::from(([127, 0, 0, 1], 0));
        let app = App::build_with(config, backends).await.expect("app starts");
        let addr = app.local_addr();
        let metrics_addr = app.metrics_addr();
        let state = app.state().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            state,
            stop: Some(stop),
            task: Some(task),
            test_config: None,
            metrics_addr,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("request")
    }

    /// GET and parse the JSON body, returning the status too.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let res = self.get(path).await;
        let status = res.status().as_u16();
        (status, res.json().await.expect("JSON body"))
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server ran cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// How a test request authenticates.
#[derive(Clone, Copy, Debug)]
pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    ApiKey(&'a str),
}

/// A GraphQL answer over HTTP.
#[derive(Debug)]
pub struct Gql {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: serde_json::Value,
}

impl Gql {
    /// `data.<field>`, failing the test with the errors if there are any.
    pub fn data(&self, field: &str) -> &serde_json::Value {
        assert!(
            self.body.get("errors").is_none(),
            "unexpected errors: {}",
            self.body
        );
        &self.body["data"][field]
    }

    /// The first error's `extensions.code` (or the envelope's code for a rejected request).
    pub fn code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .or_else(|| self.body["code"].as_str())
    }
}

impl TestApp {
    pub async fn gql(&self, auth: Auth<'_>, query: &str, variables: serde_json::Value) -> Gql {
        let mut req = self
            .http
            .post(self.url("/graphql"))
            .json(&serde_json::json!({"query": query, "variables": variables}));
        req = match auth {
            Auth::None => req,
            Auth::Bearer(token) => req.bearer_auth(token),
            Auth::ApiKey(key) => req.header("x-api-key", key),
        };
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.json().await.expect("JSON body");
        Gql {
            status,
            headers,
            body,
        }
    }

    /// Signs in and returns `(access token, refresh token)`.
    pub async fn login(&self, email: &str, password: &str) -> (String, String) {
        let res = self
            .gql(
                Auth::None,
                "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token refreshToken } }",
                serde_json::json!({"e": email, "p": password}),
            )
            .await;
        let login = res.data("login");
        (
            login["token"].as_str().unwrap().to_string(),
            login["refreshToken"].as_str().unwrap().to_string(),
        )
    }

    /// Signs in as the bootstrap owner.
    pub async fn login_admin(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.0
    }

    /// Creates an organization as `token`'s user (who becomes its owner) and switches that
    /// session to it. Returns the new org's id and the switched session's token.
    pub async fn switch_to_new_org(&self, token: &str, name: &str) -> (serde_json::Value, String) {
        let org = self
            .gql(
                Auth::Bearer(token),
                "mutation($name: String!) { createOrganization(input: {name: $name}) { id } }",
                serde_json::json!({"name": name}),
            )
            .await
            .data("createOrganization")["id"]
            .clone();
        let switched = self
            .gql(
                Auth::Bearer(token),
                "mutation($o: UUID!) { switchOrganization(orgId: $o) { token } }",
                serde_json::json!({"o": org}),
            )
            .await
            .data("switchOrganization")["token"]
            .as_str()
            .expect("token")
            .to_string();
        (org, switched)
    }

    /// Creates an API key as `token`'s user and returns its plaintext.
    pub async fn create_key(&self, token: &str, scopes: &str) -> String {
        let res = self
            .gql(
                Auth::Bearer(token),
                "mutation($s: [Scope!]!) { createApiKey(input: {label: \"test\", scopes: $s}) { key } }",
                serde_json::json!({"s": scopes}),
            )
            .await;
        res.data("createApiKey")["key"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Invites a new person into `token`'s org and signs them up with the invitation (password
    /// [`MEMBER_PASSWORD`]); returns their user id.
    pub async fn add_member(&self, token: &str, email: &str, role: &str) -> String {
        let invited = self.invite(token, email, role).await;
        let res = self
            .gql(
                Auth::None,
                "mutation($t: String!) { signUpWithInvitation(input: {token: $t, password: \"member-password\"}) { member { id } } }",
                serde_json::json!({"t": invited}),
            )
            .await;
        res.data("signUpWithInvitation")["member"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Invites `email` into `token`'s org; returns the invitation token.
    pub async fn invite(&self, token: &str, email: &str, role: &str) -> String {
        let res = self
            .gql(
                Auth::Bearer(token),
                "mutation($e: String!, $r: Role!) { inviteMember(input: {email: $e, role: $r}) { token } }",
                serde_json::json!({"e": email, "r": role}),
            )
            .await;
        res.data("inviteMember")["token"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

pub const MEMBER_PASSWORD: &str = "member-password";

/// An answer of a plain REST call.
#[derive(Debug)]
pub struct Rest {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: serde_json::Value,
}

impl TestApp {
    /// `POST /api/v1/ingest?{query}` with `body` as the report.
    pub async fn ingest(&self, auth: Auth<'_>, query: &str, body: Vec<u8>) -> Rest {
        self.ingest_with(auth, query, body, &[]).await
    }

    pub async fn ingest_with(
        &self,
        auth: Auth<'_>,
        query: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Rest {
        let mut req = self
            .http
            .post(self.url(&format!("/api/v1/ingest?{query}")))
            .body(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req = match auth {
            Auth::None => req,
            Auth::Bearer(token) => req.bearer_auth(token),
            Auth::ApiKey(key) => req.header("x-api-key", key),
        };
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Rest {
            status,
            headers,
            body,
        }
    }

    /// Polls a scan until it has finished; returns it (GraphQL shape).
    pub async fn wait_scan(&self, auth: Auth<'_>, id: &str) -> serde_json::Value {
        let query = "query($id: UUID!) { scan(id: $id) { id status error score findingsNew findingsFixed findingsUnchanged counts { critical high medium low info total } targetId } }";
        for _ in 0..600 {
            let res = self.gql(auth, query, serde_json::json!({"id": id})).await;
            let scan = res.data("scan").clone();
            if ["COMPLETE", "FAILED", "CANCELLED"].contains(&scan["status"].as_str().unwrap_or(""))
            {
                return scan;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("scan {id} did not finish in 60 s");
    }

    /// Polls a scan until it has this status (GraphQL spelling); returns it.
    pub async fn wait_scan_status(
        &self,
        auth: Auth<'_>,
        id: &str,
        status: &str,
    ) -> serde_json::Value {
        let query = "query($id: UUID!) { scan(id: $id) { id status error } }";
        for _ in 0..600 {
            let res = self.gql(auth, query, serde_json::json!({"id": id})).await;
            let scan = res.data("scan").clone();
            if scan["status"] == status {
                return scan;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("scan {id} did not reach {status} in 60 s");
    }

    /// Uploads and waits: the finished scan.
    pub async fn ingest_and_wait(
        &self,
        auth: Auth<'_>,
        query: &str,
        body: Vec<u8>,
    ) -> serde_json::Value {
        let res = self.ingest(auth, query, body).await;
        assert!(
            res.status == 202 || res.status == 200,
            "{}: {}",
            res.status,
            res.body
        );
        let id = res.body["data"]["id"]
            .as_str()
            .expect("scan id")
            .to_string();
        self.wait_scan(auth, &id).await
    }
}

/// Runs one `#[ignore]`d test of this binary in a process of its own (no other test competing
/// for memory or CPU), asserts it passed, and returns what it printed.
pub fn run_in_own_process(test: &str) -> String {
    let output = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .expect("run child");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{test} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("1 passed"), "{test} did not run:\n{stdout}");
    stdout
}

/// Asserts that `body` is the contract's error envelope with this status and code.
pub fn assert_envelope(body: &serde_json::Value, status: u16, code: &str) {
    assert_eq!(body["statusCode"], status, "envelope: {body}");
    assert_eq!(body["code"], code, "envelope: {body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "envelope: {body}"
    );
}

/// `../shared/samples` beside the checkout. Tests that read it carry
/// `#[cfg_attr(not(rampart_has_samples), ignore = "needs ../shared/samples")]` (build.rs sets the
/// cfg where the samples are, and always under `CI=true`), so reaching this without them is a
/// failure, never an early green return.
pub fn samples_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/samples");
    assert!(
        dir.is_dir(),
        "{} is absent: the conformance samples are required here (CI, or present when built)",
        dir.display()
    );
    dir
}
