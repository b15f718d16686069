//! The real server in-process on port 0, over real HTTP, on a [`TestDb`].
//!
//! The server runs on a thread with its own runtime, so `Drop` can stop it
//! and wait for it from anywhere (inside the test's runtime too) without
//! deadlocking; the test reads the store through a pool of its own. At its
//! end (`stop().await`, or `Drop` as the safety net) the server is shut down
//! gracefully and the store is checked for jobs left running or leased.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use prism_server::app::{launch, prepare};
use prism_server::config::{BuildConfig, NotifyConfig, Secret, Settings};
use prism_store::Store;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};

use crate::db::{Backend, TestDb};

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
pub const PASSWORD: &str = "user-password-for-tests";

/// How long a stopping server may take to hand its jobs back.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// The public URL the in-process server's notifications link to.
pub const PUBLIC_URL: &str = "https://prism.example.test";

/// The settings the in-process server runs with: fast job polling, the
/// known admin password, everything under `data_dir`; notifications time
/// out after 2 s and are tried 3 times, 300 ms apart and then 600 ms.
pub fn test_settings(data_dir: PathBuf, database_url: Option<String>) -> Settings {
    Settings {
        build: BuildConfig {
            work_dir: data_dir.join("builds"),
            base_sources: data_dir.join("base-sources"),
            docker_config: None,
            default_executor: "local".into(),
            ..BuildConfig::under(&data_dir)
        },
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir,
        database_url: database_url.map(Secret),
        secret_key: None,
        previous_secret_key: None,
        admin_password: Some(Secret(ADMIN_PASSWORD.into())),
        log_json: false,
        instance_id: format!("test-{}", uuid::Uuid::new_v4().simple()),
        job_lease_ms: 30_000,
        job_poll_ms: 50,
        session_ttl_ms: 3_600_000,
        secure_cookies: false,
        clock: prism_server::clock::Clock::system(),
        public_url: Some(PUBLIC_URL.into()),
        notify: NotifyConfig {
            timeout: Duration::from_secs(2),
            max_attempts: 3,
            retry_base_ms: 300,
            log_retention_ms: 30 * 86_400_000,
        },
        directory: None,
        local_login: Default::default(),
        oidc: None,
    }
}

/// The server's thread: told to stop by `shutdown`, reports on `done`.
struct ServerThread {
    shutdown: watch::Sender<bool>,
    done: Option<mpsc::Receiver<Result<(), String>>>,
}

impl ServerThread {
    /// Starts `prepare` + `launch` on a thread of its own and returns once
    /// the server listens.
    async fn start(settings: Settings) -> (ServerThread, SocketAddr) {
        let (ready_tx, ready_rx) = oneshot::channel::<Result<SocketAddr, String>>();
        let (done_tx, done_rx) = mpsc::channel();
        let (shutdown, rx) = watch::channel(false);
        std::thread::Builder::new()
            .name("prism-test-server".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("prism-test-server")
                    .enable_all()
                    .build()
                    .expect("the test server's runtime");
                let result = rt.block_on(async move {
                    let state = match prepare(settings).await {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("the server did not prepare: {e:#}")));
                            return Ok(());
                        }
                    };
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .map_err(|e| e.to_string())?;
                    let addr = listener.local_addr().map_err(|e| e.to_string())?;
                    let _ = ready_tx.send(Ok(addr));
                    launch(state, listener, rx).await.map_err(|e| format!("{e:#}"))
                });
                let _ = done_tx.send(result);
            })
            .expect("start the test server's thread");
        let addr = ready_rx
            .await
            .unwrap_or_else(|_| Err("the test server's thread ended before listening".into()))
            .unwrap_or_else(|e| panic!("{e}"));
        (
            ServerThread {
                shutdown,
                done: Some(done_rx),
            },
            addr,
        )
    }

    /// Tells the server to stop and takes what waits for it (None when
    /// already stopped).
    fn begin_stop(&mut self) -> Option<mpsc::Receiver<Result<(), String>>> {
        let _ = self.shutdown.send(true);
        self.done.take()
    }
}

/// What waiting for a stopping server found.
fn stopped(outcome: Result<Result<(), String>, mpsc::RecvTimeoutError>) -> Result<(), String> {
    match outcome {
        Ok(r) => r.map_err(|e| format!("the server ended with an error: {e}")),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "the server did not stop within {} s (a job that ignores shutdown?)",
            STOP_TIMEOUT.as_secs()
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("the server's thread panicked".into()),
    }
}

/// A real Prism server in-process, reached over real HTTP, with an admin
/// token ready. Stop it with [`TestApp::stop`]; `Drop` stops it too.
pub struct TestApp {
    pub base: String,
    pub backend: Backend,
    pub http: reqwest::Client,
    /// The admin's API token.
    pub admin: String,
    pub data_dir: PathBuf,
    /// The test's own pool on the server's store.
    pub store: Store,
    /// The server's clock for deploy windows: `clock.set(ms)` pins it.
    pub clock: prism_server::clock::Clock,
    server: ServerThread,
    // Dropped last: the database and the data directory.
    db: TestDb,
}

impl TestApp {
    /// A server on a fresh database of `backend`.
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::on(TestDb::start(backend).await).await
    }

    /// A server on the store `PRISM_TEST_PG_URL` chooses (see [`Backend::from_env`]).
    pub async fn new() -> TestApp {
        TestApp::on(TestDb::new().await).await
    }

    /// A server on the given database.
    pub async fn on(db: TestDb) -> TestApp {
        let data_dir = db.dir().to_path_buf();
        let settings = test_settings(data_dir.clone(), db.server_url());
        let clock = settings.clock.clone();
        let (server, addr) = ServerThread::start(settings).await;
        let store = Store::open(&db.url(), 4)
            .await
            .expect("the test's own pool on the store");
        let http = reqwest::Client::builder().cookie_store(false).build().unwrap();
        let mut app = TestApp {
            base: format!("http://{addr}"),
            backend: db.backend(),
            http,
            admin: String::new(),
            data_dir,
            store,
            clock,
            server,
            db,
        };
        app.admin = app.token_for("admin", ADMIN_PASSWORD).await;
        app
    }

    pub fn db(&self) -> &TestDb {
        &self.db
    }

    /// Stops the server gracefully, checks that no job was left running or
    /// leased, then removes the database and the data directory.
    pub async fn stop(mut self) {
        self.store.close().await;
        if let Some(done) = self.server.begin_stop() {
            let outcome = tokio::task::spawn_blocking(move || done.recv_timeout(STOP_TIMEOUT))
                .await
                .expect("wait for the server");
            stopped(outcome).unwrap_or_else(|e| panic!("{e}"));
        }
        let jobs = self.db.leftover_jobs().await;
        self.db.assert_no_leftover_jobs(&jobs);
    }

    pub async fn token_for(&self, username: &str, password: &str) -> String {
        let (s, body) = self
            .call(
                Method::POST,
                "/api/v1/auth/token",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "token for {username}: {body}");
        body["secret"].as_str().unwrap().to_owned()
    }

    /// One request; returns the status and the JSON body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Asserts success and returns the body.
    pub async fn ok(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method.clone(), path, Some(token), body).await;
        assert!(s.is_success(), "{method} {path} -> {s}: {v}");
        v
    }

    /// A console page as `user` (created by [`TestApp::user`]) sees it,
    /// signed in through the login form: its status and HTML.
    pub async fn web_page(&self, user: &str, path: &str) -> (StatusCode, String) {
        let http = crate::console_login::client();
        let session = crate::console_login::session(&http, &self.base, user, PASSWORD).await;
        let page = http
            .get(format!("{}{path}", self.base))
            .header("cookie", session)
            .send()
            .await
            .unwrap();
        (page.status(), page.text().await.unwrap())
    }

    /// Creates a user with the given roles in `project` and returns their token.
    pub async fn user(&self, name: &str, project: Option<&str>, roles: &[&str]) -> String {
        self.ok(
            Method::POST,
            "/api/v1/users",
            &self.admin,
            Some(json!({"username": name, "password": PASSWORD})),
        )
        .await;
        if let Some(p) = project {
            for r in roles {
                self.ok(
                    Method::POST,
                    &format!("/api/v1/projects/{p}/members"),
                    &self.admin,
                    Some(json!({"username": name, "role": r})),
                )
                .await;
            }
        }
        self.token_for(name, PASSWORD).await
    }

    pub async fn project_with_app(&self, project: &str, app: &str) {
        self.ok(
            Method::POST,
            "/api/v1/projects",
            &self.admin,
            Some(json!({"name": project})),
        )
        .await;
        self.ok(
            Method::POST,
            "/api/v1/applications",
            &self.admin,
            Some(json!({"project": project, "name": app, "git_url": format!("https://git.example/{app}.git")})),
        )
        .await;
    }

    /// Creates a release and drives it to `built` as the admin (the engine's role).
    pub async fn built_release(&self, app: &str) -> String {
        let r = self
            .ok(
                Method::POST,
                "/api/v1/releases",
                &self.admin,
                Some(json!({"application": app, "git_ref": "main", "change_note": "test"})),
            )
            .await;
        let id = r["id"].as_str().unwrap().to_owned();
        self.act(&id, "start_build", &self.admin, json!({})).await;
        self.act(
            &id,
            "build_succeeded",
            &self.admin,
            json!({"commit_sha": "0123456789abcdef0123456789abcdef01234567", "image_digest": format!("sha256:{}", "a".repeat(64))}),
        )
        .await;
        id
    }

    pub async fn act(&self, id: &str, action: &str, token: &str, body: Value) -> Value {
        self.ok(
            Method::POST,
            &format!("/api/v1/releases/{id}/actions/{action}"),
            token,
            Some(body),
        )
        .await
    }

    pub async fn try_act(&self, id: &str, action: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.post(&format!("/api/v1/releases/{id}/actions/{action}"), token, body)
            .await
    }

    /// Drives a built release into `deployed` in `env` (admin acting as engine).
    pub async fn deploy_to(&self, id: &str, env: &str) {
        self.act(id, "promote", &self.admin, json!({"environment": env})).await;
        self.act(id, "deploy", &self.admin, json!({"environment": env})).await;
        self.act(id, "deploy_succeeded", &self.admin, json!({})).await;
    }

    /// Counts rows of a table through the store (for "nothing was written" checks).
    pub async fn count(&self, table: &str) -> i64 {
        let mut c = self.store.conn().await.unwrap();
        sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *c)
            .await
            .unwrap()
    }
}

impl Drop for TestApp {
    /// The safety net: stops the server (waiting on this thread; the server
    /// has its own runtime) and checks its jobs, unless `stop` already did.
    fn drop(&mut self) {
        let Some(done) = self.server.begin_stop() else {
            return;
        };
        let outcome = stopped(done.recv_timeout(STOP_TIMEOUT));
        if std::thread::panicking() {
            return;
        }
        outcome.unwrap_or_else(|e| panic!("{e}"));
        let jobs = self.db.leftover_jobs_blocking();
        self.db.assert_no_leftover_jobs(&jobs);
    }
}

/// Runs the same test body against SQLite and PostgreSQL: a module `$name`
/// with the tests `sqlite` and `postgres`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn body($app: &$crate::TestApp) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::TestApp::spawn($crate::Backend::Sqlite).await;
                body(&app).await;
                app.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let app = $crate::TestApp::spawn($crate::Backend::Postgres).await;
                body(&app).await;
                app.stop().await;
            }
        }
    };
}
