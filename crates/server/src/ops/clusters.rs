//! Clusters: admins register them (by URL, CA and token, or from a
//! kubeconfig), change, delete and check them. Tokens are stored sealed and
//! never returned.

use prism_api::clusters::{CreateCluster, Health, UpdateCluster};
use prism_domain::Name;
use prism_store::audit;
use prism_store::clusters::{self, Cluster, ClusterPatch, NewCluster};
use serde_json::json;

use super::{access, Ctx, OpError, OpResult};
use crate::auth::Caller;
use crate::services::kubeconfig;

pub fn validate_url(field: &str, url: &str) -> OpResult<()> {
    let ok_scheme = url.starts_with("https://") || url.starts_with("http://");
    if !ok_scheme || url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) || url.len() < 9 {
        return Err(OpError::invalid(field, "must be an http:// or https:// URL"));
    }
    Ok(())
}

pub fn validate_ca(field: &str, pem: &str) -> OpResult<()> {
    if !pem.contains("-----BEGIN CERTIFICATE-----") || pem.len() > 64 * 1024 {
        return Err(OpError::invalid(
            field,
            "must be a PEM certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(())
}

pub fn validate_token(field: &str, token: &str) -> OpResult<()> {
    if token.trim().is_empty() || token.len() > 16 * 1024 || token.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(OpError::invalid(
            field,
            "must be a non-empty bearer token without spaces",
        ));
    }
    Ok(())
}

pub async fn list(ctx: &Ctx, caller: &Caller) -> OpResult<Vec<Cluster>> {
    access::require_admin(caller)?;
    Ok(clusters::list(&mut *ctx.store.conn().await?).await?)
}

pub async fn create(ctx: &Ctx, caller: &Caller, req: CreateCluster) -> OpResult<Cluster> {
    access::require_admin(caller)?;
    let name = Name::parse("name", &req.name)?;
    let (api_url, ca_cert, token) = match &req.kubeconfig {
        Some(text) => {
            if req.api_url.is_some() || req.token.is_some() || req.ca_cert.is_some() {
                return Err(OpError::invalid(
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
                .ok_or_else(|| OpError::invalid("api_url", "is required (or give a kubeconfig)"))?;
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
    let mut tx = ctx.store.begin().await?;
    let cluster = clusters::create(
        &mut tx,
        NewCluster {
            name: name.as_str(),
            api_url: &api_url,
            ca_cert: ca_cert.as_deref(),
            token_enc: token.as_deref().map(|t| ctx.secrets.seal(t.as_bytes())),
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
    Ok(cluster)
}

pub async fn get(ctx: &Ctx, caller: &Caller, name: &str) -> OpResult<Cluster> {
    access::require_admin(caller)?;
    Ok(clusters::by_name(&mut *ctx.store.conn().await?, name).await?)
}

pub async fn update(ctx: &Ctx, caller: &Caller, name: &str, req: UpdateCluster) -> OpResult<Cluster> {
    access::require_admin(caller)?;
    if let Some(u) = &req.api_url {
        validate_url("api_url", u)?;
    }
    if let Some(ca) = &req.ca_cert {
        validate_ca("ca_cert", ca)?;
    }
    if let Some(t) = &req.token {
        validate_token("token", t)?;
    }
    let mut tx = ctx.store.begin().await?;
    let existing = clusters::by_name(&mut tx, name).await?;
    let patch = ClusterPatch {
        api_url: req.api_url.as_deref(),
        ca_cert: req.ca_cert.as_deref(),
        token_enc: req.token.as_deref().map(|t| ctx.secrets.seal(t.as_bytes())),
        insecure_skip_tls_verify: req.insecure_skip_tls_verify,
    };
    let cluster = clusters::update(&mut tx, existing.id, patch).await?;
    let detail = json!({"api_url": req.api_url, "ca_cert_changed": req.ca_cert.is_some(), "token_changed": req.token.is_some(), "insecure_skip_tls_verify": req.insecure_skip_tls_verify});
    audit::record(&mut tx, &caller.origin(), "cluster.update", "cluster", name, detail).await?;
    tx.commit().await?;
    Ok(cluster)
}

pub async fn delete(ctx: &Ctx, caller: &Caller, name: &str) -> OpResult<()> {
    access::require_admin(caller)?;
    let mut tx = ctx.store.begin().await?;
    let existing = clusters::by_name(&mut tx, name).await?;
    clusters::delete(&mut tx, existing.id).await?;
    audit::record(&mut tx, &caller.origin(), "cluster.delete", "cluster", name, json!({})).await?;
    tx.commit().await?;
    Ok(())
}

/// Connects to the cluster with the stored credentials and asks its version.
pub async fn health(ctx: &Ctx, caller: &Caller, name: &str) -> OpResult<Health> {
    access::require_admin(caller)?;
    let cluster = clusters::by_name(&mut *ctx.store.conn().await?, name).await?;
    let client = match crate::services::deploy_plan::cluster_client(ctx, cluster).await {
        Ok(c) => c,
        Err(e) => {
            return Ok(Health {
                ok: false,
                version: None,
                error: Some(e.to_string()),
            })
        }
    };
    Ok(match client.version().await {
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
    })
}
