use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_domain::Name;
use prism_store::audit;
use prism_store::clusters::{self, Cluster, ClusterPatch, NewCluster};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::services::kubeconfig;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCluster {
    pub name: String,
    /// The API server, e.g. `https://10.0.0.1:6443`. Not needed with `kubeconfig`.
    pub api_url: Option<String>,
    /// PEM CA certificate of the API server.
    pub ca_cert: Option<String>,
    /// Bearer token (stored encrypted, never returned).
    pub token: Option<String>,
    #[serde(default)]
    pub insecure_skip_tls_verify: bool,
    /// A kubeconfig file's text to import the server, CA and token from.
    pub kubeconfig: Option<String>,
    /// The kubeconfig context to import (default: its current-context).
    pub context: Option<String>,
}

pub fn validate_url(field: &str, url: &str) -> ApiResult<()> {
    let ok_scheme = url.starts_with("https://") || url.starts_with("http://");
    if !ok_scheme || url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) || url.len() < 9 {
        return Err(ApiError::bad_request(field, "must be an http:// or https:// URL"));
    }
    Ok(())
}

pub fn validate_ca(field: &str, pem: &str) -> ApiResult<()> {
    if !pem.contains("-----BEGIN CERTIFICATE-----") || pem.len() > 64 * 1024 {
        return Err(ApiError::bad_request(
            field,
            "must be a PEM certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(())
}

pub fn validate_token(field: &str, token: &str) -> ApiResult<()> {
    if token.trim().is_empty() || token.len() > 16 * 1024 || token.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::bad_request(
            field,
            "must be a non-empty bearer token without spaces",
        ));
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/clusters", tag = "clusters", responses((status = 200, body = [Cluster])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Cluster>>> {
    caller.require_admin()?;
    Ok(Json(clusters::list(&mut *state.store.conn().await?).await?))
}

#[utoipa::path(post, path = "/api/v1/clusters", tag = "clusters", request_body = CreateCluster, responses((status = 201, body = Cluster), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateCluster>,
) -> ApiResult<(StatusCode, Json<Cluster>)> {
    caller.require_admin()?;
    let name = Name::parse("name", &req.name)?;
    let (api_url, ca_cert, token) = match &req.kubeconfig {
        Some(text) => {
            if req.api_url.is_some() || req.token.is_some() || req.ca_cert.is_some() {
                return Err(ApiError::bad_request(
                    "kubeconfig",
                    "give either a kubeconfig or api_url/ca_cert/token, not both",
                ));
            }
            let imported = kubeconfig::import(text, req.context.as_deref())?;
            (imported.server, imported.ca_cert, imported.token)
        }
        None => {
            let url = req
                .api_url
                .clone()
                .ok_or_else(|| ApiError::bad_request("api_url", "is required (or give a kubeconfig)"))?;
            (url, req.ca_cert.clone(), req.token.clone())
        }
    };
    validate_url("api_url", &api_url)?;
    if let Some(ca) = &ca_cert {
        validate_ca("ca_cert", ca)?;
    }
    if let Some(t) = &token {
        validate_token("token", t)?;
    }
    let mut tx = state.store.begin().await?;
    let cluster = clusters::create(
        &mut tx,
        NewCluster {
            name: name.as_str(),
            api_url: &api_url,
            ca_cert: ca_cert.as_deref(),
            token_enc: token.as_deref().map(|t| state.secrets.seal(t.as_bytes())),
            insecure_skip_tls_verify: req.insecure_skip_tls_verify,
        },
    )
    .await?;
    let detail =
        json!({"api_url": api_url, "token_set": token.is_some(), "imported_from_kubeconfig": req.kubeconfig.is_some()});
    audit::record(
        &mut tx,
        &caller.origin(),
        "cluster.create",
        "cluster",
        name.as_str(),
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(cluster)))
}

#[utoipa::path(get, path = "/api/v1/clusters/{name}", tag = "clusters", params(("name" = String, Path)), responses((status = 200, body = Cluster)))]
pub async fn get(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<Json<Cluster>> {
    caller.require_admin()?;
    Ok(Json(clusters::by_name(&mut *state.store.conn().await?, &name).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCluster {
    pub api_url: Option<String>,
    pub ca_cert: Option<String>,
    /// A new bearer token (stored encrypted).
    pub token: Option<String>,
    pub insecure_skip_tls_verify: Option<bool>,
}

#[utoipa::path(patch, path = "/api/v1/clusters/{name}", tag = "clusters", params(("name" = String, Path)), request_body = UpdateCluster, responses((status = 200, body = Cluster)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<UpdateCluster>,
) -> ApiResult<Json<Cluster>> {
    caller.require_admin()?;
    if let Some(u) = &req.api_url {
        validate_url("api_url", u)?;
    }
    if let Some(ca) = &req.ca_cert {
        validate_ca("ca_cert", ca)?;
    }
    if let Some(t) = &req.token {
        validate_token("token", t)?;
    }
    let mut tx = state.store.begin().await?;
    let existing = clusters::by_name(&mut tx, &name).await?;
    let patch = ClusterPatch {
        api_url: req.api_url.as_deref(),
        ca_cert: req.ca_cert.as_deref(),
        token_enc: req.token.as_deref().map(|t| state.secrets.seal(t.as_bytes())),
        insecure_skip_tls_verify: req.insecure_skip_tls_verify,
    };
    let cluster = clusters::update(&mut tx, existing.id, patch).await?;
    let detail = json!({"api_url": req.api_url, "ca_cert_changed": req.ca_cert.is_some(), "token_changed": req.token.is_some(), "insecure_skip_tls_verify": req.insecure_skip_tls_verify});
    audit::record(&mut tx, &caller.origin(), "cluster.update", "cluster", &name, detail).await?;
    tx.commit().await?;
    Ok(Json(cluster))
}

#[utoipa::path(delete, path = "/api/v1/clusters/{name}", tag = "clusters", params(("name" = String, Path)), responses((status = 204)))]
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let mut tx = state.store.begin().await?;
    let existing = clusters::by_name(&mut tx, &name).await?;
    clusters::delete(&mut tx, existing.id).await?;
    audit::record(&mut tx, &caller.origin(), "cluster.delete", "cluster", &name, json!({})).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    pub ok: bool,
    pub version: Option<String>,
    pub error: Option<String>,
}

/// Connects to the cluster with the stored credentials and asks its version.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/health", tag = "clusters", params(("name" = String, Path)), responses((status = 200, body = Health)))]
pub async fn health(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Health>> {
    caller.require_admin()?;
    let cluster = clusters::by_name(&mut *state.store.conn().await?, &name).await?;
    let client = match crate::services::deploy_plan::cluster_client(&state, cluster).await {
        Ok(c) => c,
        Err(e) => {
            return Ok(Json(Health {
                ok: false,
                version: None,
                error: Some(e.to_string()),
            }))
        }
    };
    Ok(Json(match client.version().await {
        Ok(v) => Health {
            ok: true,
            version: Some(v),
            error: None,
        },
        Err(e) => Health {
            ok: false,
            version: None,
            error: Some(e.to_string()),
        },
    }))
}
