//! The server's response records, as far as the tables need them. Unknown
//! fields are ignored, so newer servers still work.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: i64,
}

#[derive(Debug, Deserialize)]
pub struct Membership {
    pub project: String,
    pub username: String,
    pub role: String,
    pub created_at: i64,
}

#[derive(Debug, Deserialize)]
pub struct Me {
    pub user: User,
    #[serde(default)]
    pub memberships: Vec<Membership>,
}

#[derive(Debug, Deserialize)]
pub struct ApiToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct NewToken {
    pub token: ApiToken,
    pub secret: String,
}

#[derive(Debug, Deserialize)]
pub struct Cluster {
    pub name: String,
    pub api_url: String,
    pub ca_cert: Option<String>,
    pub insecure_skip_tls_verify: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct EnvPolicy {
    pub deploy_roles: Vec<String>,
    pub requires_review: bool,
    pub requires_previous: bool,
}

#[derive(Debug, Deserialize)]
pub struct Environment {
    pub name: String,
    pub position: i64,
    pub cluster: Option<String>,
    pub namespace: String,
    pub policy: EnvPolicy,
    pub created_at: i64,
}

#[derive(Debug, Deserialize)]
pub struct Project {
    pub name: String,
    pub description: String,
    pub created_at: i64,
}

#[derive(Debug, Deserialize)]
pub struct Application {
    pub name: String,
    pub project: String,
    pub git_url: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An application's git webhook (`secret` only in the answer that set it).
#[derive(Debug, Deserialize)]
pub struct Webhook {
    pub path: String,
    pub forge: String,
    pub enabled: bool,
    pub release_rules: WebhookRules,
    pub secret_set_at: i64,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub deliveries: Vec<WebhookDelivery>,
    /// A project's webhook: the applications a push can release.
    #[serde(default)]
    pub applications: Vec<WebhookApplication>,
}

#[derive(Debug, Deserialize)]
pub struct WebhookApplication {
    pub name: String,
    pub git_url: String,
}

#[derive(Debug, Deserialize)]
pub struct WebhookRules {
    pub branches: Vec<String>,
    pub tags: Vec<String>,
    pub build: bool,
}

#[derive(Debug, Deserialize)]
pub struct WebhookDelivery {
    pub event: String,
    pub git_ref: Option<String>,
    pub commit_sha: Option<String>,
    pub outcome: String,
    pub release_id: Option<String>,
    pub received_at: i64,
}

#[derive(Debug, Deserialize)]
pub struct EnvSettings {
    pub environment: String,
    pub replicas: i64,
    pub cpu_request: String,
    pub cpu_limit: String,
    pub memory_request: String,
    pub memory_limit: String,
    #[serde(default)]
    pub env_vars: BTreeMap<String, String>,
    pub customised: bool,
}

#[derive(Debug, Deserialize)]
pub struct Release {
    pub id: String,
    pub application: String,
    pub project: String,
    pub git_ref: String,
    pub change_note: String,
    pub creator: String,
    pub state: String,
    pub environment: Option<String>,
    pub commit_sha: Option<String>,
    pub image_ref: Option<String>,
    pub image_digest: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Deserialize)]
pub struct ReleasePage {
    pub items: Vec<Release>,
    pub next: Option<String>,
}

#[derive(Debug, Deserialize)]
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

#[derive(Debug, Deserialize)]
pub struct BoardCell {
    pub application: String,
    pub environment: String,
    pub current_release: Option<String>,
    pub incoming_release: Option<String>,
    pub incoming_state: Option<String>,
    pub held_by: Option<String>,
    pub hold_release: Option<String>,
    pub hold_note: Option<String>,
    pub hold_expires_at: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub address: String,
    pub action: String,
    pub record_type: String,
    pub record_id: String,
    pub detail: serde_json::Value,
}

#[derive(Debug, Deserialize)]
pub struct Deploy {
    pub id: i64,
    pub release: String,
    pub application: String,
    pub environment: String,
    pub kind: prism_domain::DeployKind,
    pub state: prism_domain::DeployState,
    pub template_version: Option<i64>,
    #[serde(default)]
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
    /// While it waits for its window: when it deploys, in the window's zone.
    #[serde(default)]
    pub opens_local: Option<String>,
    #[serde(default)]
    pub break_glass_by: Option<String>,
    #[serde(default)]
    pub break_glass_reason: Option<String>,
    /// A canary or blue-green rollout's progress.
    #[serde(default)]
    pub rollout: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct DeployEvent {
    pub at: i64,
    pub step: String,
    pub message: String,
}

/// The `end` event of a deploy's stream.
#[derive(Debug, Deserialize)]
pub struct DeployEnd {
    pub state: prism_domain::DeployState,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Drift {
    pub deploy: Option<i64>,
    pub drifted: bool,
    #[serde(default)]
    pub diff: serde_json::Value,
}

#[derive(Debug, Deserialize)]
pub struct TemplateSetVersion {
    pub version: i64,
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    pub author: String,
    pub note: String,
    pub created_at: i64,
}

#[derive(Debug, Deserialize)]
pub struct Templates {
    pub current: TemplateSetVersion,
    #[serde(default)]
    pub builtin: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub struct VersionSummary {
    pub version: i64,
    pub author: String,
    pub note: String,
    pub created_at: i64,
}

#[derive(Debug, Deserialize)]
pub struct Preview {
    pub yaml: String,
}

#[derive(Debug, Deserialize)]
pub struct Health {
    pub ok: bool,
    pub version: Option<String>,
    pub error: Option<String>,
}

/// A secret's record (Prism never returns its value).
#[derive(Debug, Deserialize)]
pub struct AppSecret {
    pub project: String,
    pub application: Option<String>,
    pub environment: Option<String>,
    pub name: String,
    pub delivery: String,
    pub ref_secret: Option<String>,
    pub ref_key: Option<String>,
    pub version: i64,
    pub updated_by: String,
    pub updated_at: i64,
}
