//! What builds use to reach other servers: image registries, git
//! credentials and build executors. Passwords and tokens go in, never out.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Registry {
    pub name: String,
    /// `host[:port]` as in image references.
    pub host: String,
    /// Plain HTTP instead of HTTPS (a registry on a private network).
    pub insecure_http: bool,
    pub username: Option<String>,
    /// Hosts besides `host` that may receive the credentials when they serve
    /// the registry's token realm.
    pub token_realm_hosts: Vec<String>,
    /// Every project may use it (else only `projects`).
    pub all_projects: bool,
    /// The projects allowed to use it.
    pub projects: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A username and password (or access token) for git over HTTP(S).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GitCredential {
    pub name: String,
    pub username: String,
    /// The only `host[:port]` the credential is offered to (none: refused at
    /// checkout until an admin sets one).
    pub host: Option<String>,
    pub all_projects: bool,
    pub projects: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A remote build executor: one parameterised Jenkins job, or a Kubernetes
/// build runner (a cluster and namespace whose Jobs run the builds).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExecutorRecord {
    pub name: String,
    /// `jenkins` or `kubernetes`
    pub kind: String,
    pub url: String,
    /// The job's path, folders separated by `/`.
    pub job: String,
    pub username: String,
    /// A Kubernetes runner's settings (`{}` for Jenkins).
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    pub all_projects: bool,
    pub projects: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRegistry {
    /// `host[:port]`, as in image references.
    pub host: String,
    /// Speak plain HTTP (default: HTTPS).
    #[serde(default)]
    pub insecure_http: bool,
    pub username: Option<String>,
    /// Stored encrypted; never returned. Omit to keep the stored one.
    pub password: Option<String>,
    /// Remove the stored username and password.
    #[serde(default)]
    pub clear_credentials: bool,
    /// Hosts besides `host` that may receive the credentials when the
    /// registry names them as its token realm (omit to keep the stored ones).
    pub token_realm_hosts: Option<Vec<String>>,
    /// Every project may push to it and build on it.
    pub all_projects: Option<bool>,
    /// The projects allowed to use it (omit to keep the stored list; a new
    /// registry starts with none).
    pub projects: Option<Vec<String>>,
}

#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutGitCredential {
    pub username: String,
    /// Password or access token; stored encrypted, never returned.
    pub password: String,
    /// `host[:port]` of the git server: the credential is offered to no other
    /// (not after a redirect either).
    pub host: String,
    /// Every project may use it.
    pub all_projects: Option<bool>,
    /// The projects allowed to use it (omit to keep the stored list; a new
    /// credential starts with none).
    pub projects: Option<Vec<String>>,
}

#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateExecutor {
    pub name: String,
    /// `jenkins` or `kubernetes`
    pub kind: String,
    /// Jenkins' base URL.
    #[serde(default)]
    pub url: String,
    /// The parameterised job, folders separated by `/`.
    #[serde(default)]
    pub job: String,
    #[serde(default)]
    pub username: String,
    /// API token; stored encrypted, never returned.
    #[serde(default)]
    pub token: String,
    /// A Kubernetes runner: `cluster` (a registered cluster), `namespace`, and
    /// optional `node_selector`, `tolerations`, `cpu_request`, `memory_request`,
    /// `cpu_limit`, `memory_limit`, `workspace_size`, `ttl_seconds`,
    /// `queue_timeout_seconds`, `image_pull_secrets`, `host_network`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub kubernetes: Option<serde_json::Value>,
    /// Every project may build on it.
    pub all_projects: Option<bool>,
    /// The projects allowed to build on it (default: none).
    pub projects: Option<Vec<String>>,
}
