//! Release orders and their history.

use serde::{Deserialize, Serialize};

use crate::builds::Build;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Release {
    /// The release id, e.g. `r42`; also the image tag.
    pub id: String,
    pub application: String,
    pub project: String,
    pub git_ref: String,
    pub change_note: String,
    pub creator: String,
    /// created, building, built, build_failed, promoted, deploying, deployed,
    /// deploy_failed, passed, closed or abandoned.
    pub state: String,
    /// The environment the state refers to (promoted/deploying/... in it).
    pub environment: Option<String>,
    pub commit_sha: Option<String>,
    pub image_ref: Option<String>,
    pub image_digest: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transition {
    pub action: String,
    pub from_state: String,
    pub from_environment: Option<String>,
    pub to_state: String,
    pub to_environment: Option<String>,
    pub actor: String,
    pub note: String,
    pub at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReleasePage {
    pub items: Vec<Release>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRelease {
    pub application: String,
    /// Branch, tag or commit to build.
    pub git_ref: String,
    /// What changes, for testers and the deploy review.
    pub change_note: String,
    /// Start building it at once with the application's build settings.
    #[serde(default)]
    pub build: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedRelease {
    #[serde(flatten)]
    pub release: Release,
    /// The build started with it (when asked for).
    pub build: Option<Build>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActRequest {
    /// Target environment for `promote` and `deploy`.
    pub environment: Option<String>,
    /// Operators only: move into an environment another release holds.
    pub override_reason: Option<String>,
    #[serde(default)]
    pub note: String,
    /// With `build_succeeded`: the commit built, the image and its digest.
    pub commit_sha: Option<String>,
    pub image_ref: Option<String>,
    pub image_digest: Option<String>,
}
