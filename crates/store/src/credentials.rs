//! Where builds get their secrets: image registries, git credentials and
//! Jenkins executors. Passwords and tokens are stored sealed by the server's
//! secret box (`*_enc`), never returned by the API and never logged.

use serde::Serialize;
use sqlx::AnyConnection;

use crate::error::unique;
use crate::{now_ms, ser_flag, Result, StoreError};

#[derive(Clone, Serialize, sqlx::FromRow)]
pub struct Registry {
    #[serde(skip)]
    pub id: i64,
    pub name: String,
    /// `host[:port]` as in image references.
    pub host: String,
    /// Plain HTTP instead of HTTPS (a registry on a private network).
    #[serde(serialize_with = "ser_flag")]
    pub insecure_http: i64,
    pub username: Option<String>,
    #[serde(skip)]
    pub password_enc: Option<Vec<u8>>,
    /// Hosts besides `host` that may receive the credentials when they serve
    /// the registry's token realm (comma-separated in the store).
    #[serde(serialize_with = "ser_csv")]
    pub token_realm_hosts: String,
    /// Every project may use it (else only `projects`).
    #[serde(serialize_with = "ser_flag")]
    pub all_projects: i64,
    /// The projects allowed to use it.
    #[sqlx(skip)]
    pub projects: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Registry {
    pub fn token_realm_hosts(&self) -> Vec<String> {
        split_csv(&self.token_realm_hosts)
    }
}

fn split_csv(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(String::from)
        .collect()
}

fn ser_csv<S: serde::Serializer>(v: &str, s: S) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let items = split_csv(v);
    let mut seq = s.serialize_seq(Some(items.len()))?;
    for i in &items {
        seq.serialize_element(i)?;
    }
    seq.end()
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

const REGISTRY_COLS: &str =
    "id, name, host, insecure_http, username, password_enc, token_realm_hosts, all_projects, created_at, updated_at";

pub struct RegistryFields<'a> {
    pub host: &'a str,
    pub insecure_http: bool,
    pub username: Option<&'a str>,
    pub password_enc: Option<Vec<u8>>,
    /// Comma-separated, already checked.
    pub token_realm_hosts: &'a str,
}

pub async fn create_registry(c: &mut AnyConnection, name: &str, f: RegistryFields<'_>) -> Result<Registry> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO registries (name, host, insecure_http, username, password_enc, token_realm_hosts, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(name)
    .bind(f.host)
    .bind(f.insecure_http as i64)
    .bind(f.username)
    .bind(f.password_enc)
    .bind(f.token_realm_hosts)
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
         password_enc = CASE WHEN $6 = 1 THEN NULL ELSE COALESCE($5, password_enc) END, updated_at = $7, \
         token_realm_hosts = $8 WHERE name = $1",
    )
    .bind(name)
    .bind(f.host)
    .bind(f.insecure_http as i64)
    .bind(f.username)
    .bind(f.password_enc)
    .bind(clear_password as i64)
    .bind(now_ms())
    .bind(f.token_realm_hosts)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(StoreError::not_found("registry", name));
    }
    registry_by_name(c, name).await
}

pub async fn registry_by_name(c: &mut AnyConnection, name: &str) -> Result<Registry> {
    let mut r: Registry = sqlx::query_as(&format!("SELECT {REGISTRY_COLS} FROM registries WHERE name = $1"))
        .bind(name)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::not_found("registry", name))?;
    r.projects = scope_projects(c, Kind::Registry, r.id).await?;
    Ok(r)
}

/// The registry if `project_id` may use it; otherwise the same not-found as
/// for a name no registry has (a project learns nothing of others' registries).
pub async fn registry_for_project(c: &mut AnyConnection, name: &str, project_id: i64) -> Result<Registry> {
    match registry_by_name(c, name).await {
        Ok(r) if r.all_projects != 0 || allowed(c, Kind::Registry, r.id, project_id).await? => Ok(r),
        Ok(_) | Err(StoreError::NotFound { .. }) => Err(StoreError::not_found("registry", name)),
        Err(e) => Err(e),
    }
}

pub async fn registry(c: &mut AnyConnection, id: i64) -> Result<Registry> {
    let mut r: Registry = sqlx::query_as(&format!("SELECT {REGISTRY_COLS} FROM registries WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::not_found("registry", id))?;
    r.projects = scope_projects(c, Kind::Registry, r.id).await?;
    Ok(r)
}

pub async fn list_registries(c: &mut AnyConnection) -> Result<Vec<Registry>> {
    let mut all: Vec<Registry> = sqlx::query_as(&format!("SELECT {REGISTRY_COLS} FROM registries ORDER BY name"))
        .fetch_all(&mut *c)
        .await?;
    let mut scopes = all_scopes(c, Kind::Registry).await?;
    for r in &mut all {
        r.projects = scopes.remove(&r.id).unwrap_or_default();
    }
    Ok(all)
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
    clear_scope(c, Kind::Registry, r.id).await?;
    sqlx::query("DELETE FROM registries WHERE id = $1")
        .bind(r.id)
        .execute(c)
        .await?;
    Ok(())
}

/// A username and password (or access token) for git over HTTP(S).
#[derive(Clone, Serialize, sqlx::FromRow)]
pub struct GitCredential {
    #[serde(skip)]
    pub id: i64,
    pub name: String,
    pub username: String,
    #[serde(skip)]
    pub password_enc: Vec<u8>,
    /// The only `host[:port]` the credential is offered to (none: refused at
    /// checkout until an admin sets one).
    pub host: Option<String>,
    #[serde(serialize_with = "ser_flag")]
    pub all_projects: i64,
    #[sqlx(skip)]
    pub projects: Vec<String>,
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

const GIT_COLS: &str = "id, name, username, password_enc, host, all_projects, created_at, updated_at";

/// Creates the credential or replaces its username, password and host.
pub async fn put_git_credential(
    c: &mut AnyConnection,
    name: &str,
    username: &str,
    password_enc: Vec<u8>,
    host: &str,
) -> Result<GitCredential> {
    let now = now_ms();
    let n = sqlx::query(
        "UPDATE git_credentials SET username = $2, password_enc = $3, updated_at = $4, host = $5 WHERE name = $1",
    )
    .bind(name)
    .bind(username)
    .bind(password_enc.clone())
    .bind(now)
    .bind(host)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if n == 0 {
        sqlx::query(
            "INSERT INTO git_credentials (name, username, password_enc, created_at, updated_at, host) \
             VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(name)
        .bind(username)
        .bind(password_enc)
        .bind(now)
        .bind(host)
        .execute(&mut *c)
        .await
        .map_err(unique("git credential", "name", name))?;
    }
    git_credential(c, name).await
}

pub async fn git_credential(c: &mut AnyConnection, name: &str) -> Result<GitCredential> {
    let mut g: GitCredential = sqlx::query_as(&format!("SELECT {GIT_COLS} FROM git_credentials WHERE name = $1"))
        .bind(name)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::not_found("git credential", name))?;
    g.projects = scope_projects(c, Kind::GitCredential, g.id).await?;
    Ok(g)
}

/// The credential if `project_id` may use it; otherwise the same not-found
/// as for a name no credential has.
pub async fn git_credential_for_project(c: &mut AnyConnection, name: &str, project_id: i64) -> Result<GitCredential> {
    match git_credential(c, name).await {
        Ok(g) if g.all_projects != 0 || allowed(c, Kind::GitCredential, g.id, project_id).await? => Ok(g),
        Ok(_) | Err(StoreError::NotFound { .. }) => Err(StoreError::not_found("git credential", name)),
        Err(e) => Err(e),
    }
}

pub async fn list_git_credentials(c: &mut AnyConnection) -> Result<Vec<GitCredential>> {
    let mut all: Vec<GitCredential> = sqlx::query_as(&format!("SELECT {GIT_COLS} FROM git_credentials ORDER BY name"))
        .fetch_all(&mut *c)
        .await?;
    let mut scopes = all_scopes(c, Kind::GitCredential).await?;
    for g in &mut all {
        g.projects = scopes.remove(&g.id).unwrap_or_default();
    }
    Ok(all)
}

pub async fn delete_git_credential(c: &mut AnyConnection, name: &str) -> Result<()> {
    let g = git_credential(c, name).await?;
    clear_scope(c, Kind::GitCredential, g.id).await?;
    sqlx::query("DELETE FROM git_credentials WHERE id = $1")
        .bind(g.id)
        .execute(c)
        .await?;
    Ok(())
}

/// A remote build executor: one parameterised Jenkins job, or a Kubernetes
/// build runner (a cluster and namespace whose Jobs run the builds).
#[derive(Clone, Serialize, sqlx::FromRow)]
pub struct ExecutorRecord {
    #[serde(skip)]
    pub id: i64,
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
    pub settings: String,
    #[serde(serialize_with = "ser_flag")]
    pub all_projects: i64,
    #[sqlx(skip)]
    pub projects: Vec<String>,
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

const EXECUTOR_COLS: &str =
    "id, name, kind, url, job, username, token_enc, settings, all_projects, created_at, updated_at";

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
    let mut e: ExecutorRecord = sqlx::query_as(&format!("SELECT {EXECUTOR_COLS} FROM executors WHERE name = $1"))
        .bind(name)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::not_found("executor", name))?;
    e.projects = scope_projects(c, Kind::Executor, e.id).await?;
    Ok(e)
}

/// The executor if `project_id` may use it; otherwise the same not-found as
/// for a name no executor has.
pub async fn executor_for_project(c: &mut AnyConnection, name: &str, project_id: i64) -> Result<ExecutorRecord> {
    match executor(c, name).await {
        Ok(e) if e.all_projects != 0 || allowed(c, Kind::Executor, e.id, project_id).await? => Ok(e),
        Ok(_) | Err(StoreError::NotFound { .. }) => Err(StoreError::not_found("executor", name)),
        Err(e) => Err(e),
    }
}

pub async fn list_executors(c: &mut AnyConnection) -> Result<Vec<ExecutorRecord>> {
    let mut all: Vec<ExecutorRecord> = sqlx::query_as(&format!("SELECT {EXECUTOR_COLS} FROM executors ORDER BY name"))
        .fetch_all(&mut *c)
        .await?;
    let mut scopes = all_scopes(c, Kind::Executor).await?;
    for e in &mut all {
        e.projects = scopes.remove(&e.id).unwrap_or_default();
    }
    Ok(all)
}

pub async fn delete_executor(c: &mut AnyConnection, name: &str) -> Result<()> {
    let e = executor(c, name).await?;
    clear_scope(c, Kind::Executor, e.id).await?;
    sqlx::query("DELETE FROM executors WHERE id = $1")
        .bind(e.id)
        .execute(c)
        .await?;
    Ok(())
}

/// What a project scope belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Registry,
    GitCredential,
    Executor,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Registry => "registry",
            Kind::GitCredential => "git_credential",
            Kind::Executor => "executor",
        }
    }

    fn table(self) -> &'static str {
        match self {
            Kind::Registry => "registries",
            Kind::GitCredential => "git_credentials",
            Kind::Executor => "executors",
        }
    }
}

/// Names of the projects allowed to use a credential.
async fn scope_projects(c: &mut AnyConnection, kind: Kind, id: i64) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT p.name FROM credential_projects s JOIN projects p ON p.id = s.project_id \
         WHERE s.kind = $1 AND s.credential_id = $2 ORDER BY p.name",
    )
    .bind(kind.as_str())
    .bind(id)
    .fetch_all(c)
    .await?)
}

/// The project names of every record of `kind`, in one query (lists stay
/// one query however many records there are).
async fn all_scopes(c: &mut AnyConnection, kind: Kind) -> Result<std::collections::HashMap<i64, Vec<String>>> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT s.credential_id, p.name FROM credential_projects s JOIN projects p ON p.id = s.project_id \
         WHERE s.kind = $1 ORDER BY p.name",
    )
    .bind(kind.as_str())
    .fetch_all(c)
    .await?;
    let mut out: std::collections::HashMap<i64, Vec<String>> = std::collections::HashMap::new();
    for (id, name) in rows {
        out.entry(id).or_default().push(name);
    }
    Ok(out)
}

async fn allowed(c: &mut AnyConnection, kind: Kind, id: i64, project_id: i64) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM credential_projects WHERE kind = $1 AND credential_id = $2 AND project_id = $3",
    )
    .bind(kind.as_str())
    .bind(id)
    .bind(project_id)
    .fetch_one(c)
    .await?;
    Ok(n > 0)
}

async fn clear_scope(c: &mut AnyConnection, kind: Kind, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM credential_projects WHERE kind = $1 AND credential_id = $2")
        .bind(kind.as_str())
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

/// Replaces which projects may use the credential `name` of `kind`: every
/// project, or exactly `project_ids`.
pub async fn set_scope(
    c: &mut AnyConnection,
    kind: Kind,
    name: &str,
    all_projects: bool,
    project_ids: &[i64],
) -> Result<()> {
    let id: i64 = sqlx::query_scalar(&format!("SELECT id FROM {} WHERE name = $1", kind.table()))
        .bind(name)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::not_found(kind.as_str(), name))?;
    sqlx::query(&format!("UPDATE {} SET all_projects = $2 WHERE id = $1", kind.table()))
        .bind(id)
        .bind(all_projects as i64)
        .execute(&mut *c)
        .await?;
    clear_scope(c, kind, id).await?;
    for p in project_ids {
        sqlx::query("INSERT INTO credential_projects (kind, credential_id, project_id) VALUES ($1, $2, $3)")
            .bind(kind.as_str())
            .bind(id)
            .bind(*p)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}
