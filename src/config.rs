//! Typed configuration, parsed once from flags and environment at start-up.
//!
//! Nothing deeper in the code reads the environment: everything it needs is here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use ipnet::IpNet;

pub mod reference;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable, coloured when a terminal is attached.
    #[default]
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Which parts of the server a process runs, so API and workers can scale apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum Role {
    /// HTTP API and background workers in one process (the embedded default).
    #[default]
    All,
    /// HTTP API only.
    Api,
    /// Background workers only (still answers the health routes).
    Worker,
}

/// Everything `rampart serve` needs, with the flag and environment names operators rely on.
#[derive(Clone, Debug, Args)]
pub struct Config {
    /// Address the HTTP server listens on.
    #[arg(long, env = "RAMPART_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Directory for the embedded database, the local object store and generated secrets.
    #[arg(long, env = "RAMPART_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// PostgreSQL (or SQLite) URL; when absent, a SQLite file in the data directory is used.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Redis URL for live events and shared rate limits across processes; when absent, both
    /// stay in this process.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key and channel, so deployments can share one Redis.
    #[arg(long, env = "RAMPART_REDIS_PREFIX", default_value = "rampart")]
    pub redis_prefix: String,

    /// S3 bucket for raw reports; when absent, reports are kept under the data directory.
    #[arg(long, env = "RAMPART_S3_BUCKET")]
    pub s3_bucket: Option<String>,

    /// S3 endpoint for S3-compatible servers (MinIO, ...); path-style addressing is used.
    #[arg(long, env = "RAMPART_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// S3 region.
    #[arg(long, env = "RAMPART_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,

    /// S3 access key id (the standard AWS variable).
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub s3_access_key_id: Option<String>,

    /// S3 secret access key (the standard AWS variable).
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,

    /// Secret that signs access tokens; generated once and kept in the data directory when absent.
    #[arg(long, env = "RAMPART_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Email of the first administrator, created on an empty database.
    #[arg(long, env = "RAMPART_ADMIN_EMAIL")]
    pub admin_email: Option<String>,

    /// Password of the first administrator; a random one is printed once when absent.
    #[arg(long, env = "RAMPART_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// Log format.
    #[arg(long, env = "RAMPART_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    /// Which parts this process runs.
    #[arg(long, env = "RAMPART_ROLE", value_enum, default_value_t = Role::All)]
    pub role: Role,

    /// Largest accepted request body for report uploads, in bytes (default 1 GiB).
    #[arg(long, env = "RAMPART_MAX_UPLOAD_BYTES", default_value_t = 1 << 30)]
    pub max_upload_bytes: u64,

    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "RAMPART_ACCESS_TOKEN_TTL_SECS", default_value_t = 15 * 60)]
    pub access_token_ttl_secs: i64,

    /// Lifetime of refresh tokens (and so of an idle session), in seconds.
    #[arg(long, env = "RAMPART_REFRESH_TOKEN_TTL_SECS", default_value_t = 7 * 24 * 3600)]
    pub refresh_token_ttl_secs: i64,

    /// Requests per minute allowed to each credential (or each IP when anonymous).
    #[arg(long, env = "RAMPART_RATE_LIMIT_PER_MINUTE", default_value_t = 600)]
    pub rate_limit_per_minute: u32,

    /// Always mark session cookies `Secure` (set this behind a TLS-terminating proxy); they are
    /// marked anyway on requests that arrive over HTTPS.
    #[arg(long, env = "RAMPART_SECURE_COOKIES", default_value_t = false)]
    pub secure_cookies: bool,

    /// Background workers processing reports in this process (with `--role all` or `worker`).
    #[arg(long, env = "RAMPART_WORKERS", default_value_t = 2)]
    pub workers: usize,

    /// Seconds a worker holds a job before it must renew its lease; a job whose worker died is
    /// taken up again after this.
    #[arg(long, env = "RAMPART_JOB_LEASE_SECS", default_value_t = 30)]
    pub job_lease_secs: u64,

    /// Seconds a job's work may go without progress (report bytes read, findings written)
    /// before its worker stops renewing the lease and gives the job up, so that a worker stuck
    /// on a hung backend does not keep the job from everyone else.
    #[arg(long, env = "RAMPART_JOB_STALL_SECS", default_value_t = 600)]
    pub job_stall_secs: u64,

    /// Attempts at a job before its scan is marked failed. With the retry delays below, the
    /// default spreads 8 attempts over 5 to 10 minutes, so an outage of a backend (or a
    /// restart of it) does not fail a scan for good.
    #[arg(long, env = "RAMPART_JOB_MAX_ATTEMPTS", default_value_t = 8)]
    pub job_max_attempts: i32,

    /// Deepest GraphQL selection accepted.
    #[arg(long, env = "RAMPART_GRAPHQL_MAX_DEPTH", default_value_t = 12)]
    pub graphql_max_depth: usize,

    /// Largest GraphQL query complexity accepted (one point per selected field).
    #[arg(long, env = "RAMPART_GRAPHQL_MAX_COMPLEXITY", default_value_t = 1000)]
    pub graphql_max_complexity: usize,

    /// Answer GraphQL introspection queries (GraphiQL needs them).
    #[arg(long, env = "RAMPART_GRAPHQL_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub graphql_introspection: bool,

    /// Fill an empty installation with demo orgs, targets and 90 days of scans.
    #[arg(long, env = "RAMPART_DEMO", default_value_t = false)]
    pub demo: bool,

    /// Seconds a shutting-down server waits for in-flight requests.
    #[arg(long, env = "RAMPART_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,

    /// Largest request body, in bytes, of the JSON routes (REST and `POST /graphql`); a larger
    /// one is refused with 413 before it is read. Report uploads have their own limit.
    #[arg(long, env = "RAMPART_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Largest GraphQL multipart request (`ingestReport` uploads), in bytes.
    #[arg(long, env = "RAMPART_MAX_GRAPHQL_UPLOAD_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_graphql_upload_bytes: usize,

    /// Milliseconds a GraphQL or REST request may run before it is answered 503 (streaming
    /// routes, WebSocket and uploads excepted).
    #[arg(long, env = "RAMPART_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,

    /// How many times one field may be selected under one parent (aliases included).
    #[arg(long, env = "RAMPART_GRAPHQL_MAX_ALIASES", default_value_t = 20)]
    pub graphql_max_aliases: usize,

    /// Milliseconds a request waits for a PostgreSQL connection, opening one included, before
    /// it answers 503: an outage is reported at once instead of holding every request. (On
    /// SQLite, which cannot go away, waits are for its write lock and its busy timeout bounds
    /// them.)
    #[arg(long, env = "RAMPART_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 1000)]
    pub db_acquire_timeout_ms: u64,

    /// Delay before the second attempt at a failed job, in seconds; each later delay doubles,
    /// and each is drawn at random from its upper half so retries of many jobs spread out.
    #[arg(long, env = "RAMPART_JOB_RETRY_BASE_SECS", default_value_t = 5)]
    pub job_retry_base_secs: u64,

    /// Longest delay between two attempts at a job, in seconds.
    #[arg(long, env = "RAMPART_JOB_RETRY_MAX_DELAY_SECS", default_value_t = 300)]
    pub job_retry_max_delay_secs: u64,

    /// Longest wait for a TCP connection to S3, in milliseconds.
    #[arg(long, env = "RAMPART_S3_CONNECT_TIMEOUT_MS", default_value_t = 3_000)]
    pub s3_connect_timeout_ms: u64,

    /// Longest wait for S3's answer to a request (sending its body included, at most one 8 MiB
    /// part), and between two chunks of a body being read back, in milliseconds: a hung S3
    /// surfaces as an error, not as a wait without end.
    #[arg(long, env = "RAMPART_S3_READ_TIMEOUT_MS", default_value_t = 30_000)]
    pub s3_read_timeout_ms: u64,

    /// Longest time for one attempt at one S3 call, in milliseconds. A large upload is many
    /// calls (one per 8 MiB part), each bounded by this, not the whole upload.
    #[arg(long, env = "RAMPART_S3_ATTEMPT_TIMEOUT_MS", default_value_t = 60_000)]
    pub s3_attempt_timeout_ms: u64,

    /// Longest time for one S3 call with its retries, in milliseconds.
    #[arg(
        long,
        env = "RAMPART_S3_OPERATION_TIMEOUT_MS",
        default_value_t = 120_000
    )]
    pub s3_operation_timeout_ms: u64,

    /// Seconds between sweeps of the object store for reports no scan refers to (0: never).
    /// One process of the deployment runs each sweep (it is a job in the queue).
    #[arg(
        long,
        env = "RAMPART_STORE_SWEEP_INTERVAL_SECS",
        default_value_t = 3600
    )]
    pub store_sweep_interval_secs: u64,

    /// Age in seconds before an unreferenced object may be swept, so uploads still on their
    /// way to their scan row are safe.
    #[arg(long, env = "RAMPART_STORE_SWEEP_GRACE_SECS", default_value_t = 3600)]
    pub store_sweep_grace_secs: u64,

    /// Reverse proxies whose `X-Forwarded-For` is believed: CIDRs or addresses, comma-separated
    /// (e.g. `10.0.0.0/8,127.0.0.1`). The client is the right-most forwarded address outside
    /// them; with none, the socket's peer. Rate limits and audit rows use that address.
    #[arg(long, env = "RAMPART_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_cidr)]
    pub trusted_proxies: Vec<IpNet>,

    /// SMTP relay that sends password-reset and notification mail, as a URL: `smtp://host:port`
    /// (plain, for a relay on loopback), `smtp://user:pass@host:587?tls=required` (STARTTLS) or
    /// `smtps://user:pass@host:465`. Without it no mail is sent (reset requests answer the same;
    /// notifications are only in the app).
    #[arg(long, env = "RAMPART_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// The `From` address of mail Rampart sends.
    #[arg(
        long,
        env = "RAMPART_SMTP_FROM",
        default_value = "Rampart <rampart@localhost>"
    )]
    pub smtp_from: String,

    /// Browser origins (`https://app.example.com`, comma-separated) allowed to call the API
    /// from their pages with credentials (CORS); none by default. A listed origin also counts
    /// as this server's own for the cookie forgery check.
    #[arg(long, env = "RAMPART_CORS_ALLOWED_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_allowed_origins: Vec<String>,

    /// Bearer token that `GET /metrics` on the main address requires; without it (and without
    /// `--metrics-bind`) metrics are not served.
    #[arg(long, env = "RAMPART_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// A separate address serving only `GET /metrics` (e.g. `127.0.0.1:9090`), for a scraper on
    /// a private network; no token is asked there unless one is configured.
    #[arg(long, env = "RAMPART_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,

    /// Networks webhooks may be delivered to although they are loopback, private, link-local,
    /// CGNAT or metadata addresses (refused otherwise, against SSRF): CIDRs or addresses,
    /// comma-separated.
    #[arg(long, env = "RAMPART_WEBHOOK_ALLOW_CIDRS", value_delimiter = ',', value_parser = parse_cidr)]
    pub webhook_allow_cidrs: Vec<IpNet>,

    /// Ports webhook URLs may name, comma-separated.
    #[arg(long, env = "RAMPART_WEBHOOK_PORTS", value_delimiter = ',', default_values_t = [80u16, 443])]
    pub webhook_ports: Vec<u16>,

    /// How long one webhook delivery attempt may take, in milliseconds.
    #[arg(long, env = "RAMPART_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    pub webhook_timeout_ms: u64,

    /// Seconds before each retry of a failed webhook delivery (each drawn ±20 %), comma-
    /// separated; the Standard Webhooks schedule by default. One attempt more than delays.
    #[arg(long, env = "RAMPART_WEBHOOK_RETRY_SCHEDULE_SECS", value_delimiter = ',', default_values_t = [5u64, 300, 1800, 7200, 18000, 36000, 36000])]
    pub webhook_retry_schedule_secs: Vec<u64>,

    /// How long a rotated-out webhook secret still signs deliveries beside the new one.
    #[arg(long, env = "RAMPART_WEBHOOK_SECRET_OVERLAP_SECS", default_value_t = 24 * 3600)]
    pub webhook_secret_overlap_secs: u64,

    /// A webhook whose deliveries have failed for this many days without a success is
    /// disabled.
    #[arg(long, env = "RAMPART_WEBHOOK_DISABLE_AFTER_DAYS", default_value_t = 5)]
    pub webhook_disable_after_days: u64,

    /// Days before an accepted risk lapses that its `risk_acceptance.expiring` webhooks and
    /// notifications go out (once per acceptance).
    #[arg(long, env = "RAMPART_RISK_EXPIRY_NOTICE_DAYS", default_value_t = 7)]
    pub risk_expiry_notice_days: u32,

    /// How often the reminder job looks for accepted risks about to lapse and findings past
    /// their SLA due date (one run per period across all replicas).
    #[arg(long, env = "RAMPART_REMINDER_INTERVAL_SECS", default_value_t = 3600)]
    pub reminder_interval_secs: u64,
    /// Where an engine's executable is, when not on the PATH: `name=path` pairs, comma-
    /// separated (e.g. `semgrep=/opt/semgrep/bin/semgrep`).
    #[arg(long, env = "RAMPART_ENGINE_PATHS", value_delimiter = ',', value_parser = parse_engine_path)]
    pub engine_paths: Vec<(String, PathBuf)>,

    /// Server-side directories engine scans may read (a scan of a directory names one of
    /// these or a directory under it), comma-separated; none by default.
    #[arg(long, env = "RAMPART_ENGINE_SOURCE_ROOTS", value_delimiter = ',')]
    pub engine_source_roots: Vec<PathBuf>,

    /// Engine runs at once per worker process, apart from report ingest.
    #[arg(long, env = "RAMPART_ENGINE_CONCURRENCY", default_value_t = 1)]
    pub engine_concurrency: usize,

    /// Wall-clock limit of one engine run, in seconds.
    #[arg(long, env = "RAMPART_ENGINE_TIMEOUT_SECS", default_value_t = 900)]
    pub engine_timeout_secs: u64,

    /// Address-space limit (RLIMIT_AS) of an engine process, in MiB; 0 for none.
    #[arg(long, env = "RAMPART_ENGINE_MEMORY_MB", default_value_t = 4096)]
    pub engine_memory_mb: u64,

    /// Largest report an engine may write (its captured output), in bytes; past it the run
    /// is stopped and fails.
    #[arg(long, env = "RAMPART_ENGINE_MAX_OUTPUT_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub engine_max_output_bytes: u64,

    /// Largest source archive accepted for an engine scan, in bytes.
    #[arg(long, env = "RAMPART_ENGINE_MAX_ARCHIVE_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub engine_max_archive_bytes: u64,

    /// Largest total size a source archive may expand to, in bytes (against archive bombs).
    #[arg(long, env = "RAMPART_ENGINE_MAX_EXPANDED_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub engine_max_expanded_bytes: u64,

    /// Most entries a source archive may hold.
    #[arg(
        long,
        env = "RAMPART_ENGINE_MAX_ARCHIVE_ENTRIES",
        default_value_t = 100_000
    )]
    pub engine_max_archive_entries: u64,

    /// Where engine runs get their scratch directories (removed after each run); by default
    /// `<data-dir>/engine-scratch`.
    #[arg(long, env = "RAMPART_ENGINE_SCRATCH_DIR")]
    pub engine_scratch_dir: Option<PathBuf>,
}

/// `name=path`: where one engine's executable is.
fn parse_engine_path(value: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = value
        .split_once('=')
        .ok_or_else(|| format!("{value:?} is not name=path"))?;
    let (name, path) = (name.trim(), path.trim());
    if name.is_empty() || path.is_empty() {
        return Err(format!("{value:?} is not name=path"));
    }
    Ok((name.to_ascii_lowercase(), PathBuf::from(path)))
}

/// An origin as browsers send it: `scheme://host[:port]`, no path, lowercased.
fn parse_origin(value: &str) -> Result<String, String> {
    let origin = value.trim().trim_end_matches('/').to_ascii_lowercase();
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| format!("{value:?} is not an http(s) origin"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '*']) {
        return Err(format!("{value:?} is not an origin (scheme://host[:port])"));
    }
    Ok(origin)
}

/// A CIDR (`10.0.0.0/8`) or a single address (`127.0.0.1`, a /32 or /128).
fn parse_cidr(value: &str) -> Result<IpNet, String> {
    let value = value.trim();
    value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{value:?} is neither a CIDR nor an IP address"))
}

impl Config {
    /// A configuration with every default, rooted at `data_dir`; the base for tests and tools.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            database_url: None,
            redis_url: None,
            redis_prefix: "rampart".into(),
            s3_bucket: None,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            jwt_secret: None,
            admin_email: None,
            admin_password: None,
            log_format: LogFormat::Pretty,
            role: Role::All,
            max_upload_bytes: 1 << 30,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 7 * 24 * 3600,
            rate_limit_per_minute: 600,
            secure_cookies: false,
            workers: 2,
            job_lease_secs: 30,
            job_stall_secs: 600,
            job_max_attempts: 8,
            graphql_max_depth: 12,
            graphql_max_complexity: 1000,
            graphql_introspection: true,
            demo: false,
            shutdown_grace_secs: 20,
            max_body_bytes: 2 * 1024 * 1024,
            max_graphql_upload_bytes: 64 * 1024 * 1024,
            request_timeout_ms: 30_000,
            graphql_max_aliases: 20,
            db_acquire_timeout_ms: 1000,
            job_retry_base_secs: 5,
            job_retry_max_delay_secs: 300,
            s3_connect_timeout_ms: 3_000,
            s3_read_timeout_ms: 30_000,
            s3_attempt_timeout_ms: 60_000,
            s3_operation_timeout_ms: 120_000,
            store_sweep_interval_secs: 3600,
            store_sweep_grace_secs: 3600,
            trusted_proxies: Vec::new(),
            smtp_url: None,
            smtp_from: "Rampart <rampart@localhost>".into(),
            cors_allowed_origins: Vec::new(),
            metrics_token: None,
            metrics_bind: None,
            webhook_allow_cidrs: Vec::new(),
            webhook_ports: vec![80, 443],
            webhook_timeout_ms: 10_000,
            webhook_retry_schedule_secs: vec![5, 300, 1800, 7200, 18000, 36000, 36000],
            webhook_secret_overlap_secs: 24 * 3600,
            webhook_disable_after_days: 5,
            risk_expiry_notice_days: 7,
            reminder_interval_secs: 3600,
            engine_paths: Vec::new(),
            engine_source_roots: Vec::new(),
            engine_concurrency: 1,
            engine_timeout_secs: 900,
            engine_memory_mb: 4096,
            engine_max_output_bytes: 256 * 1024 * 1024,
            engine_max_archive_bytes: 100 * 1024 * 1024,
            engine_max_expanded_bytes: 1024 * 1024 * 1024,
            engine_max_archive_entries: 100_000,
            engine_scratch_dir: None,
        }
    }

    /// Where engine runs get their scratch directories.
    pub fn engine_scratch(&self) -> PathBuf {
        self.engine_scratch_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("engine-scratch"))
    }

    /// The database URL actually used: the configured one or the embedded SQLite file.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.embedded_database_path().display()
            ),
        }
    }

    /// Where the embedded SQLite database lives (used when no database URL is configured).
    pub fn embedded_database_path(&self) -> PathBuf {
        self.data_dir.join("rampart.db")
    }

    /// How long a request waits for a database connection.
    pub fn db_acquire_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.db_acquire_timeout_ms.max(1))
    }

    /// S3 settings when a bucket is configured.
    pub fn s3(&self) -> Option<S3Config> {
        self.s3_bucket.as_ref().map(|bucket| S3Config {
            bucket: bucket.clone(),
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            access_key_id: self.s3_access_key_id.clone(),
            secret_access_key: self.s3_secret_access_key.clone(),
            timeouts: S3Timeouts {
                connect: Duration::from_millis(self.s3_connect_timeout_ms),
                read: Duration::from_millis(self.s3_read_timeout_ms),
                attempt: Duration::from_millis(self.s3_attempt_timeout_ms),
                operation: Duration::from_millis(self.s3_operation_timeout_ms),
            },
        })
    }
}

/// The S3 part of the configuration, handed to the S3 object store.
#[derive(Clone, Debug)]
pub struct S3Config {
    pub bucket: String,
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub timeouts: S3Timeouts,
}

/// Bounds on every wait for S3 (see the `s3_*_timeout_ms` settings).
#[derive(Clone, Copy, Debug)]
pub struct S3Timeouts {
    pub connect: Duration,
    /// For an answer, and between two chunks of a body read back.
    pub read: Duration,
    pub attempt: Duration,
    pub operation: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_database_lives_in_the_data_dir() {
        let config = Config::with_data_dir("/tmp/x");
        assert_eq!(
            config.effective_database_url(),
            "sqlite:///tmp/x/rampart.db?mode=rwc"
        );
        assert!(config.s3().is_none());
    }

    #[test]
    fn trusted_proxies_are_cidrs_or_addresses() {
        assert_eq!(parse_cidr("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(
            parse_cidr(" 127.0.0.1").unwrap().to_string(),
            "127.0.0.1/32"
        );
        assert_eq!(parse_cidr("::1").unwrap().to_string(), "::1/128");
        assert!(parse_cidr("proxy.local").is_err());
    }

    #[test]
    fn cors_origins_are_bare_origins() {
        assert_eq!(
            parse_origin("HTTPS://App.example.com/").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            parse_origin("http://localhost:3000").unwrap(),
            "http://localhost:3000"
        );
        assert!(parse_origin("app.example.com").is_err());
        assert!(parse_origin("https://app.example.com/path").is_err());
        assert!(parse_origin("https://*.example.com").is_err());
    }
}
