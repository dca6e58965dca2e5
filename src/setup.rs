//! Start-up work that must happen once per installation, however many replicas start at the
//! same moment: migrations and the first-run set-up (first administrator, demo data) run under
//! one installation-wide lock, and each of them is idempotent, so a replica that gets the lock
//! second finds the work done and goes on.
//!
//! - PostgreSQL: a session advisory lock (`pg_advisory_lock`) on one connection taken out of
//!   the pool for the duration. The server releases it when that connection ends, so a process
//!   that dies while holding it does not block the others.
//! - SQLite: processes sharing the database file take an exclusive `flock` on a file beside it
//!   (`<database>.setup-lock`). The kernel releases it when the process dies, and it waits as
//!   long as the holder needs. An exclusive transaction would not do: the migrator runs
//!   transactions of its own, and a waiter would give up at the busy timeout.

use anyhow::Context as _;
use sea_orm::sqlx::{Connection as _, PgConnection};
use sea_orm::{DatabaseConnection, DbBackend};

/// The advisory lock key of Rampart's set-up ("rampart" in ASCII, then 1).
const ADVISORY_KEY: i64 = 0x7261_6d70_6172_7401;

/// Held while migrating or setting up; [`SetupLock::release`] it when done (dropping it also
/// releases it, less promptly on PostgreSQL).
pub struct SetupLock {
    held: Held,
}

enum Held {
    Postgres(PgConnection),
    #[cfg(unix)]
    File(std::fs::File),
    Nothing,
}

impl SetupLock {
    /// Waits until no other process holds the lock, then holds it.
    ///
    /// # Errors
    /// When the database (or the lock file) cannot be reached.
    pub async fn acquire(db: &DatabaseConnection) -> anyhow::Result<Self> {
        let held = match db.get_database_backend() {
            DbBackend::Postgres => {
                let mut conn = db
                    .get_postgres_connection_pool()
                    .acquire()
                    .await
                    .context("taking a connection for the set-up lock")?
                    // Its own from now on: it closes when released, never back to the pool.
                    .detach();
                sea_orm::sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(ADVISORY_KEY)
                    .execute(&mut conn)
                    .await
                    .context("taking the set-up lock")?;
                Held::Postgres(conn)
            }
            DbBackend::Sqlite => lock_file(db).await?,
            _ => Held::Nothing,
        };
        Ok(Self { held })
    }

    /// Lets the next process in.
    pub async fn release(self) {
        match self.held {
            Held::Postgres(mut conn) => {
                let unlocked = sea_orm::sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(ADVISORY_KEY)
                    .execute(&mut conn)
                    .await;
                if let Err(err) = unlocked {
                    tracing::warn!(%err, "releasing the set-up lock; it ends with its connection");
                }
                let _ = conn.close().await;
            }
            #[cfg(unix)]
            Held::File(file) => drop(file),
            Held::Nothing => {}
        }
    }
}

/// The lock file beside a SQLite database file; nothing for an in-memory database, which no
/// other process can open.
#[cfg(unix)]
async fn lock_file(db: &DatabaseConnection) -> anyhow::Result<Held> {
    let options = db.get_sqlite_connection_pool().connect_options();
    let database = options.get_filename().to_path_buf();
    let name = database.to_string_lossy();
    if name == ":memory:" || name.starts_with("file:") {
        return Ok(Held::Nothing);
    }
    let mut path = database.clone().into_os_string();
    path.push(".setup-lock");
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.to_string_lossy()))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .with_context(|| format!("cannot lock {}", path.to_string_lossy()))?;
        Ok(Held::File(file))
    })
    .await
    .context("set-up lock task")?
}

#[cfg(not(unix))]
async fn lock_file(_db: &DatabaseConnection) -> anyhow::Result<Held> {
    tracing::warn!("processes starting together on one SQLite file are not serialised here");
    Ok(Held::Nothing)
}
