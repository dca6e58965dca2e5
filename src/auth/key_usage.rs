//! When each API key was last used, recorded off the request path.
//!
//! A request never writes for it: it notes the use in memory (coalesced per key, at most once a
//! minute), and one writer task per process stores the notes on a connection of its own whose
//! waits are bounded (SQLite's busy timeout, PostgreSQL's lock timeout). A busy database makes
//! the writer retry later; it never holds a connection of the shared pool, never makes a request
//! wait or fail, and never moves `last_used_at` backwards.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entity::api_key;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::sqlx::postgres::PgPoolOptions;
use sea_orm::sqlx::sqlite::SqlitePoolOptions;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, SqlxPostgresConnector,
    SqlxSqliteConnector,
};
use tokio::sync::Notify;
use uuid::Uuid;

/// A key's use is stored at most this often.
const RESOLUTION: Duration = Duration::from_secs(60);
/// Keys waiting to be stored, at most; more in one flush interval are dropped (it is a hint).
const MAX_PENDING: usize = 10_000;
/// How long the writer waits for the database's write lock before trying again later.
const LOCK_WAIT: Duration = Duration::from_millis(250);
/// Longest pause between attempts while the database stays busy.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Notes {
    /// Uses not stored yet: key → when.
    pending: HashMap<Uuid, DateTime<Utc>>,
    /// When this process last noted each key, so a burst of requests notes it once.
    noted: HashMap<Uuid, Instant>,
}

struct Inner {
    notes: Mutex<Notes>,
    wake: Arc<Notify>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Lets the writer see that nobody records any more, and end.
        self.wake.notify_one();
    }
}

/// Records API key use; cheap to clone (shared by the whole process).
#[derive(Clone)]
pub struct KeyUsage {
    inner: Arc<Inner>,
}

impl KeyUsage {
    /// Starts the writer for `db`. Must run inside the Tokio runtime.
    pub fn start(db: &DatabaseConnection) -> Self {
        let wake = Arc::new(Notify::new());
        let inner = Arc::new(Inner {
            notes: Mutex::new(Notes::default()),
            wake: wake.clone(),
        });
        tokio::spawn(write_notes(
            Arc::downgrade(&inner),
            wake,
            writer_connection(db),
        ));
        Self { inner }
    }

    /// Notes that `key_id` was used `at`; `stored` is what its row says now. Never waits.
    pub fn record(&self, key_id: Uuid, stored: Option<DateTime<Utc>>, at: DateTime<Utc>) {
        if stored
            .is_some_and(|t| at - t < chrono::Duration::from_std(RESOLUTION).unwrap_or_default())
        {
            return;
        }
        {
            let mut notes = self.inner.notes.lock().expect("key usage lock");
            let now = Instant::now();
            if notes
                .noted
                .get(&key_id)
                .is_some_and(|t| now.duration_since(*t) < RESOLUTION)
            {
                return;
            }
            if notes.noted.len() >= MAX_PENDING {
                notes
                    .noted
                    .retain(|_, t| now.duration_since(*t) < RESOLUTION);
            }
            if notes.pending.len() >= MAX_PENDING && !notes.pending.contains_key(&key_id) {
                return;
            }
            notes.noted.insert(key_id, now);
            let when = notes.pending.entry(key_id).or_insert(at);
            *when = (*when).max(at);
        }
        self.inner.wake.notify_one();
    }
}

/// A one-connection pool beside the shared one, with bounded lock waits.
fn writer_connection(db: &DatabaseConnection) -> DatabaseConnection {
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            let options = (*db.get_sqlite_connection_pool().connect_options())
                .clone()
                .busy_timeout(LOCK_WAIT);
            SqlxSqliteConnector::from_sqlx_sqlite_pool(
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_lazy_with(options),
            )
        }
        DbBackend::Postgres => {
            let options = (*db.get_postgres_connection_pool().connect_options())
                .clone()
                .options([
                    ("lock_timeout", format!("{}ms", LOCK_WAIT.as_millis())),
                    ("statement_timeout", "5000ms".to_string()),
                ]);
            SqlxPostgresConnector::from_sqlx_postgres_pool(
                PgPoolOptions::new()
                    .max_connections(1)
                    .connect_lazy_with(options),
            )
        }
        _ => db.clone(),
    }
}

/// Stores noted uses until the recorder is dropped.
async fn write_notes(notes: Weak<Inner>, wake: Arc<Notify>, db: DatabaseConnection) {
    let mut backoff = LOCK_WAIT;
    loop {
        let batch = {
            let Some(inner) = notes.upgrade() else {
                break;
            };
            let mut notes = inner.notes.lock().expect("key usage lock");
            std::mem::take(&mut notes.pending)
        };
        let mut failed = HashMap::new();
        for (key_id, at) in batch {
            // Only forward: a late note never replaces a newer use.
            let stored = api_key::Entity::update_many()
                .col_expr(api_key::Column::LastUsedAt, Expr::value(Some(at)))
                .filter(api_key::Column::Id.eq(key_id))
                .filter(
                    Condition::any()
                        .add(api_key::Column::LastUsedAt.is_null())
                        .add(api_key::Column::LastUsedAt.lt(at)),
                )
                .exec(&db)
                .await;
            if let Err(err) = stored {
                tracing::debug!(%err, "API key use not stored yet; retrying");
                failed.insert(key_id, at);
            }
        }
        if failed.is_empty() {
            backoff = LOCK_WAIT;
            wake.notified().await;
            continue;
        }
        let Some(inner) = notes.upgrade() else {
            break;
        };
        {
            let mut notes = inner.notes.lock().expect("key usage lock");
            for (key_id, at) in failed {
                let when = notes.pending.entry(key_id).or_insert(at);
                *when = (*when).max(at);
            }
        }
        drop(inner);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
