//! Builds of a release's image, and their logs.

use prism_domain::{BuildFailure, BuildState};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Build {
    pub id: i64,
    pub release: String,
    pub application: String,
    pub state: BuildState,
    /// `local` or the Jenkins executor's name.
    pub executor: String,
    /// The settings the build ran with (application settings over the stack preset).
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    pub commit_sha: Option<String>,
    pub image_ref: Option<String>,
    pub image_digest: Option<String>,
    pub layer_digest: Option<String>,
    pub base_image: Option<String>,
    pub base_digest: Option<String>,
    /// The registered image the build command ran in, and the digest it was
    /// pinned to (None on Jenkins, on the unsandboxed runner, and before the command ran).
    pub builder_image: Option<String>,
    pub builder_digest: Option<String>,
    pub bytes_uploaded: Option<i64>,
    /// Where the build ran outside Prism (the Jenkins console).
    pub external_url: Option<String>,
    pub failure_kind: Option<BuildFailure>,
    pub error: Option<String>,
    pub cancel_requested: bool,
    pub requested_by: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub updated_at: i64,
    /// While queued: 1 for the next build to start, counting every queued
    /// build of the server (set by the read that returns one build).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<i64>,
}

/// One stored log line.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogLine {
    pub seq: i64,
    /// stdout, stderr or system
    pub stream: String,
    pub line: String,
    pub at: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBuild {}

/// The `end` event of a build's stream (`/builds/{id}/stream`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BuildEnd {
    pub state: BuildState,
    pub failure_kind: Option<BuildFailure>,
    pub error: Option<String>,
    pub image_ref: Option<String>,
    pub image_digest: Option<String>,
}
