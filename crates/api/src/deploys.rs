//! Deploys of a release into an environment (and rollbacks), their events
//! and drift.

use prism_domain::{DeployFailure, DeployKind, DeployState};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Deploy {
    pub id: i64,
    pub release: String,
    pub application: String,
    pub environment: String,
    pub kind: DeployKind,
    pub state: DeployState,
    /// Why it failed, when it did.
    pub failure_kind: Option<DeployFailure>,
    pub template_version: Option<i64>,
    /// The rendered objects (JSON), once planned.
    #[schema(value_type = Object)]
    pub manifests: Option<serde_json::Value>,
    /// Per object: create, update (with changes), unchanged or prune.
    #[schema(value_type = Object)]
    pub diff: Option<serde_json::Value>,
    pub requested_by: String,
    pub reviewer: Option<String>,
    pub review_comment: Option<String>,
    pub reviewed_at: Option<i64>,
    pub rollback_of: Option<i64>,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// Who started it during a freeze or outside its windows (break-glass), and why.
    pub break_glass_by: Option<String>,
    pub break_glass_reason: Option<String>,
    /// While it waits for its window: when deploying opens (ms since the
    /// epoch), and the same in the window's zone ("2026-12-08 22:00 Asia/Shanghai").
    pub opens_at: Option<i64>,
    pub opens_local: Option<String>,
    /// A canary or blue-green rollout's progress (strategy, step, split,
    /// gate values), once planned with one.
    #[schema(value_type = Option<Object>)]
    pub rollout: Option<serde_json::Value>,
    /// What a person asked the running rollout to do, until the job takes it.
    pub rollout_command: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeployEvent {
    pub id: i64,
    pub deploy_id: i64,
    pub at: i64,
    pub step: String,
    pub message: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartDeploy {
    pub environment: String,
    #[serde(default)]
    pub note: String,
    /// Deploy although deploying is closed (a freeze, outside the windows):
    /// why it cannot wait. Only the roles the environment's schedule names,
    /// signed in as people (never API tokens), may break glass.
    #[serde(default)]
    pub break_glass_reason: Option<String>,
}

/// A deploy with everything its reviewer must see: the release (commit,
/// change note, image digest, who created it), who built it and who passed
/// it in the environments before, next to the rendered objects and the diff.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeployDetail {
    #[serde(flatten)]
    pub deploy: Deploy,
    pub release_info: ReleaseSummary,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReleaseSummary {
    pub git_ref: String,
    pub commit_sha: Option<String>,
    pub change_note: String,
    pub image_ref: Option<String>,
    pub image_digest: Option<String>,
    pub created_by: String,
    /// Who reported the build result.
    pub built_by: Option<String>,
    /// Who passed it, per environment, in order.
    pub passed_by: Vec<PassedBy>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PassedBy {
    pub environment: Option<String>,
    pub tester: String,
    pub note: String,
    pub at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    /// approve or reject
    pub decision: String,
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// The successful deploy to return to (default: the last one before the current).
    pub to_deploy: Option<i64>,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Drift {
    /// The deploy whose objects are compared with the cluster.
    pub deploy: Option<i64>,
    pub drifted: bool,
    #[schema(value_type = Object)]
    pub diff: serde_json::Value,
    /// A canary or blue-green deploy running now: the differences its
    /// rollout makes on purpose (the stable Deployment's replicas, the live
    /// Service pinned to a release) are not drift.
    pub rollout_deploy: Option<i64>,
}

/// The `end` event of a deploy's stream (`/deploys/{id}/stream`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeployEnd {
    pub state: DeployState,
    pub error: Option<String>,
}
