//! The database: SQLite in the data directory by default, PostgreSQL when `DATABASE_URL` says so.

use std::time::Duration;

use anyhow::Context as _;
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, SqlxSqliteConnector, TransactionOptions, TransactionTrait,
};

/// SQLite's heap across all connections of the process (page caches, statements): 96 MiB.
const SQLITE_HEAP_LIMIT_BYTES: &str = "100663296";

/// The longest a PostgreSQL statement may run.
const POSTGRES_STATEMENT_TIMEOUT: &str = "5min";

/// How long tools and tests wait for a connection; the server takes it from its configuration.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

/// SQLite's pool waits: for a connection while others hold the write lock, as long as its busy
/// timeout lets a writer wait for the lock itself.
const SQLITE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// [`connect_with`] and the default wait.
///
/// # Errors
/// As [`connect_with`].
pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    connect_with(url, DEFAULT_ACQUIRE_TIMEOUT).await
}

/// Opens a pool on `url` with the settings Rampart relies on: WAL and foreign keys for SQLite;
/// on PostgreSQL, a request waits at most `acquire_timeout` for a connection. sqlx opens
/// connections inside that same wait (retrying a refused one until it runs out), so it bounds
/// connecting too: a database that is down answers in that time, not after a long timeout.
///
/// # Errors
/// When the database cannot be reached; the message names it without its password.
pub async fn connect_with(
    url: &str,
    acquire_timeout: Duration,
) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_string());
    options
        .connect_timeout(acquire_timeout)
        .acquire_timeout(acquire_timeout)
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        // One writer at a time is SQLite's rule; a small pool keeps readers concurrent under WAL.
        // `synchronous = NORMAL` is WAL's recommended setting: commits stay atomic and the
        // database consistent after a crash, but the WAL is synced at checkpoints instead of on
        // every commit (a power cut can lose the last commits, never corrupt earlier ones).
        options
            .connect_timeout(SQLITE_ACQUIRE_TIMEOUT)
            .acquire_timeout(SQLITE_ACQUIRE_TIMEOUT);
        options.max_connections(8).map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                // Up to 64 MiB of pages per connection instead of SQLite's 2 MiB: findings are
                // keyed by random fingerprints, so a large ingest touches index pages all over
                // the file, and re-reading them through the OS dominated its time. Readers
                // rarely fill it; the writer does.
                .pragma("cache_size", "-65536")
                // ...and at most SQLITE_HEAP_LIMIT_BYTES for all connections together: eight
                // connections could otherwise hold 64 MiB each. This bundled SQLite keeps one
                // page LRU for all connections (SQLITE_ENABLE_MEMORY_MANAGEMENT); past the
                // limit a connection reuses the least recently used clean page instead of
                // allocating another.
                .pragma("soft_heap_limit", SQLITE_HEAP_LIMIT_BYTES)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
        });
    } else {
        // No statement may run for ever: after a server restart one once did for minutes,
        // holding its job's lease all along. Generous, as a finalize of millions of findings
        // is one long statement.
        options.max_connections(20).map_sqlx_postgres_opts(|o| {
            o.options([("statement_timeout", POSTGRES_STATEMENT_TIMEOUT)])
        });
    }
    Database::connect(options)
        .await
        .with_context(|| format!("cannot connect to the database at {}", redact_url(url)))
}

/// Starts a transaction that will write. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`), so it waits its turn under the busy timeout instead of failing with
/// "database is locked" when it upgrades from reading to writing.
///
/// # Errors
/// When the transaction cannot start.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// A connection for one long job — a scan's ingest — that is its alone until [`Self::close`].
///
/// On SQLite, each transaction taken from the shared pool runs on whichever connection is idle,
/// and the pool hands them out in turn: a scan's batches went round all of them, each warming a
/// page cache of its own from the OS and keeping it, and its memory spread over as many threads
/// (sqlx runs each connection on one). A 1M-result ingest then grew the process by 130 to 360
/// MiB from one identical run to the next, against ~130 MiB of live heap (heaptrack). One
/// connection for the whole scan keeps its pages warm from batch to batch, and closing it frees
/// them (docs/benchmarks.md, "Memory at a million results"). On PostgreSQL, whose server caches
/// the pages, this is the shared pool.
pub struct Dedicated {
    conn: DatabaseConnection,
    own: bool,
}

impl Dedicated {
    /// # Errors
    /// When SQLite cannot open another connection.
    pub async fn open(db: &DatabaseConnection) -> Result<Self, DbErr> {
        if db.get_database_backend() != DbBackend::Sqlite {
            return Ok(Self {
                conn: db.clone(),
                own: false,
            });
        }
        let options = db.get_sqlite_connection_pool().connect_options();
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with((*options).clone())
            .await
            .map_err(|err| DbErr::Custom(format!("opening a connection for the scan: {err}")))?;
        Ok(Self {
            conn: SqlxSqliteConnector::from_sqlx_sqlite_pool(pool),
            own: true,
        })
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// Closes the connection if it is this job's own (never the shared pool).
    pub async fn close(self) {
        if self.own {
            let _ = self.conn.close().await;
        }
    }
}

/// Applies every pending migration.
///
/// # Errors
/// When a migration fails.
pub async fn migrate_up(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None)
        .await
        .context("applying database migrations failed")
}

/// True when every migration this binary knows has been applied.
///
/// # Errors
/// When the migration table cannot be read.
pub async fn migrations_current(db: &DatabaseConnection) -> anyhow::Result<bool> {
    Ok(Migrator::get_pending_migrations(db).await?.is_empty())
}

/// `sqlite` or `postgres`, for health reports.
pub fn backend_name(db: &DatabaseConnection) -> &'static str {
    match db.get_database_backend() {
        DbBackend::Sqlite => "sqlite",
        DbBackend::Postgres => "postgres",
        _ => "other",
    }
}

/// The URL with any password replaced, safe to print.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_printed() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/rampart"),
            "postgres://app:***@db:5432/rampart"
        );
        assert_eq!(
            redact_url("postgres://app@db/rampart"),
            "postgres://app@db/rampart"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
