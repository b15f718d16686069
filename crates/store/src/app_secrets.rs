//! Application secrets (issue 19): per project or application, per
//! environment or all of them; a sealed value (every version kept, so a
//! rollback re-applies the value it ran with) or a reference to a Secret
//! that exists in the namespace. Only the server opens the sealed values;
//! nothing here returns them to a caller of the API.

use serde::Serialize;
use sqlx::AnyConnection;

use crate::error::unique;
use crate::{now_ms, Result, StoreError};

/// A secret's record: everything but its value.
#[derive(Clone, Serialize, sqlx::FromRow)]
pub struct AppSecret {
    #[serde(skip)]
    pub id: i64,
    #[serde(skip)]
    pub project_id: i64,
    pub project: String,
    #[serde(skip)]
    pub app_id: Option<i64>,
    /// The application it belongs to; absent for a project secret (every
    /// application of the project).
    pub application: Option<String>,
    #[serde(skip)]
    pub env_id: Option<i64>,
    /// The environment it applies in; absent for every environment.
    pub environment: Option<String>,
    /// The variable or file name the container sees.
    pub name: String,
    /// value or reference.
    pub source: String,
    /// env or file.
    pub delivery: String,
    /// For a reference: the existing Secret.
    pub ref_secret: Option<String>,
    /// For a reference: its key.
    pub ref_key: Option<String>,
    /// Goes up by one with every change.
    pub version: i64,
    pub updated_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSecret")
            .field("project", &self.project)
            .field("application", &self.application)
            .field("environment", &self.environment)
            .field("name", &self.name)
            .field("source", &self.source)
            .field("version", &self.version)
            .finish()
    }
}

const SELECT: &str = "SELECT s.id, s.project_id, p.name AS project, s.app_id, a.name AS application, s.env_id, \
    e.name AS environment, s.name, s.source, s.delivery, s.ref_secret, s.ref_key, s.version, s.updated_by, \
    s.created_at, s.updated_at FROM app_secrets s JOIN projects p ON p.id = s.project_id \
    LEFT JOIN applications a ON a.id = s.app_id LEFT JOIN environments e ON e.id = s.env_id";

/// Where a secret lives: project, optionally one application and one environment.
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    pub project_id: i64,
    pub app_id: Option<i64>,
    pub env_id: Option<i64>,
}

/// The secret of this exact scope and name.
pub async fn find(c: &mut AnyConnection, scope: Scope, name: &str) -> Result<Option<AppSecret>> {
    Ok(sqlx::query_as(&format!(
        "{SELECT} WHERE s.project_id = $1 AND COALESCE(s.app_id, 0) = $2 AND COALESCE(s.env_id, 0) = $3 AND s.name = $4"
    ))
    .bind(scope.project_id)
    .bind(scope.app_id.unwrap_or(0))
    .bind(scope.env_id.unwrap_or(0))
    .bind(name)
    .fetch_optional(c)
    .await?)
}

/// The project's own secrets (those of every application), by name and environment.
pub async fn of_project(c: &mut AnyConnection, project_id: i64) -> Result<Vec<AppSecret>> {
    Ok(sqlx::query_as(&format!(
        "{SELECT} WHERE s.project_id = $1 AND s.app_id IS NULL ORDER BY s.name, COALESCE(e.position, -1), s.id"
    ))
    .bind(project_id)
    .fetch_all(c)
    .await?)
}

/// Every secret an application sees somewhere: its own and its project's.
pub async fn for_application(c: &mut AnyConnection, project_id: i64, app_id: i64) -> Result<Vec<AppSecret>> {
    Ok(sqlx::query_as(&format!(
        "{SELECT} WHERE s.project_id = $1 AND (s.app_id IS NULL OR s.app_id = $2) \
         ORDER BY s.name, CASE WHEN s.app_id IS NULL THEN 0 ELSE 1 END, COALESCE(e.position, -1), s.id"
    ))
    .bind(project_id)
    .bind(app_id)
    .fetch_all(c)
    .await?)
}

/// What a put writes: the source and delivery, and the sealed value or the reference.
pub struct SecretFields<'a> {
    pub source: &'a str,
    pub delivery: &'a str,
    pub value_enc: Option<&'a [u8]>,
    pub ref_secret: Option<&'a str>,
    pub ref_key: Option<&'a str>,
    pub updated_by: &'a str,
}

/// Creates the secret or makes its next version; a new value is kept as
/// that version. Returns the saved record.
pub async fn put(c: &mut AnyConnection, scope: Scope, name: &str, f: SecretFields<'_>) -> Result<AppSecret> {
    let now = now_ms();
    let existing = find(c, scope, name).await?;
    let (id, version) = match existing {
        Some(s) => {
            let version = s.version + 1;
            sqlx::query(
                "UPDATE app_secrets SET source = $2, delivery = $3, ref_secret = $4, ref_key = $5, version = $6, \
                 updated_by = $7, updated_at = $8 WHERE id = $1 AND version = $9",
            )
            .bind(s.id)
            .bind(f.source)
            .bind(f.delivery)
            .bind(f.ref_secret)
            .bind(f.ref_key)
            .bind(version)
            .bind(f.updated_by)
            .bind(now)
            .bind(s.version)
            .execute(&mut *c)
            .await?;
            (s.id, version)
        }
        None => {
            sqlx::query(
                "INSERT INTO app_secrets (project_id, app_id, env_id, name, source, delivery, ref_secret, ref_key, \
                 version, updated_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10, $10)",
            )
            .bind(scope.project_id)
            .bind(scope.app_id)
            .bind(scope.env_id)
            .bind(name)
            .bind(f.source)
            .bind(f.delivery)
            .bind(f.ref_secret)
            .bind(f.ref_key)
            .bind(f.updated_by)
            .bind(now)
            .execute(&mut *c)
            .await
            .map_err(unique("secret", "name", name))?;
            let saved = find(c, scope, name)
                .await?
                .ok_or_else(|| StoreError::not_found("secret", name))?;
            (saved.id, 1)
        }
    };
    if let Some(sealed) = f.value_enc {
        sqlx::query(
            "INSERT INTO app_secret_values (secret_id, project_id, version, value_enc, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(scope.project_id)
        .bind(version)
        .bind(sealed)
        .bind(f.updated_by)
        .bind(now)
        .execute(&mut *c)
        .await
        .map_err(unique("secret version", "version", name))?;
    }
    find(c, scope, name)
        .await?
        .ok_or_else(|| StoreError::not_found("secret", name))
}

/// Removes the secret (its versions stay, for rollbacks to deploys that used them).
pub async fn delete(c: &mut AnyConnection, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM app_secrets WHERE id = $1")
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

/// The sealed value of one version of one of `project_id`'s secrets, if it
/// is still kept (another project's secret is never found here).
pub async fn sealed_value(
    c: &mut AnyConnection,
    project_id: i64,
    secret_id: i64,
    version: i64,
) -> Result<Option<Vec<u8>>> {
    Ok(sqlx::query_scalar(
        "SELECT value_enc FROM app_secret_values WHERE secret_id = $1 AND version = $2 AND project_id = $3",
    )
    .bind(secret_id)
    .bind(version)
    .bind(project_id)
    .fetch_optional(c)
    .await?)
}
