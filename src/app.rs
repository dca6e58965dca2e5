//! `App::build(config)`: every backend opened and checked, the router assembled and the port
//! bound, so `main` and the integration tests start the very same server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::auth::{JwtKeys, RateLimiter};
use crate::config::Config;
use crate::events::{EventBus, MemoryBus, RedisBus};
use crate::graphql::build_schema;
use crate::store::{LocalStore, ObjectStore, S3Store};
use crate::{db, secrets};

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub store: Arc<dyn ObjectStore>,
    pub bus: Arc<dyn EventBus>,
    pub jwt: Arc<JwtKeys>,
    pub limiter: Arc<RateLimiter>,
    /// Wakes this process's idle workers when a job is queued here.
    pub jobs_wake: Arc<tokio::sync::Notify>,
    /// Followed scans' events, decoded once per process.
    pub scan_feeds: crate::live::feed::ScanFeeds,
    /// Snapshot subscriptions executed once for all their WebSocket subscribers.
    pub shared_subscriptions: crate::live::shared::SharedSubscriptions,
    /// API key use, stored off the request path.
    pub key_usage: crate::auth::key_usage::KeyUsage,
    /// The last readiness answer, reused for a moment so probes stay cheap.
    pub readiness: crate::http::health::ReadinessCache,
    /// Outgoing mail (password resets), when an SMTP relay is configured.
    pub mailer: crate::accounts::mail::Mailer,
    /// Prometheus metrics of this process (`GET /metrics`).
    pub metrics: crate::metrics::Metrics,
    /// The engines this process can run (triggered scans), their versions and run slots.
    pub engines: Arc<crate::engines::Registry>,
    /// Cancelled when the process starts shutting down: live connections close with a code
    /// clients reconnect on, and workers hand their jobs back.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The three swappable backends.
pub struct Backends {
    pub db: DatabaseConnection,
    pub store: Arc<dyn ObjectStore>,
    pub bus: Arc<dyn EventBus>,
}

/// Opens the database (migrating it), the object store and the event bus the configuration
/// names, and proves each one works.
///
/// # Errors
/// A one-line reason naming the backend that failed.
pub async fn open_backends(config: &Config) -> anyhow::Result<Backends> {
    crate::private_fs::prepare_data_dir(config).await?;

    let db = db::connect_with(
        &config.effective_database_url(),
        config.db_acquire_timeout(),
    )
    .await?;
    // Replicas starting together take turns; the ones after the first find nothing to apply.
    let lock = crate::setup::SetupLock::acquire(&db).await?;
    let migrated = db::migrate_up(&db).await;
    lock.release().await;
    migrated?;

    let store: Arc<dyn ObjectStore> = match config.s3() {
        Some(s3) => {
            let description = format!(
                "S3 bucket {:?} at {}",
                s3.bucket,
                s3.endpoint.as_deref().unwrap_or("the AWS default endpoint")
            );
            let store = S3Store::connect(&s3).await;
            match tokio::time::timeout(Duration::from_secs(15), store.check()).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => anyhow::bail!("object store {description} is not usable: {err}"),
                Err(_) => anyhow::bail!("object store {description} did not answer in 15 s"),
            }
            Arc::new(store)
        }
        None => {
            let root = config.data_dir.join("reports");
            let store = LocalStore::open(&root).await?;
            store
                .check()
                .await
                .with_context(|| format!("object store {} is not writable", root.display()))?;
            Arc::new(store)
        }
    };

    let bus: Arc<dyn EventBus> = match &config.redis_url {
        Some(url) => Arc::new(
            RedisBus::connect(url, &config.redis_prefix)
                .await
                .with_context(|| format!("redis at {} is not usable", db::redact_url(url)))?,
        ),
        None => Arc::new(MemoryBus::default()),
    };

    Ok(Backends { db, store, bus })
}

/// Tells the operator about a first administrator created at start-up. A generated password
/// goes to standard output once and never into the logs.
pub fn announce_bootstrap(outcome: crate::orgs::Bootstrap) {
    use crate::orgs::Bootstrap;
    match outcome {
        Bootstrap::AlreadySetUp => {}
        Bootstrap::Created { email } => {
            tracing::info!(%email, "created the first administrator and the default organization");
        }
        Bootstrap::CreatedWithPassword { email, password } => {
            tracing::info!(%email, "created the first administrator with a generated password");
            println!("First administrator: {email}\nPassword (shown once): {password}");
        }
    }
}

/// Creates the first administrator on an empty database (and demo data when asked). Run under
/// the set-up lock: each step looks before it writes, so running it again changes nothing.
async fn first_run(config: &Config, db: &DatabaseConnection) -> anyhow::Result<()> {
    announce_bootstrap(
        crate::orgs::bootstrap_admin(
            db,
            config.admin_email.as_deref(),
            config.admin_password.as_deref(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("creating the first administrator: {}", e.public_message()))?,
    );
    if config.demo
        && crate::demo::seed(db)
            .await
            .map_err(|e| anyhow::anyhow!("seeding demo data: {e:?}"))?
    {
        tracing::info!("filled the empty installation with demo data");
    }
    Ok(())
}

/// A built server, bound to its port and ready to run.
pub struct App {
    listener: TcpListener,
    router: Router,
    state: AppState,
    /// `--metrics-bind`: the separate address serving `GET /metrics`.
    metrics_listener: Option<TcpListener>,
}

impl App {
    /// Opens the backends and binds `config.bind` (port 0 picks a free port).
    ///
    /// # Errors
    /// When a backend is unusable or the address cannot be bound.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // A malformed REST row stops start-up before anything is opened.
        crate::rest::api()?;
        let backends = open_backends(&config).await?;
        Self::build_with(config, backends).await
    }

    /// Builds on backends opened by the caller (tests use it to observe the database).
    ///
    /// # Errors
    /// As for [`App::build`].
    pub async fn build_with(config: Config, backends: Backends) -> anyhow::Result<Self> {
        let jwt_secret = secrets::jwt_secret(&config).await?;
        let limiter = match &config.redis_url {
            Some(url) => RateLimiter::redis(url, &config.redis_prefix)?,
            None => RateLimiter::in_memory(),
        };
        // First-run set-up once across replicas: the first to hold the lock creates the admin
        // (and demo data); the others find it there.
        let lock = crate::setup::SetupLock::acquire(&backends.db).await?;
        let set_up = first_run(&config, &backends.db).await;
        lock.release().await;
        set_up?;
        let mailer = crate::accounts::mail::Mailer::from_config(&config)?;
        let key_usage = crate::auth::key_usage::KeyUsage::start(&backends.db);
        let engines = Arc::new(crate::engines::Registry::discover(&config));
        engines.probe_in_background();
        let state = AppState {
            config: Arc::new(config),
            db: backends.db,
            store: backends.store,
            bus: backends.bus,
            jwt: Arc::new(JwtKeys::new(jwt_secret.expose())),
            limiter: Arc::new(limiter),
            jobs_wake: Arc::new(tokio::sync::Notify::new()),
            scan_feeds: crate::live::feed::ScanFeeds::default(),
            shared_subscriptions: crate::live::shared::SharedSubscriptions::default(),
            key_usage,
            readiness: crate::http::health::ReadinessCache::default(),
            mailer,
            metrics: crate::metrics::Metrics::default(),
            engines,
            shutdown: tokio_util::sync::CancellationToken::new(),
        };
        let schema = build_schema(Some(state.clone()));
        let router = crate::http::router(state.clone(), schema)?;
        let listener = TcpListener::bind(state.config.bind)
            .await
            .with_context(|| format!("cannot listen on {}", state.config.bind))?;
        let metrics_listener = match state.config.metrics_bind {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} for metrics"))?,
            ),
            None => None,
        };
        Ok(Self {
            listener,
            router,
            state,
            metrics_listener,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The metrics address actually bound, when one is configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish (up to the
    /// configured grace period).
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until<F>(mut self, shutdown: F) -> anyhow::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let grace = Duration::from_secs(self.state.config.shutdown_grace_secs);
        // Workers run beside the API unless this process is API-only; on shutdown they hand
        // their running jobs back to the queue (see `Workers::stop`).
        // A process with no workers (`--workers 0`) has nothing to report a heartbeat for.
        let runs_workers =
            self.state.config.role != crate::config::Role::Api && self.state.config.workers > 0;
        let workers = runs_workers
            .then(|| crate::ingest::worker::spawn(&self.state, self.state.jobs_wake.clone()));
        let db = self.state.db.clone();
        let stopping = self.state.shutdown.clone();
        let metrics = self.metrics_listener.take().map(|listener| {
            let router = crate::metrics::metrics_router(self.state.clone());
            let stopped = stopping.clone().cancelled_owned();
            tokio::spawn(async move {
                if let Err(err) = axum::serve(listener, router)
                    .with_graceful_shutdown(stopped)
                    .await
                {
                    tracing::error!(error = %err, "the metrics server failed");
                }
            })
        });
        let result = self.serve(shutdown, grace).await;
        // Already cancelled when serving stopped on request; also when it failed.
        stopping.cancel();
        if let Some(workers) = workers {
            workers.stop(&db, grace).await;
        }
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        result
    }

    async fn serve<F>(self, shutdown: F, grace: Duration) -> anyhow::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let stopping = self.state.shutdown.clone();
        let serve = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Live connections close and workers hand their jobs back while requests finish.
            stopping.cancel();
            let _ = stopping_tx.send(());
        });
        let serve = tokio::spawn(async move { serve.await });
        tokio::pin!(serve);
        tokio::select! {
            result = &mut serve => return result.context("server task")?.context("server"),
            _ = stopping_rx => {}
        }
        match tokio::time::timeout(grace, &mut serve).await {
            Ok(result) => result.context("server task")?.context("server"),
            Err(_) => {
                tracing::warn!(?grace, "in-flight requests did not finish in time; closing");
                Ok(())
            }
        }
    }
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested");
}
