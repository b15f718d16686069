//! A project's manifest templates, their versions, and previews.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateSetVersion {
    pub version: i64,
    /// The project's own templates (name -> body); built-ins fill the rest.
    pub files: BTreeMap<String, String>,
    pub author: String,
    pub note: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VersionSummary {
    pub version: i64,
    pub author: String,
    pub note: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Templates {
    /// The project's current set: its own templates (name -> body).
    pub current: TemplateSetVersion,
    /// The built-in templates, used wherever the project has none of that name.
    pub builtin: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveTemplates {
    /// The version this edit is based on (optimistic locking).
    pub base_version: i64,
    /// The project's templates after the edit (name -> body); an empty body
    /// removes that built-in.
    pub files: BTreeMap<String, String>,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub environment: String,
    pub release: String,
    /// Unsaved templates to try (default: the project's current set).
    pub files: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Preview {
    pub yaml: String,
    #[schema(value_type = Object)]
    pub objects: serde_json::Value,
}
