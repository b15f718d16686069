//! Prism's store: one API over SQLite (the embedded default) and PostgreSQL
//! (several instances sharing the work). Queries are written once, in the SQL
//! both engines accept, and run through sqlx's `Any` driver; only the schema
//! migrations differ per engine.
//!
//! Repository functions take `&mut AnyConnection`, so the same function runs
//! on a pooled connection for a read or inside a [`Tx`] for a write; every
//! write that changes a record also appends its audit event in the same
//! transaction, so a change and its audit entry land together or not at all.

pub mod address_policy;
pub mod app_secrets;
pub mod apps;
pub mod audit;
pub mod backup;
pub mod base_images;
pub mod builds;
pub mod cli_logins;
pub mod clusters;
pub mod credentials;
pub mod deploys;
pub mod directory;
pub mod environments;
mod error;
pub mod governance;
pub mod idempotency;
pub mod jobs;
pub mod notifications;
pub mod ops_tools;
mod per_application;
pub mod projects;
pub mod releases;
pub mod rollouts;
pub mod sealed;
pub mod slots;
pub mod stacks;
mod stored;
pub mod template_sets;
pub mod tokens;
pub mod users;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

pub use error::{Result, StoreError};
use sqlx::any::AnyPoolOptions;
use sqlx::pool::PoolConnection;
pub use sqlx::AnyConnection;
use sqlx::{Any, AnyPool, Executor};
use tokio::sync::{Mutex, OwnedMutexGuard};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The store handle: a connection pool plus, on SQLite, the process-wide
/// writer lock (SQLite admits one writer; taking the lock before `BEGIN`
/// turns would-be `SQLITE_BUSY` upgrades into an orderly queue).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    write_lock: Option<Arc<Mutex<()>>>,
}

/// A write transaction. Dereferences to the connection for repository calls.
pub struct Tx {
    inner: sqlx::Transaction<'static, Any>,
    _write: Option<OwnedMutexGuard<()>>,
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        self.inner.commit().await?;
        Ok(())
    }
}

impl std::ops::Deref for Tx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.inner
    }
}
impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.inner
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Store {
    /// Opens (creating if needed) and migrates the store at `url`:
    /// `sqlite://path/to/prism.db` or `postgres://...`.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Config(
                "database URL must start with sqlite:// or postgres://".into(),
            ));
        };
        // SQLite has one writer and its readers share two cores here: a few
        // connections serve as well as many, and each holds its own page cache.
        let max_connections = if backend == Backend::Sqlite {
            max_connections.min(6)
        } else {
            max_connections
        };
        let mut options = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30));
        let url = if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                    )
                    .await?;
                    Ok(())
                })
            });
            if url.contains('?') {
                url.to_owned()
            } else {
                format!("{url}?mode=rwc")
            }
        } else {
            // No JIT compilation of queries: PostgreSQL compiles a statement
            // with LLVM once its estimated cost passes jit_above_cost, which
            // a page merged over 500 applications does (an estimate of
            // 101,768 for 3.3 ms of work): 1.5 ms of compiling on every
            // call and 23 ms on a connection's first (EXPLAIN ANALYZE at a
            // million releases). Prism's statements read pages by index;
            // none runs long enough to gain from compiling.
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("SET jit = off").await?;
                    Ok(())
                })
            });
            url.to_owned()
        };
        let pool = options.connect(&url).await?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        refuse_newer_schema(&pool, backend).await?;
        migrator.run(&pool).await?;
        Ok(Self {
            pool,
            backend,
            write_lock: (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(()))),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A pooled connection for reads.
    pub async fn conn(&self) -> Result<PoolConnection<Any>> {
        Ok(self.pool.acquire().await?)
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx> {
        let guard = match &self.write_lock {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        // On SQLite take the write lock at BEGIN: a deferred transaction that
        // read first and then writes fails at once with SQLITE_BUSY when
        // another connection (outside this process's writer lock, e.g. a
        // rollback still in flight) holds it; IMMEDIATE waits busy_timeout.
        let inner = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(Tx { inner, _write: guard })
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Refuses a database migrated by a newer Prism than this binary: running
/// old code over a newer schema would misread or damage its records.
async fn refuse_newer_schema(pool: &sqlx::AnyPool, backend: Backend) -> Result<()> {
    let exists: i64 = match backend {
        Backend::Sqlite => {
            sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
                .fetch_one(pool)
                .await?
        }
        Backend::Postgres => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'",
            )
            .fetch_one(pool)
            .await?
        }
    };
    if exists == 0 {
        return Ok(());
    }
    let database: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations")
        .fetch_one(pool)
        .await?;
    let binary = backup::known_schema_version(backend);
    if database > binary {
        return Err(StoreError::NewerSchema { database, binary });
    }
    Ok(())
}

/// Milliseconds since the Unix epoch, the store's one time format.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Flags are stored as 0/1 integers (portable across both engines) and shown as booleans.
pub(crate) fn ser_flag<S: serde::Serializer>(v: &i64, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_bool(*v != 0)
}
