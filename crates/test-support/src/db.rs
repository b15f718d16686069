//! A fresh database per test, removed on `Drop`, panics included.
//!
//! SQLite by default (a file in the database's own temp directory),
//! PostgreSQL when `PRISM_TEST_PG_URL` is set or when a test asks for it
//! (the API tests run every case on both). A PostgreSQL database is created
//! on the server at `PRISM_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432`)
//! with a `prism_test_` name, and dropped with `WITH (FORCE)`; `Drop` runs
//! that on a thread of its own with its own small runtime, so it works from
//! inside a tokio runtime as well as from plain code.

use std::path::{Path, PathBuf};

use sqlx::{Connection, Row};

use crate::dirs::TempDir;

/// The store a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// PostgreSQL when `PRISM_TEST_PG_URL` is set, SQLite otherwise.
    pub fn from_env() -> Backend {
        if std::env::var_os("PRISM_TEST_PG_URL").is_some_and(|v| !v.is_empty()) {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// The PostgreSQL server tests create their databases on (no database name).
pub fn pg_base_url() -> String {
    std::env::var("PRISM_TEST_PG_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".into())
        .trim_end_matches('/')
        .to_owned()
}

/// Creates database `name` on the PostgreSQL server at `base` (a URL without database).
pub async fn create_pg_database(base: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut c = sqlx::PgConnection::connect(&format!("{base}/postgres")).await?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut c).await?;
    c.close().await
}

/// Drops database `name` there, closing whatever connections are still open
/// to it; a database that is not there is no error.
pub async fn drop_pg_database(base: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut c = sqlx::PgConnection::connect(&format!("{base}/postgres")).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut c)
        .await?;
    c.close().await
}

/// Whether database `name` exists on the server at `base`.
pub async fn pg_database_exists(base: &str, name: &str) -> Result<bool, sqlx::Error> {
    let mut c = sqlx::PgConnection::connect(&format!("{base}/postgres")).await?;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut c)
        .await?;
    c.close().await?;
    Ok(n > 0)
}

/// Runs `fut` to completion on a new thread with its own small runtime:
/// usable from synchronous code, from `Drop`, and from inside a runtime
/// (where `block_on` would panic).
pub fn block_on<F>(fut: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for test support")
            .block_on(fut)
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// One test's database and data directory; both removed on `Drop`.
pub struct TestDb {
    backend: Backend,
    /// The PostgreSQL database's name and server; None on SQLite.
    pg: Option<(String, String)>,
    // Dropped after the database (fields drop after `Drop::drop`).
    dir: TempDir,
}

impl TestDb {
    /// SQLite, or PostgreSQL when `PRISM_TEST_PG_URL` is set.
    pub async fn new() -> TestDb {
        TestDb::start(Backend::from_env()).await
    }

    /// [`TestDb::new`] for synchronous tests.
    pub fn new_blocking() -> TestDb {
        TestDb::start_blocking(Backend::from_env())
    }

    pub async fn sqlite() -> TestDb {
        TestDb::start(Backend::Sqlite).await
    }

    pub async fn postgres() -> TestDb {
        TestDb::start(Backend::Postgres).await
    }

    pub async fn start(backend: Backend) -> TestDb {
        let (dir, pg) = TestDb::parts(backend);
        if let Some((base, name)) = &pg {
            create_pg_database(base, name).await.unwrap_or_else(|e| {
                panic!("create a PostgreSQL database for tests at {base} (PRISM_TEST_PG_URL): {e}")
            });
        }
        TestDb { backend, pg, dir }
    }

    /// [`TestDb::start`] for synchronous tests.
    pub fn start_blocking(backend: Backend) -> TestDb {
        let (dir, pg) = TestDb::parts(backend);
        if let Some((base, name)) = pg.clone() {
            block_on(async move { create_pg_database(&base, &name).await.map_err(|e| (base, e)) }).unwrap_or_else(
                |(base, e)| panic!("create a PostgreSQL database for tests at {base} (PRISM_TEST_PG_URL): {e}"),
            );
        }
        TestDb { backend, pg, dir }
    }

    fn parts(backend: Backend) -> (TempDir, Option<(String, String)>) {
        let dir = TempDir::new("db");
        let pg = (backend == Backend::Postgres)
            .then(|| (pg_base_url(), format!("prism_test_{}", uuid::Uuid::new_v4().simple())));
        (dir, pg)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The test's data directory (the SQLite file lives in it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The database URL: `sqlite://DIR/prism.db` (where `prism serve
    /// --data-dir DIR` keeps its store by default) or the PostgreSQL database.
    pub fn url(&self) -> String {
        match &self.pg {
            Some((base, name)) => format!("{base}/{name}"),
            None => format!("sqlite://{}", self.sqlite_path().display()),
        }
    }

    /// What to pass as the server's database URL: None on SQLite (the
    /// server's default file in the data directory), the URL on PostgreSQL.
    pub fn server_url(&self) -> Option<String> {
        self.pg.as_ref().map(|_| self.url())
    }

    /// The PostgreSQL database's name; None on SQLite.
    pub fn pg_name(&self) -> Option<&str> {
        self.pg.as_ref().map(|(_, name)| name.as_str())
    }

    fn sqlite_path(&self) -> PathBuf {
        self.dir.path().join("prism.db")
    }

    /// Jobs a stopped server left running or leased, one line each
    /// (`#id kind state lease_owner`); empty when the store was never created.
    pub async fn leftover_jobs(&self) -> Vec<String> {
        leftover_jobs(self.url(), self.pg.is_none().then(|| self.sqlite_path())).await
    }

    /// [`TestDb::leftover_jobs`] from synchronous code or `Drop`.
    pub fn leftover_jobs_blocking(&self) -> Vec<String> {
        block_on(leftover_jobs(self.url(), self.pg.is_none().then(|| self.sqlite_path())))
    }

    /// Panics listing the jobs left running or leased, unless the thread
    /// is already panicking (the first failure is the one to read).
    pub fn assert_no_leftover_jobs(&self, jobs: &[String]) {
        if !jobs.is_empty() && !std::thread::panicking() {
            panic!(
                "the test ended with {} job(s) still running or leased (every job must finish or be handed back when the server stops):\n  {}",
                jobs.len(),
                jobs.join("\n  ")
            );
        }
    }
}

async fn leftover_jobs(url: String, sqlite_file: Option<PathBuf>) -> Vec<String> {
    if sqlite_file.is_some_and(|f| !f.exists()) {
        return Vec::new();
    }
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connect to the test database to check its jobs: {e}"));
    let rows = sqlx::query(
        "SELECT id, kind, state, lease_owner FROM jobs \
         WHERE state = 'running' OR lease_owner IS NOT NULL OR lease_expires_at IS NOT NULL ORDER BY id",
    )
    .fetch_all(&mut c)
    .await;
    let _ = c.close().await;
    match rows {
        Ok(rows) => rows
            .iter()
            .map(|r| {
                format!(
                    "#{} {} {} lease_owner={}",
                    r.get::<i64, _>(0),
                    r.get::<String, _>(1),
                    r.get::<String, _>(2),
                    r.get::<Option<String>, _>(3).unwrap_or_else(|| "-".into())
                )
            })
            .collect(),
        // A server that never started has no tables yet.
        Err(e) if is_missing_table(&e) => Vec::new(),
        Err(e) => panic!("read the test database's jobs: {e}"),
    }
}

fn is_missing_table(e: &sqlx::Error) -> bool {
    let text = e.to_string();
    text.contains("no such table") || (text.contains("relation") && text.contains("does not exist"))
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, name)) = self.pg.take() {
            let result = block_on(async move { drop_pg_database(&base, &name).await.map_err(|e| (name, e)) });
            if let Err((name, e)) = result {
                if !std::thread::panicking() {
                    panic!("drop the test database {name}: {e}");
                }
                eprintln!("could not drop the test database {name}: {e}");
            }
        }
        // `dir` is removed when the field drops.
    }
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb")
            .field("backend", &self.backend)
            .field("database", &self.pg_name())
            .field("dir", &self.dir())
            .finish()
    }
}
