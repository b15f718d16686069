//! The server's response records, as far as the tables need them. Unknown
//! fields are ignored, so newer servers still work.

use serde::Deserialize;

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
