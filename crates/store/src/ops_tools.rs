//! Ops tools behind Prism: a cluster's Prometheus, Grafana, Dashboard or
//! Headlamp, with the roles that may open it (`roles` is a JSON list of
//! role words; the caller validated it).

use serde::Serialize;
use sqlx::AnyConnection;

use crate::{now_ms, ser_flag, Result, StoreError};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct OpsTool {
    #[serde(skip)]
    pub id: i64,
    pub cluster: String,
    pub name: String,
    pub kind: String,
    pub upstream: String,
    #[serde(serialize_with = "ser_flag")]
    pub strip_prefix: i64,
    #[serde(skip)]
    pub roles: String,
    pub description: String,
    pub updated_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl OpsTool {
    /// The role words that may open it.
    pub fn role_words(&self) -> Result<Vec<String>> {
        serde_json::from_str(&self.roles).map_err(|e| StoreError::Corrupt(format!("ops tool roles: {e}")))
    }
}

const SELECT: &str = "SELECT t.id, c.name AS cluster, t.name, t.kind, t.upstream, t.strip_prefix, t.roles, \
    t.description, t.updated_by, t.created_at, t.updated_at FROM ops_tools t JOIN clusters c ON c.id = t.cluster_id";

pub struct ToolFields<'a> {
    pub kind: &'a str,
    pub upstream: &'a str,
    pub strip_prefix: bool,
    pub roles: &'a str,
    pub description: &'a str,
    pub updated_by: &'a str,
}

/// Creates the tool or replaces its settings; true when it was new.
pub async fn put(c: &mut AnyConnection, cluster_id: i64, name: &str, f: ToolFields<'_>) -> Result<bool> {
    let now = now_ms();
    let n = sqlx::query(
        "UPDATE ops_tools SET kind = $3, upstream = $4, strip_prefix = $5, roles = $6, description = $7, \
         updated_by = $8, updated_at = $9 WHERE cluster_id = $1 AND name = $2",
    )
    .bind(cluster_id)
    .bind(name)
    .bind(f.kind)
    .bind(f.upstream)
    .bind(f.strip_prefix as i64)
    .bind(f.roles)
    .bind(f.description)
    .bind(f.updated_by)
    .bind(now)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if n == 1 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO ops_tools (cluster_id, name, kind, upstream, strip_prefix, roles, description, updated_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(cluster_id)
    .bind(name)
    .bind(f.kind)
    .bind(f.upstream)
    .bind(f.strip_prefix as i64)
    .bind(f.roles)
    .bind(f.description)
    .bind(f.updated_by)
    .bind(now)
    .execute(c)
    .await?;
    Ok(true)
}

pub async fn list(c: &mut AnyConnection) -> Result<Vec<OpsTool>> {
    Ok(sqlx::query_as(&format!("{SELECT} ORDER BY c.name, t.name"))
        .fetch_all(c)
        .await?)
}

pub async fn find(c: &mut AnyConnection, cluster: &str, name: &str) -> Result<Option<OpsTool>> {
    Ok(sqlx::query_as(&format!("{SELECT} WHERE c.name = $1 AND t.name = $2"))
        .bind(cluster)
        .bind(name)
        .fetch_optional(c)
        .await?)
}

pub async fn delete(c: &mut AnyConnection, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM ops_tools WHERE id = $1")
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}
