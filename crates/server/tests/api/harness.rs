//! Starts the real server in-process on a random port, on a fresh SQLite file
//! or a fresh PostgreSQL database, and talks to it over real HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;

use prism_server::app::{launch, prepare};
use prism_server::config::{Secret, Settings};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::sync::watch;

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
pub const PASSWORD: &str = "user-password-for-tests";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn pg_base_url() -> String {
    std::env::var("PRISM_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub struct TestApp {
    pub base: String,
    pub backend: Backend,
    pub http: reqwest::Client,
    pub admin: String,
    pub data_dir: PathBuf,
    pub state: prism_server::app::AppState,
    shutdown: watch::Sender<bool>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pg_db: Option<String>,
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

pub async fn create_pg_database() -> (String, String) {
    let name = unique("prism_test_");
    let mut c = sqlx::PgConnection::connect(&format!("{}/postgres", pg_base_url()))
        .await
        .expect("PostgreSQL for tests (PRISM_TEST_PG_URL)");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    (name.clone(), format!("{}/{name}", pg_base_url()))
}

pub async fn drop_pg_database(name: &str) {
    if let Ok(mut c) = sqlx::PgConnection::connect(&format!("{}/postgres", pg_base_url())).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut c)
            .await;
    }
}

pub fn test_settings(data_dir: PathBuf, database_url: Option<String>) -> Settings {
    Settings {
        build: prism_server::config::BuildConfig {
            work_dir: data_dir.join("builds"),
            base_sources: data_dir.join("base-sources"),
            docker_config: None,
            default_executor: "local".into(),
        },
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir,
        database_url: database_url.map(Secret),
        secret_key: None,
        admin_password: Some(Secret(ADMIN_PASSWORD.into())),
        log_json: false,
        instance_id: unique("test-"),
        job_lease_ms: 30_000,
        job_poll_ms: 50,
        session_ttl_ms: 3_600_000,
        secure_cookies: false,
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        let data_dir = std::env::temp_dir().join(unique("prism-test-"));
        std::fs::create_dir_all(&data_dir).unwrap();
        let (pg_db, url) = match backend {
            Backend::Sqlite => (None, None),
            Backend::Postgres => {
                let (name, url) = create_pg_database().await;
                (Some(name), Some(url))
            }
        };
        let state = prepare(test_settings(data_dir.clone(), url))
            .await
            .expect("server prepares");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let (tx, rx) = watch::channel(false);
        let server = tokio::spawn(launch(state.clone(), listener, rx));
        let http = reqwest::Client::builder().cookie_store(false).build().unwrap();
        let mut app = TestApp {
            base: format!("http://{addr}"),
            backend,
            http,
            admin: String::new(),
            data_dir,
            state,
            shutdown: tx,
            server: Some(server),
            pg_db,
        };
        app.admin = app.token_for("admin", ADMIN_PASSWORD).await;
        app
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
        self.act(&id, "build_succeeded", &self.admin, json!({"commit_sha": "0123456789abcdef0123456789abcdef01234567", "image_digest": format!("sha256:{}", "a".repeat(64))})).await;
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
        let mut c = self.state.store.conn().await.unwrap();
        sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *c)
            .await
            .unwrap()
    }

    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(h) = self.server.take() {
            h.await.unwrap().unwrap();
        }
        if let Some(db) = self.pg_db.take() {
            drop_pg_database(&db).await;
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Runs the same test body against SQLite and PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn body($app: &$crate::harness::TestApp) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::harness::TestApp::spawn($crate::harness::Backend::Sqlite).await;
                body(&app).await;
                app.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let app = $crate::harness::TestApp::spawn($crate::harness::Backend::Postgres).await;
                body(&app).await;
                app.stop().await;
            }
        }
    };
}
