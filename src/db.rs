//! The database: SQLite in the data directory by default, PostgreSQL when `DATABASE_URL` says so.

use std::time::Duration;

use anyhow::Context as _;
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

/// Opens a pool on `url` with the settings Rampart relies on: WAL and foreign keys for SQLite,
/// short connect timeouts everywhere so a wrong URL fails fast.
///
/// # Errors
/// When the database cannot be reached; the message names it without its password.
pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_string());
    options
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        // One writer at a time is SQLite's rule; a small pool keeps readers concurrent under WAL.
        // `synchronous = NORMAL` is WAL's recommended setting: commits stay atomic and the
        // database consistent after a crash, but the WAL is synced at checkpoints instead of on
        // every commit (a power cut can lose the last commits, never corrupt earlier ones).
        options.max_connections(8).map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                // Up to 64 MiB of pages per connection instead of SQLite's 2 MiB: findings are
                // keyed by random fingerprints, so a large ingest touches index pages all over
                // the file, and re-reading them through the OS dominated its time. Readers
                // rarely fill it; the writer does.
                .pragma("cache_size", "-65536")
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
        });
    } else {
        options.max_connections(20);
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
