//! Progressive delivery's settings: the rollout strategy chosen per
//! application and environment (stored as its JSON, checked before it is
//! written), and each cluster's Prometheus for metric gates (the credentials
//! sealed by the caller, never serialised).

use sqlx::AnyConnection;

use crate::{now_ms, Result, StoreError};

/// The strategy's JSON for an application in an environment, if one was chosen.
pub async fn strategy(c: &mut AnyConnection, app_id: i64, env_id: i64) -> Result<Option<serde_json::Value>> {
    let spec: Option<String> =
        sqlx::query_scalar("SELECT spec FROM rollout_strategies WHERE app_id = $1 AND env_id = $2")
            .bind(app_id)
            .bind(env_id)
            .fetch_optional(c)
            .await?;
    spec.map(|s| serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("rollout strategy: {e}"))))
        .transpose()
}

pub async fn set_strategy(
    c: &mut AnyConnection,
    app_id: i64,
    env_id: i64,
    spec: &serde_json::Value,
    by: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO rollout_strategies (app_id, env_id, spec, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (app_id, env_id) DO UPDATE SET spec = excluded.spec, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
    )
    .bind(app_id)
    .bind(env_id)
    .bind(spec.to_string())
    .bind(by)
    .bind(now_ms())
    .execute(c)
    .await?;
    Ok(())
}

/// Back to rolling updates. False when none was chosen.
pub async fn clear_strategy(c: &mut AnyConnection, app_id: i64, env_id: i64) -> Result<bool> {
    let n = sqlx::query("DELETE FROM rollout_strategies WHERE app_id = $1 AND env_id = $2")
        .bind(app_id)
        .bind(env_id)
        .execute(c)
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// A cluster's Prometheus: its URL and sealed credentials.
#[derive(Clone)]
pub struct PrometheusRow {
    pub url: String,
    pub auth_enc: Option<Vec<u8>>,
}

impl std::fmt::Debug for PrometheusRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusRow")
            .field("url", &self.url)
            .field("auth", &self.auth_enc.as_ref().map(|_| "<sealed>"))
            .finish()
    }
}

pub async fn prometheus(c: &mut AnyConnection, cluster_id: i64) -> Result<Option<PrometheusRow>> {
    let row: Option<(Option<String>, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT prometheus_url, prometheus_auth_enc FROM clusters WHERE id = $1")
            .bind(cluster_id)
            .fetch_optional(c)
            .await?;
    Ok(row.and_then(|(url, auth_enc)| url.map(|url| PrometheusRow { url, auth_enc })))
}

/// Sets (or with `None`, removes) a cluster's Prometheus.
pub async fn set_prometheus(c: &mut AnyConnection, cluster_id: i64, p: Option<&PrometheusRow>) -> Result<()> {
    let n =
        sqlx::query("UPDATE clusters SET prometheus_url = $2, prometheus_auth_enc = $3, updated_at = $4 WHERE id = $1")
            .bind(cluster_id)
            .bind(p.map(|p| p.url.clone()))
            .bind(p.and_then(|p| p.auth_enc.clone()))
            .bind(now_ms())
            .execute(c)
            .await?
            .rows_affected();
    if n == 0 {
        return Err(StoreError::not_found("cluster", cluster_id));
    }
    Ok(())
}
