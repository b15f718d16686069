//! Secrets of an application or a project. Values go in, never out.

use prism_domain::SecretDelivery;
use serde::{Deserialize, Serialize};

/// A secret's record: everything but its value.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppSecret {
    pub project: String,
    /// The application it belongs to; absent for a project secret (every
    /// application of the project).
    pub application: Option<String>,
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

#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSecret {
    /// The environment it applies in; omit for every environment.
    pub environment: Option<String>,
    /// The value: stored sealed, never returned. Give this or `existing`.
    pub value: Option<String>,
    /// A key of a Secret that already exists in the namespace (managed by
    /// Vault, External Secrets, Sealed Secrets ...). Give this or `value`.
    pub existing: Option<ExistingSecret>,
    /// `env` (a variable, the default) or `file` (a file named like the
    /// secret in the application's secrets directory).
    pub delivery: Option<SecretDelivery>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExistingSecret {
    /// The Secret's name in the application's namespace.
    pub secret: String,
    /// Its key.
    pub key: String,
}
