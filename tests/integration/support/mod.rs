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

pub mod proxy;

use std::net::SocketAddr;
use std::time::Duration;

use rampart::config::Config;
use rampart::App;
use sea_orm::{ConnectionTrait, Database};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

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
        let database = match &env.postgres_url {
            Some(url) => Some(TestDatabase::create(url).await),
            None => None,
        };
        config.database_url = database.as_ref().map(|d| d.url.clone());
        config.redis_url = env.redis_url.clone();
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
    pub async fn spawn_with(mut config: Config) -> Self {
        config.bind = SocketAddr::from(([127, 0, 0, 1], 0));
        let app = App::build(config).await.expect("app starts");
        let addr = app.local_addr();
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
            task.await.expect("server task").expect("server ran cleanly");
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

/// Asserts that `body` is the contract's error envelope with this status and code.
pub fn assert_envelope(body: &serde_json::Value, status: u16, code: &str) {
    assert_eq!(body["statusCode"], status, "envelope: {body}");
    assert_eq!(body["code"], code, "envelope: {body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "envelope: {body}"
    );
}
