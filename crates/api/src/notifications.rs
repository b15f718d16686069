//! Notification channels, projects' subscriptions to them, and the delivery log.

use serde::{Deserialize, Serialize};

pub use prism_domain::ChannelKind;

/// A project's subscription of one channel.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Subscription {
    pub project: String,
    pub channel: String,
    pub channel_kind: String,
    /// The event words.
    pub events: Vec<String>,
    /// en or zh-CN.
    pub language: String,
    pub updated_by: String,
    pub updated_at: i64,
}

/// A delivery as the log shows it (with its attempts, when asked for).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: i64,
    /// The delivery id the receiver sees (the same on every attempt).
    pub delivery: String,
    pub channel: String,
    pub project: Option<String>,
    pub event: String,
    pub language: String,
    /// queued, retrying, delivered or failed.
    pub status: String,
    /// The receiver's HTTP status at the last attempt.
    pub response_code: Option<i64>,
    pub attempts: i64,
    /// When the next attempt is due (while retrying).
    pub next_retry_at: Option<i64>,
    /// Why the last attempt failed (the channel's secrets removed).
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub attempt_log: Vec<Attempt>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    pub attempt: i64,
    pub at: i64,
    pub duration_ms: i64,
    pub delivered: bool,
    pub response_code: Option<i64>,
    pub error: Option<String>,
}

/// An e-mail channel's settings (its password is the channel's `secret`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// The SMTP server's host name or address.
    pub host: String,
    /// Default 587.
    #[serde(default = "default_port")]
    pub port: u16,
    /// `starttls` (default), `tls` (TLS from the first byte, port 465) or
    /// `none` (a relay on the same machine or network only).
    #[serde(default = "default_tls")]
    pub tls: String,
    /// Sign in as this user (the password is `secret`).
    pub username: Option<String>,
    /// `prism@example.com` or `Prism <prism@example.com>`.
    pub from: String,
    /// 1 to 50 recipients.
    pub to: Vec<String>,
}

/// Creates or replaces a channel.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutChannel {
    pub kind: ChannelKind,
    /// The receiver's URL (every kind but email). Stored sealed, never
    /// returned; omit to keep the stored one.
    pub url: Option<String>,
    /// The signing secret (webhook, dingtalk, feishu) or the SMTP password
    /// (email). Stored sealed, never returned; omit to keep the stored one.
    pub secret: Option<String>,
    /// Remove the stored secret (deliveries go unsigned).
    #[serde(default)]
    pub clear_secret: bool,
    /// The only project that may subscribe to it; omit for every project.
    pub project: Option<String>,
    /// Required for kind email.
    pub email: Option<EmailSettings>,
}

/// A channel as the API shows it: never its URL or secret.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChannelView {
    pub name: String,
    pub kind: ChannelKind,
    /// The only project that may subscribe to it; none: every project.
    pub project: Option<String>,
    /// Where it goes: the URL's scheme and host, or the SMTP server (admins only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// E-mail settings (admins only; the password is never shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailSettings>,
    /// Whether a signing secret or SMTP password is stored.
    pub has_secret: bool,
    /// The projects subscribing to it (admins only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscribed_by: Option<Vec<String>>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestMessage {
    /// en (default) or zh-CN.
    pub language: Option<String>,
}

/// Subscribes a channel to a project's events.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSubscription {
    /// build_failed, build_succeeded, deploy_awaiting_approval,
    /// deploy_succeeded, deploy_failed, auto_rollback, hold_placed,
    /// hold_overridden, freeze_broken.
    pub events: Vec<String>,
    /// The messages' language: en (default) or zh-CN.
    pub language: Option<String>,
}

fn default_port() -> u16 {
    587
}

fn default_tls() -> String {
    "starttls".into()
}
