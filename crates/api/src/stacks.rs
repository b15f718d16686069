//! Build stacks: presets of how an application is built and packaged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Stack {
    pub name: String,
    pub description: String,
    pub build_command: String,
    pub artifact_paths: Vec<String>,
    pub image_dir: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutStack {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub build_command: String,
    #[serde(default)]
    pub artifact_paths: Vec<String>,
    pub image_dir: Option<String>,
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}
