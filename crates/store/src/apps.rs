//! Applications and their per-environment settings.

use std::collections::BTreeMap;

use prism_domain::Resources;
use serde::Serialize;
use sqlx::AnyConnection;

use crate::error::unique;
use crate::{now_ms, Result, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct Application {
    pub id: i64,
    pub project_id: i64,
    pub project: String,
    pub name: String,
    pub git_url: String,
    /// Free-form until the build issue gives it a schema.
    pub build_settings: serde_json::Value,
    pub template_settings: serde_json::Value,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    project_id: i64,
    project: String,
    name: String,
    git_url: String,
    build_settings: String,
    template_settings: String,
    created_at: i64,
    updated_at: i64,
}

fn json(field: &str, s: &str) -> Result<serde_json::Value> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{field}: {e}")))
}

impl TryFrom<Row> for Application {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self> {
        Ok(Self {
            id: r.id,
            project_id: r.project_id,
            project: r.project,
            name: r.name,
            git_url: r.git_url,
            build_settings: json("build_settings", &r.build_settings)?,
            template_settings: json("template_settings", &r.template_settings)?,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const SELECT: &str =
    "SELECT a.id, a.project_id, p.name AS project, a.name, a.git_url, a.build_settings, a.template_settings, \
                      a.created_at, a.updated_at FROM applications a JOIN projects p ON p.id = a.project_id";

pub struct NewApplication<'a> {
    pub project_id: i64,
    pub name: &'a str,
    pub git_url: &'a str,
    pub build_settings: &'a serde_json::Value,
    pub template_settings: &'a serde_json::Value,
}

pub async fn create(c: &mut AnyConnection, n: NewApplication<'_>) -> Result<Application> {
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO applications (project_id, name, git_url, build_settings, template_settings, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
    )
    .bind(n.project_id)
    .bind(n.name)
    .bind(n.git_url)
    .bind(n.build_settings.to_string())
    .bind(n.template_settings.to_string())
    .bind(now)
    .fetch_one(&mut *c)
    .await
    .map_err(unique("application", "name", n.name))?;
    get(c, id).await
}

pub async fn get(c: &mut AnyConnection, id: i64) -> Result<Application> {
    let r: Row = sqlx::query_as(&format!("{SELECT} WHERE a.id = $1"))
        .bind(id)
        .fetch_optional(c)
        .await?
        .ok_or_else(|| StoreError::not_found("application", id))?;
    r.try_into()
}

pub async fn by_name(c: &mut AnyConnection, name: &str) -> Result<Application> {
    let r: Row = sqlx::query_as(&format!("{SELECT} WHERE a.name = $1"))
        .bind(name)
        .fetch_optional(c)
        .await?
        .ok_or_else(|| StoreError::not_found("application", name))?;
    r.try_into()
}

/// Applications the user may see (all for admins: `user_id` None), optionally of one project.
pub async fn list_visible(
    c: &mut AnyConnection,
    user_id: Option<i64>,
    project_id: Option<i64>,
) -> Result<Vec<Application>> {
    list_visible_page(c, user_id, project_id, None, i64::MAX).await
}

/// One page of [`list_visible`]: at most `limit` applications by name,
/// those after `after` (keyset paging on the unique name index: every page
/// costs what the first does, whatever the number of applications).
pub async fn list_visible_page(
    c: &mut AnyConnection,
    user_id: Option<i64>,
    project_id: Option<i64>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Application>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "{SELECT} WHERE (CAST($1 AS BIGINT) IS NULL OR EXISTS (SELECT 1 FROM memberships m WHERE m.project_id = a.project_id AND m.user_id = $1)) \
         AND (CAST($2 AS BIGINT) IS NULL OR a.project_id = $2) AND (CAST($3 AS TEXT) IS NULL OR a.name > $3) ORDER BY a.name LIMIT $4"
    ))
    .bind(user_id)
    .bind(project_id)
    .bind(after)
    .bind(limit)
    .fetch_all(c)
    .await?;
    rows.into_iter().map(Application::try_from).collect()
}

pub struct ApplicationPatch<'a> {
    pub git_url: Option<&'a str>,
    pub build_settings: Option<&'a serde_json::Value>,
    pub template_settings: Option<&'a serde_json::Value>,
}

pub async fn update(c: &mut AnyConnection, id: i64, p: ApplicationPatch<'_>) -> Result<Application> {
    sqlx::query(
        "UPDATE applications SET git_url = COALESCE($2, git_url), build_settings = COALESCE($3, build_settings), \
         template_settings = COALESCE($4, template_settings), updated_at = $5 WHERE id = $1",
    )
    .bind(id)
    .bind(p.git_url)
    .bind(p.build_settings.map(|v| v.to_string()))
    .bind(p.template_settings.map(|v| v.to_string()))
    .bind(now_ms())
    .execute(&mut *c)
    .await?;
    get(c, id).await
}

pub async fn delete(c: &mut AnyConnection, id: i64) -> Result<()> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM releases WHERE app_id = $1")
        .bind(id)
        .fetch_one(&mut *c)
        .await?;
    if n > 0 {
        return Err(StoreError::InUse(format!(
            "the application has {n} release(s); releases are kept for the record"
        )));
    }
    sqlx::query("DELETE FROM applications WHERE id = $1")
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvSettings {
    pub environment: String,
    pub replicas: i64,
    pub cpu_request: String,
    pub cpu_limit: String,
    pub memory_request: String,
    pub memory_limit: String,
    pub env_vars: BTreeMap<String, String>,
    /// False when nothing was saved yet and these are the defaults.
    pub customised: bool,
}

impl EnvSettings {
    pub fn defaults(environment: &str) -> Self {
        let r = Resources::default();
        Self {
            environment: environment.to_owned(),
            replicas: 1,
            cpu_request: r.cpu_request.to_string(),
            cpu_limit: r.cpu_limit.to_string(),
            memory_request: r.memory_request.to_string(),
            memory_limit: r.memory_limit.to_string(),
            env_vars: BTreeMap::new(),
            customised: false,
        }
    }
}

/// Settings per environment in lifecycle order, defaults where none were saved.
pub async fn env_settings(c: &mut AnyConnection, app_id: i64) -> Result<Vec<EnvSettings>> {
    #[allow(clippy::type_complexity)]
    let rows: Vec<(String, Option<i64>, Option<String>, Option<String>, Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT e.name, s.replicas, s.cpu_request, s.cpu_limit, s.memory_request, s.memory_limit, s.env_vars \
         FROM environments e LEFT JOIN app_env_settings s ON s.env_id = e.id AND s.app_id = $1 ORDER BY e.position, e.id",
    )
    .bind(app_id)
    .fetch_all(c)
    .await?;
    rows.into_iter()
        .map(
            |(env, replicas, cr, cl, mr, ml, vars)| match (replicas, cr, cl, mr, ml, vars) {
                (
                    Some(replicas),
                    Some(cpu_request),
                    Some(cpu_limit),
                    Some(memory_request),
                    Some(memory_limit),
                    Some(vars),
                ) => Ok(EnvSettings {
                    environment: env,
                    replicas,
                    cpu_request,
                    cpu_limit,
                    memory_request,
                    memory_limit,
                    env_vars: serde_json::from_str(&vars).map_err(|e| StoreError::Corrupt(format!("env_vars: {e}")))?,
                    customised: true,
                }),
                _ => Ok(EnvSettings::defaults(&env)),
            },
        )
        .collect()
}

pub async fn put_env_settings(
    c: &mut AnyConnection,
    app_id: i64,
    env_id: i64,
    replicas: i64,
    resources: &Resources,
    env_vars: &BTreeMap<String, String>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO app_env_settings (app_id, env_id, replicas, cpu_request, cpu_limit, memory_request, memory_limit, env_vars, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (app_id, env_id) DO UPDATE SET replicas = excluded.replicas, \
         cpu_request = excluded.cpu_request, cpu_limit = excluded.cpu_limit, memory_request = excluded.memory_request, \
         memory_limit = excluded.memory_limit, env_vars = excluded.env_vars, updated_at = excluded.updated_at",
    )
    .bind(app_id)
    .bind(env_id)
    .bind(replicas)
    .bind(resources.cpu_request.to_string())
    .bind(resources.cpu_limit.to_string())
    .bind(resources.memory_request.to_string())
    .bind(resources.memory_limit.to_string())
    .bind(serde_json::to_string(env_vars).expect("a string map serialises"))
    .bind(now_ms())
    .execute(c)
    .await?;
    Ok(())
}

/// The applications the user may create releases of (developer in the
/// project, or admin), each with whether it has build settings, in one query
/// that parses no settings.
/// At most `limit` of them, by name (the name index, read no further than
/// that: the form of someone who may release 5,000 applications does not
/// read 5,000).
pub async fn creatable(c: &mut AnyConnection, user_id: i64, is_admin: bool, limit: i64) -> Result<Vec<(String, bool)>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT a.name, CAST(CASE WHEN a.build_settings = '{}' THEN 0 ELSE 1 END AS BIGINT) FROM applications a \
         WHERE $2 = 1 OR EXISTS (SELECT 1 FROM memberships m \
         WHERE m.project_id = a.project_id AND m.user_id = $1 AND m.role = 'developer') ORDER BY a.name LIMIT $3",
    )
    .bind(user_id)
    .bind(is_admin as i64)
    .bind(limit)
    .fetch_all(c)
    .await?;
    Ok(rows.into_iter().map(|(name, builds)| (name, builds != 0)).collect())
}

/// A project's applications as (id, name, git URL), by name: what a
/// project's webhook matches pushes against (no settings read).
pub async fn repositories(c: &mut AnyConnection, project_id: i64) -> Result<Vec<(i64, String, String)>> {
    Ok(
        sqlx::query_as("SELECT id, name, git_url FROM applications WHERE project_id = $1 ORDER BY name")
            .bind(project_id)
            .fetch_all(c)
            .await?,
    )
}
