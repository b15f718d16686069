//! Git webhooks of applications and of projects: configuring them (the
//! secret shown once), their recent deliveries, and the answer a forge gets
//! for a delivery.

use prism_domain::{Forge, ReleaseId, ReleaseRules};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// The forge that sends the pushes: github, gitea (also Forgejo) or gitlab.
    pub forge: Forge,
    /// Which branches and tags make releases; none given, none made.
    #[serde(default)]
    pub release_rules: ReleaseRules,
    /// Your own secret, e.g. GitLab's signing token (`whsec_...`); omit it
    /// and Prism generates one. Shown once in the answer, never again.
    pub secret: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    pub forge: Option<Forge>,
    pub release_rules: Option<ReleaseRules>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateWebhook {
    /// The new secret (omit to have Prism generate one).
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Webhook {
    pub application: String,
    /// The random part of the URL the forge posts to.
    pub public_id: String,
    /// github, gitea or gitlab.
    pub forge: String,
    pub enabled: bool,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the secret was last set (created or rotated).
    pub secret_set_at: i64,
}

/// An application's webhook as shown to those who configure it (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookView {
    #[serde(flatten)]
    pub webhook: Webhook,
    pub release_rules: ReleaseRules,
    /// Where the forge posts: prefix it with Prism's address, e.g.
    /// `https://prism.example.com/hooks/git/web/3f9a...`.
    pub path: String,
    /// The newest deliveries first.
    pub deliveries: Vec<Delivery>,
}

/// A webhook with the secret just set: the only time it is shown.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookSecret {
    #[serde(flatten)]
    pub view: WebhookView,
    /// Paste it into the forge's webhook form now: it is not shown again.
    pub secret: String,
}

/// One delivery as received and what came of it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delivery {
    /// The forge's delivery id (absent when it sent none).
    pub delivery_id: Option<String>,
    pub event: String,
    pub git_ref: Option<String>,
    pub commit_sha: Option<String>,
    /// created, already_released, no_rule, ignored_event, deleted_ref or disabled.
    pub outcome: String,
    pub detail: String,
    /// The release it created.
    pub release_id: Option<String>,
    pub received_at: i64,
}

/// A project's webhook: one URL for every repository of the project.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProjectWebhook {
    pub project: String,
    /// The random part of the URL the forge posts to.
    pub public_id: String,
    /// github, gitea or gitlab.
    pub forge: String,
    pub enabled: bool,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub secret_set_at: i64,
}

/// A project's webhook as shown to those who configure it (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProjectWebhookView {
    #[serde(flatten)]
    pub webhook: ProjectWebhook,
    pub release_rules: ReleaseRules,
    /// Where the forge posts, e.g. `https://prism.example.com/hooks/git-project/shop/3f9a...`.
    pub path: String,
    /// The project's applications and the repository each is released from:
    /// a push releases those whose repository it is.
    pub applications: Vec<ProjectApplication>,
    /// The newest deliveries first.
    pub deliveries: Vec<Delivery>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProjectApplication {
    pub name: String,
    pub git_url: String,
}

/// A project webhook with the secret just set: the only time it is shown.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProjectWebhookSecret {
    #[serde(flatten)]
    pub view: ProjectWebhookView,
    /// Paste it into the forge's webhook form now: it is not shown again.
    pub secret: String,
}

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Duplicate,
    AlreadyReleased,
    NoRule,
    IgnoredEvent,
    DeletedRef,
    Disabled,
    /// A project's webhook: no application of the project has this repository.
    NoApplication,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Duplicate => "duplicate",
            Outcome::AlreadyReleased => "already_released",
            Outcome::NoRule => "no_rule",
            Outcome::IgnoredEvent => "ignored_event",
            Outcome::DeletedRef => "deleted_ref",
            Outcome::Disabled => "disabled",
            Outcome::NoApplication => "no_application",
        }
    }
}

/// The answer to the forge.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Receipt {
    pub outcome: Outcome,
    pub message: String,
    /// The release created (or the one that exists for this ref and commit).
    #[schema(value_type = Option<String>)]
    pub release: Option<ReleaseId>,
    /// The build started with it.
    pub build: Option<i64>,
    /// Why the release was not built (its build settings are incomplete).
    pub build_error: Option<String>,
}

/// What a delivery to a project's webhook did, per application it matched.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProjectReceipt {
    /// `created` when it released any application.
    pub outcome: Outcome,
    pub message: String,
    pub applications: Vec<ApplicationReceipt>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApplicationReceipt {
    pub application: String,
    #[serde(flatten)]
    pub receipt: Receipt,
}
