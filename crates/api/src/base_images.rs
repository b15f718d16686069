//! Base images: the public bases and runtime bases application images are
//! built on, their builds, and what is outdated when one changes.

use prism_domain::BaseBuildState;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BaseImage {
    pub name: String,
    pub tier: i64,
    pub parent: Option<String>,
    pub registry: Option<String>,
    pub repository: String,
    pub tag: String,
    /// How Prism builds it (empty for an image registered as it is).
    #[schema(value_type = Object)]
    pub recipe: serde_json::Value,
    /// The digest of the current build (or of the registered image).
    pub digest: Option<String>,
    /// The parent's digest this build was made on.
    pub parent_digest: Option<String>,
    pub built_at: Option<i64>,
    #[schema(value_type = String, example = "succeeded")]
    pub build_state: BaseBuildState,
    pub build_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BaseVersion {
    pub digest: String,
    pub parent_digest: Option<String>,
    pub built_at: i64,
}

/// An application whose newest image is built on an older digest of a base.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OutdatedApp {
    pub application: String,
    pub project: String,
    /// The release whose image is the application's newest.
    pub release_seq: i64,
    pub build_id: i64,
    pub commit_sha: Option<String>,
    pub git_ref: String,
    pub base_digest: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBase {
    pub name: String,
    /// 1: public base; 2: runtime base on a tier-1 parent.
    pub tier: i64,
    pub parent: Option<String>,
    pub registry: String,
    pub repository: String,
    #[serde(default = "latest")]
    pub tag: String,
    /// How Prism builds it; omit to register an existing image as it is.
    #[schema(value_type = Object)]
    pub recipe: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BaseDetail {
    #[serde(flatten)]
    pub base: BaseImage,
    /// Every digest it was built as, newest first.
    pub versions: Vec<BaseVersion>,
    /// Runtime bases built on an older digest of this one.
    pub outdated_children: Vec<BaseImage>,
    /// Applications whose newest image is built on an older digest of this one.
    pub outdated_applications: Vec<OutdatedApp>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBase {
    /// A new recipe (same rules as at creation); the next build uses it.
    #[schema(value_type = Object)]
    pub recipe: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rebuilt {
    pub application: String,
    pub release: String,
    pub build: i64,
}

fn latest() -> String {
    "latest".into()
}
