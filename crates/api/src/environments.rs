//! Environments in lifecycle order, and the namespaces bound per project.

use prism_domain::{DeployRules, EnvPolicy};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Environment {
    pub id: i64,
    pub name: String,
    pub position: i64,
    pub cluster: Option<String>,
    pub namespace: String,
    pub policy: EnvPolicy,
    pub rules: DeployRules,
    pub created_at: i64,
}

/// A namespace an admin bound for one project in one environment (it wins
/// over the environment's namespace pattern).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NamespaceBinding {
    pub environment: String,
    pub project: String,
    pub namespace: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnvironment {
    pub name: String,
    /// Place in the lifecycle (lower first); default: after the last one.
    pub position: Option<i64>,
    /// The cluster this environment deploys to.
    pub cluster: Option<String>,
    /// The namespace on that cluster: a DNS-1123 label every project shares,
    /// or a pattern with `{project}` and `{environment}` (e.g.
    /// `{project}-{environment}`) giving each project its own namespace.
    pub namespace: String,
    /// Default: operators deploy, reviewed, previous environment first.
    pub policy: Option<EnvPolicy>,
    /// Default: namespaced objects in `namespace` only; roll back on failure.
    pub rules: Option<DeployRules>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEnvironment {
    pub position: Option<i64>,
    /// A cluster name, or null to unbind.
    #[serde(
        default,
        deserialize_with = "crate::patch::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub cluster: Option<Option<String>>,
    pub namespace: Option<String>,
    pub policy: Option<EnvPolicy>,
    pub rules: Option<DeployRules>,
}

/// A project's own namespace in an environment, bound by an admin (it wins
/// over the environment's namespace pattern; see README "Namespace isolation").
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindNamespace {
    /// An existing namespace (a DNS-1123 label) for the project's objects.
    pub namespace: String,
}
