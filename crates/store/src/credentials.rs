//! Where builds get their secrets: image registries, git credentials and
//! Jenkins executors. Passwords and tokens are stored sealed by the server's
//! secret box (`*_enc`), never returned by the API and never logged.

use serde::Serialize;
use sqlx::AnyConnection;

use crate::error::unique;
use crate::{now_ms, ser_flag, Result, StoreError};

#[derive(Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Registry {
    #[serde(skip)]
    pub id: i64,
    pub name: String,
    /// `host[:port]` as in image references.
    pub host: String,
    /// Plain HTTP instead of HTTPS (a registry on a private network).
    #[serde(serialize_with = "ser_flag")]
    #[schema(value_type = bool)]
    pub insecure_http: i64,
    pub username: Option<String>,
    #[serde(skip)]
    pub password_enc: Option<Vec<u8>>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("username", &self.username)
            .field("password", &self.password_enc.as_ref().map(|_| "<sealed>"))
            .finish()
    }
}

const REGISTRY_COLS: &str = "id, name, host, insecure_http, username, password_enc, created_at, updated_at";

pub struct RegistryFields<'a> {
    pub host: &'a str,
    pub insecure_http: bool,
    pub username: Option<&'a str>,
    pub password_enc: Option<Vec<u8>>,
}

pub async fn create_registry(c: &mut AnyConnection, name: &str, f: RegistryFields<'_>) -> Result<Registry> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO registries (name, host, insecure_http, username, password_enc, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(name)
    .bind(f.host)
    .bind(f.insecure_http as i64)
    .bind(f.username)
    .bind(f.password_enc)
    .bind(now)
    .execute(&mut *c)
    .await
    .map_err(unique("registry", "name", name))?;
    registry_by_name(c, name).await
}

/// Replaces host, scheme and user; the password only when one is given
/// (`clear_password` removes it).
pub async fn update_registry(
    c: &mut AnyConnection,
    name: &str,
    f: RegistryFields<'_>,
    clear_password: bool,
) -> Result<Registry> {
    let n = sqlx::query(
        "UPDATE registries SET host = $2, insecure_http = $3, username = $4, \
         password_enc = CASE WHEN $6 = 1 THEN NULL ELSE COALESCE($5, password_enc) END, updated_at = $7 WHERE name = $1",
    )
    .bind(name)
    .bind(f.host)
    .bind(f.insecure_http as i64)
    .bind(f.username)
    .bind(f.password_enc)
    .bind(clear_password as i64)
    .bind(now_ms())
    .execute(&mut *c)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(StoreError::not_found("registry", name));
    }
    registry_by_name(c, name).await
}

pub async fn registry_by_name(c: &mut AnyConnection, name: &str) -> Result<Registry> {
    sqlx::query_as(&format!("SELECT {REGISTRY_COLS} FROM registries WHERE name = $1"))
        .bind(name)
        .fetch_optional(c)
        .await?
        .ok_or_else(|| StoreError::not_found("registry", name))
}

pub async fn registry(c: &mut AnyConnection, id: i64) -> Result<Registry> {
    sqlx::query_as(&format!("SELECT {REGISTRY_COLS} FROM registries WHERE id = $1"))
        .bind(id)
        .fetch_optional(c)
        .await?
        .ok_or_else(|| StoreError::not_found("registry", id))
}

pub async fn list_registries(c: &mut AnyConnection) -> Result<Vec<Registry>> {
    Ok(
        sqlx::query_as(&format!("SELECT {REGISTRY_COLS} FROM registries ORDER BY name"))
            .fetch_all(c)
            .await?,
    )
}

pub async fn delete_registry(c: &mut AnyConnection, name: &str) -> Result<()> {
    let r = registry_by_name(c, name).await?;
    let bases: Vec<String> = sqlx::query_scalar("SELECT name FROM base_images WHERE registry_id = $1 ORDER BY name")
        .bind(r.id)
        .fetch_all(&mut *c)
        .await?;
    if !bases.is_empty() {
        return Err(StoreError::InUse(format!(
            "base images {} live in this registry",
            bases.join(", ")
        )));
    }
    sqlx::query("DELETE FROM registries WHERE id = $1")
        .bind(r.id)
        .execute(c)
        .await?;
    Ok(())
}

/// A username and password (or access token) for git over HTTP(S).
#[derive(Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct GitCredential {
    pub name: String,
    pub username: String,
    #[serde(skip)]
    pub password_enc: Vec<u8>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for GitCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitCredential")
            .field("name", &self.name)
            .field("username", &self.username)
            .field("password", &"<sealed>")
            .finish()
    }
}

const GIT_COLS: &str = "name, username, password_enc, created_at, updated_at";

/// Creates the credential or replaces its username and password.
pub async fn put_git_credential(
    c: &mut AnyConnection,
    name: &str,
    username: &str,
    password_enc: Vec<u8>,
) -> Result<GitCredential> {
    let now = now_ms();
    let n = sqlx::query("UPDATE git_credentials SET username = $2, password_enc = $3, updated_at = $4 WHERE name = $1")
        .bind(name)
        .bind(username)
        .bind(password_enc.clone())
        .bind(now)
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 0 {
        sqlx::query(
            "INSERT INTO git_credentials (name, username, password_enc, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(name)
        .bind(username)
        .bind(password_enc)
        .bind(now)
        .execute(&mut *c)
        .await
        .map_err(unique("git credential", "name", name))?;
    }
    git_credential(c, name).await
}

pub async fn git_credential(c: &mut AnyConnection, name: &str) -> Result<GitCredential> {
    sqlx::query_as(&format!("SELECT {GIT_COLS} FROM git_credentials WHERE name = $1"))
        .bind(name)
        .fetch_optional(c)
        .await?
        .ok_or_else(|| StoreError::not_found("git credential", name))
}

pub async fn list_git_credentials(c: &mut AnyConnection) -> Result<Vec<GitCredential>> {
    Ok(
        sqlx::query_as(&format!("SELECT {GIT_COLS} FROM git_credentials ORDER BY name"))
            .fetch_all(c)
            .await?,
    )
}

pub async fn delete_git_credential(c: &mut AnyConnection, name: &str) -> Result<()> {
    let n = sqlx::query("DELETE FROM git_credentials WHERE name = $1")
        .bind(name)
        .execute(c)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::not_found("git credential", name));
    }
    Ok(())
}

/// A remote build executor: one parameterised Jenkins job, or a Kubernetes
/// build runner (a cluster and namespace whose Jobs run the builds).
#[derive(Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ExecutorRecord {
    pub name: String,
    /// `jenkins` or `kubernetes`
    pub kind: String,
    pub url: String,
    /// The job's path, folders separated by `/`.
    pub job: String,
    pub username: String,
    #[serde(skip)]
    pub token_enc: Vec<u8>,
    /// A Kubernetes runner's settings (JSON; `{}` for Jenkins).
    #[serde(serialize_with = "raw_json")]
    #[schema(value_type = Object)]
    pub settings: String,
    pub created_at: i64,
    pub updated_at: i64,
}

fn raw_json<S: serde::Serializer>(v: &str, s: S) -> std::result::Result<S::Ok, S::Error> {
    serde_json::from_str::<serde_json::Value>(v)
        .unwrap_or(serde_json::Value::Null)
        .serialize(s)
}

impl std::fmt::Debug for ExecutorRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutorRecord")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("job", &self.job)
            .field("username", &self.username)
            .field("token", &"<sealed>")
            .field("settings", &self.settings)
            .finish()
    }
}

const EXECUTOR_COLS: &str = "name, kind, url, job, username, token_enc, settings, created_at, updated_at";

pub struct NewExecutor<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub url: &'a str,
    pub job: &'a str,
    pub username: &'a str,
    pub token_enc: Vec<u8>,
    /// JSON; `{}` for Jenkins.
    pub settings: &'a str,
}

pub async fn create_executor(c: &mut AnyConnection, n: NewExecutor<'_>) -> Result<ExecutorRecord> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO executors (name, kind, url, job, username, token_enc, settings, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(n.name)
    .bind(n.kind)
    .bind(n.url)
    .bind(n.job)
    .bind(n.username)
    .bind(n.token_enc)
    .bind(n.settings)
    .bind(now)
    .execute(&mut *c)
    .await
    .map_err(unique("executor", "name", n.name))?;
    executor(c, n.name).await
}

pub async fn executor(c: &mut AnyConnection, name: &str) -> Result<ExecutorRecord> {
    sqlx::query_as(&format!("SELECT {EXECUTOR_COLS} FROM executors WHERE name = $1"))
        .bind(name)
        .fetch_optional(c)
        .await?
        .ok_or_else(|| StoreError::not_found("executor", name))
}

pub async fn list_executors(c: &mut AnyConnection) -> Result<Vec<ExecutorRecord>> {
    Ok(
        sqlx::query_as(&format!("SELECT {EXECUTOR_COLS} FROM executors ORDER BY name"))
            .fetch_all(c)
            .await?,
    )
}

pub async fn delete_executor(c: &mut AnyConnection, name: &str) -> Result<()> {
    let n = sqlx::query("DELETE FROM executors WHERE name = $1")
        .bind(name)
        .execute(c)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::not_found("executor", name));
    }
    Ok(())
}
