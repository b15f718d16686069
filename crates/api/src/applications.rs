//! Applications (a git repository each, in one project) and their settings
//! per environment.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Application {
    pub id: i64,
    pub project_id: i64,
    pub project: String,
    pub name: String,
    pub git_url: String,
    /// Free-form until the build issue gives it a schema.
    #[schema(value_type = Object)]
    pub build_settings: serde_json::Value,
    #[schema(value_type = Object)]
    pub template_settings: serde_json::Value,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnvSettings {
    pub environment: String,
    pub replicas: i64,
    pub cpu_request: String,
    pub cpu_limit: String,
    pub memory_request: String,
    pub memory_limit: String,
    pub env_vars: BTreeMap<String, String>,
    /// False when nothing was saved yet and these are the defaults.
    pub customised: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApplication {
    pub project: String,
    pub name: String,
    pub git_url: String,
    #[schema(value_type = Object)]
    pub build_settings: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    pub template_settings: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateApplication {
    pub git_url: Option<String>,
    #[schema(value_type = Object)]
    pub build_settings: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    pub template_settings: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSettings {
    pub replicas: i64,
    pub cpu_request: String,
    pub cpu_limit: String,
    pub memory_request: String,
    pub memory_limit: String,
    #[serde(default)]
    pub env_vars: BTreeMap<String, String>,
}
