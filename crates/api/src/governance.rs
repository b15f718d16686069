//! Deploy governance: approval policies and votes, and the deploy windows
//! and freezes of an environment.

use prism_domain::approval::ApprovalPolicy;
use prism_domain::window::Schedule;
use prism_domain::DeployState;
use serde::{Deserialize, Serialize};

/// Where the policy that applies came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicySource {
    Project,
    Environment,
    /// Nobody set one: the environment's `requires_review` flag.
    Implicit,
}

/// One person's recorded vote on a deploy.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VoteRecord {
    pub username: String,
    pub comment: String,
    pub at: i64,
}

/// The policy that applies, and where it was set.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PolicyView {
    pub environment: String,
    pub project: Option<String>,
    pub policy: ApprovalPolicy,
    pub source: PolicySource,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPolicy {
    /// A project whose deploys this policy covers (overriding the
    /// environment's); none for the environment's own.
    #[serde(default)]
    pub project: Option<String>,
    /// The policy; null removes it (the environment's, or the implicit one, applies).
    pub policy: Option<ApprovalPolicy>,
}

/// Who has voted on a deploy and who still may.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approvals {
    pub deploy: i64,
    pub state: DeployState,
    pub policy: ApprovalPolicy,
    pub source: PolicySource,
    /// pending, approved or rejected
    pub verdict: String,
    pub required: u8,
    /// Approvals that count.
    pub approvals: Vec<VoteRecord>,
    pub rejections: Vec<VoteRecord>,
    /// Members (and admins) who may still approve while it awaits review.
    pub may_still_approve: Vec<String>,
    /// Whether the caller may vote now, and if not why.
    pub you_may_vote: bool,
    pub why_not: Option<String>,
    pub requested_by: String,
    pub release_creator: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoteInput {
    #[serde(default)]
    pub comment: String,
}

/// Whether deploying is open now, and if not why and until when.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Openness {
    pub open: bool,
    /// Why it is closed.
    pub closed_by: Option<String>,
    /// When it opens next (ms since the epoch), and in the window's zone.
    pub opens_at: Option<i64>,
    pub opens_local: Option<String>,
}

/// An environment's schedule and whether deploying is open now.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScheduleView {
    pub environment: String,
    pub schedule: Schedule,
    pub now: Openness,
}
