//! Kubernetes clusters Prism deploys to. The bearer token is stored only in
//! encrypted form (`token_enc`, sealed by the server's secret box) and is
//! never serialised.

use serde::Serialize;
use sqlx::AnyConnection;

use crate::error::unique;
use crate::{now_ms, Result, StoreError};

#[derive(Clone, Serialize, sqlx::FromRow)]
pub struct Cluster {
    pub id: i64,
    pub name: String,
    pub api_url: String,
    pub ca_cert: Option<String>,
    #[serde(skip)]
    pub token_enc: Option<Vec<u8>>,
    #[serde(serialize_with = "crate::ser_flag")]
    pub insecure_skip_tls_verify: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Cluster {
    pub fn has_token(&self) -> bool {
        self.token_enc.is_some()
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("api_url", &self.api_url)
            .field("token", &self.token_enc.as_ref().map(|_| "<sealed>"))
            .finish()
    }
}

const COLS: &str = "id, name, api_url, ca_cert, token_enc, insecure_skip_tls_verify, created_at, updated_at";

pub struct NewCluster<'a> {
    pub name: &'a str,
    pub api_url: &'a str,
    pub ca_cert: Option<&'a str>,
    pub token_enc: Option<Vec<u8>>,
    pub insecure_skip_tls_verify: bool,
}

pub async fn create(c: &mut AnyConnection, n: NewCluster<'_>) -> Result<Cluster> {
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO clusters (name, api_url, ca_cert, token_enc, insecure_skip_tls_verify, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
    )
    .bind(n.name)
    .bind(n.api_url)
    .bind(n.ca_cert)
    .bind(n.token_enc)
    .bind(n.insecure_skip_tls_verify as i64)
    .bind(now)
    .fetch_one(&mut *c)
    .await
    .map_err(unique("cluster", "name", n.name))?;
    get(c, id).await
}

pub async fn get(c: &mut AnyConnection, id: i64) -> Result<Cluster> {
    sqlx::query_as(&format!("SELECT {COLS} FROM clusters WHERE id = $1"))
        .bind(id)
        .fetch_optional(c)
        .await?
        .ok_or_else(|| StoreError::not_found("cluster", id))
}

pub async fn by_name(c: &mut AnyConnection, name: &str) -> Result<Cluster> {
    sqlx::query_as(&format!("SELECT {COLS} FROM clusters WHERE name = $1"))
        .bind(name)
        .fetch_optional(c)
        .await?
        .ok_or_else(|| StoreError::not_found("cluster", name))
}

pub async fn list(c: &mut AnyConnection) -> Result<Vec<Cluster>> {
    Ok(sqlx::query_as(&format!("SELECT {COLS} FROM clusters ORDER BY name"))
        .fetch_all(c)
        .await?)
}

pub struct ClusterPatch<'a> {
    pub api_url: Option<&'a str>,
    pub ca_cert: Option<&'a str>,
    pub token_enc: Option<Vec<u8>>,
    pub insecure_skip_tls_verify: Option<bool>,
}

pub async fn update(c: &mut AnyConnection, id: i64, p: ClusterPatch<'_>) -> Result<Cluster> {
    let n = sqlx::query(
        "UPDATE clusters SET api_url = COALESCE($2, api_url), ca_cert = COALESCE($3, ca_cert), \
         token_enc = COALESCE($4, token_enc), insecure_skip_tls_verify = COALESCE($5, insecure_skip_tls_verify), updated_at = $6 WHERE id = $1",
    )
    .bind(id)
    .bind(p.api_url)
    .bind(p.ca_cert)
    .bind(p.token_enc)
    .bind(p.insecure_skip_tls_verify.map(|b| b as i64))
    .bind(now_ms())
    .execute(&mut *c)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(StoreError::not_found("cluster", id));
    }
    get(c, id).await
}

pub async fn delete(c: &mut AnyConnection, id: i64) -> Result<()> {
    let envs: Vec<String> = sqlx::query_scalar("SELECT name FROM environments WHERE cluster_id = $1 ORDER BY name")
        .bind(id)
        .fetch_all(&mut *c)
        .await?;
    if !envs.is_empty() {
        return Err(StoreError::InUse(format!(
            "environments {} are bound to this cluster",
            envs.join(", ")
        )));
    }
    sqlx::query("DELETE FROM clusters WHERE id = $1")
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}
