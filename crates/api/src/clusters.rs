//! Kubernetes clusters Prism deploys to. The bearer token goes in, never out.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Cluster {
    pub id: i64,
    pub name: String,
    pub api_url: String,
    pub ca_cert: Option<String>,
    pub insecure_skip_tls_verify: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
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

#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCluster {
    pub api_url: Option<String>,
    pub ca_cert: Option<String>,
    /// A new bearer token (stored encrypted).
    pub token: Option<String>,
    pub insecure_skip_tls_verify: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    pub ok: bool,
    pub version: Option<String>,
    pub error: Option<String>,
}
