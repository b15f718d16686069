//! Git webhooks of applications: the webhook (forge, sealed secret, release
//! rules as JSON), the deliveries it received (a delivery id is stored once
//! per webhook, so a repeated delivery is seen as such) and the pushes that
//! made releases (one per application, ref and commit). The signature
//! checks and the rules live in `prism_webhooks`; this module only stores.

use sqlx::AnyConnection;

use crate::error::unique;
use crate::{now_ms, Result, StoreError};

/// Which kind of webhook a row-level call means: an application's own, or
/// its project's (one URL for every repository of the project).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hooks {
    Application,
    Project,
}

impl Hooks {
    fn table(self) -> &'static str {
        match self {
            Hooks::Application => "app_webhooks",
            Hooks::Project => "project_webhooks",
        }
    }

    fn deliveries(self) -> &'static str {
        match self {
            Hooks::Application => "webhook_deliveries",
            Hooks::Project => "project_webhook_deliveries",
        }
    }
}

/// The name a webhook acts under: in the audit log, as a release's creator
/// and as the user row releases point at. Login names cannot hold `:`, so
/// no person can be called this.
pub fn actor_name(app: &str) -> String {
    format!("webhook:{app}")
}

/// Whether a user row is a webhook's (not a person: it never signs in).
pub fn is_webhook_user(username: &str) -> bool {
    username.starts_with("webhook:")
}

/// The user row of `app`'s webhook (created on first use): disabled, with
/// no password that could ever match, no role and no token, so that nobody
/// signs in as it; releases made by the webhook name it as their creator.
pub async fn webhook_user(c: &mut AnyConnection, app: &str) -> Result<i64> {
    actor_user(c, &actor_name(app), &format!("Git webhook of {app}")).await
}

/// The name a project's webhook acts under (`webhook:project:NAME`).
pub fn project_actor_name(project: &str) -> String {
    format!("webhook:project:{project}")
}

/// The user row of a project's webhook, made like an application's.
pub async fn project_webhook_user(c: &mut AnyConnection, project: &str) -> Result<i64> {
    actor_user(
        c,
        &project_actor_name(project),
        &format!("Git webhook of project {project}"),
    )
    .await
}

async fn actor_user(c: &mut AnyConnection, name: &str, display: &str) -> Result<i64> {
    sqlx::query(
        "INSERT INTO users (username, display_name, password_hash, is_admin, disabled, created_at) \
         VALUES ($1, $2, '!', 0, 1, $3) ON CONFLICT (username) DO NOTHING",
    )
    .bind(name)
    .bind(display)
    .bind(now_ms())
    .execute(&mut *c)
    .await?;
    Ok(sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
        .bind(name)
        .fetch_one(c)
        .await?)
}

#[derive(Clone, sqlx::FromRow)]
pub struct Webhook {
    pub id: i64,
    pub app_id: i64,
    pub application: String,
    /// The random part of the URL the forge posts to.
    pub public_id: String,
    /// github, gitea or gitlab.
    pub forge: String,
    pub secret_enc: Vec<u8>,
    /// The release rules as JSON (`prism_domain::ReleaseRules`).
    pub rules: String,
    pub enabled: i64,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the secret was last set (created or rotated).
    pub secret_set_at: i64,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("application", &self.application)
            .field("forge", &self.forge)
            .field("secret", &"<sealed>")
            .field("rules", &self.rules)
            .field("enabled", &self.enabled)
            .finish()
    }
}

const SELECT: &str = "SELECT w.id, w.app_id, a.name AS application, w.public_id, w.forge, w.secret_enc, w.rules, \
    w.enabled, w.created_by, w.created_at, w.updated_at, w.secret_set_at FROM app_webhooks w JOIN applications a ON a.id = w.app_id";

pub struct NewWebhook<'a> {
    pub app_id: i64,
    pub application: &'a str,
    pub public_id: &'a str,
    pub forge: &'a str,
    pub secret_enc: &'a [u8],
    pub rules: &'a str,
    pub enabled: bool,
    pub created_by: &'a str,
}

pub async fn create(c: &mut AnyConnection, w: NewWebhook<'_>) -> Result<Webhook> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO app_webhooks (app_id, public_id, forge, secret_enc, rules, enabled, created_by, created_at, updated_at, secret_set_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8)",
    )
    .bind(w.app_id)
    .bind(w.public_id)
    .bind(w.forge)
    .bind(w.secret_enc)
    .bind(w.rules)
    .bind(w.enabled as i64)
    .bind(w.created_by)
    .bind(now)
    .execute(&mut *c)
    .await
    .map_err(unique("webhook", "application", w.application))?;
    for_app(c, w.app_id)
        .await?
        .ok_or_else(|| StoreError::not_found("webhook", w.application))
}

/// The application's webhook, if it has one.
pub async fn for_app(c: &mut AnyConnection, app_id: i64) -> Result<Option<Webhook>> {
    Ok(sqlx::query_as(&format!("{SELECT} WHERE w.app_id = $1"))
        .bind(app_id)
        .fetch_optional(c)
        .await?)
}

/// The webhook a forge posts to: application name and public id must both match.
pub async fn by_address(c: &mut AnyConnection, application: &str, public_id: &str) -> Result<Option<Webhook>> {
    Ok(
        sqlx::query_as(&format!("{SELECT} WHERE a.name = $1 AND w.public_id = $2"))
            .bind(application)
            .bind(public_id)
            .fetch_optional(c)
            .await?,
    )
}

/// Changes forge, rules and whether it is enabled (the caller validated them).
pub async fn update(
    c: &mut AnyConnection,
    hooks: Hooks,
    id: i64,
    forge: &str,
    rules: &str,
    enabled: bool,
) -> Result<()> {
    sqlx::query(&format!(
        "UPDATE {} SET forge = $2, rules = $3, enabled = $4, updated_at = $5 WHERE id = $1",
        hooks.table()
    ))
    .bind(id)
    .bind(forge)
    .bind(rules)
    .bind(enabled as i64)
    .bind(now_ms())
    .execute(c)
    .await?;
    Ok(())
}

/// Replaces the sealed secret.
pub async fn set_secret(c: &mut AnyConnection, hooks: Hooks, id: i64, secret_enc: &[u8]) -> Result<()> {
    let now = now_ms();
    sqlx::query(&format!(
        "UPDATE {} SET secret_enc = $2, updated_at = $3, secret_set_at = $3 WHERE id = $1",
        hooks.table()
    ))
    .bind(id)
    .bind(secret_enc)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

/// Removes the webhook and its delivery log (the record of the releases
/// pushes made stays with the application).
pub async fn delete(c: &mut AnyConnection, hooks: Hooks, id: i64) -> Result<()> {
    sqlx::query(&format!("DELETE FROM {} WHERE webhook_id = $1", hooks.deliveries()))
        .bind(id)
        .execute(&mut *c)
        .await?;
    sqlx::query(&format!("DELETE FROM {} WHERE id = $1", hooks.table()))
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

/// One delivery as received and what came of it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delivery {
    pub id: i64,
    /// The forge's delivery id (absent when it sent none).
    pub delivery_id: Option<String>,
    pub event: String,
    pub git_ref: Option<String>,
    pub commit_sha: Option<String>,
    /// created, already_released, no_rule, ignored_event, deleted_ref or disabled.
    pub outcome: String,
    pub detail: String,
    /// The release it created.
    pub release_id: Option<i64>,
    pub received_at: i64,
}

pub struct NewDelivery<'a> {
    pub hooks: Hooks,
    pub webhook_id: i64,
    pub delivery_id: Option<&'a str>,
    pub event: &'a str,
    pub git_ref: Option<&'a str>,
    pub commit_sha: Option<&'a str>,
    pub outcome: &'a str,
    pub detail: &'a str,
}

/// Records a delivery. Returns its row id, or None when this webhook has
/// already received a delivery with the same id (a replay or a retry).
pub async fn record_delivery(c: &mut AnyConnection, d: NewDelivery<'_>) -> Result<Option<i64>> {
    let id: Option<i64> = sqlx::query_scalar(&format!(
        "INSERT INTO {} (webhook_id, delivery_id, event, git_ref, commit_sha, outcome, detail, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (webhook_id, delivery_id) DO NOTHING RETURNING id",
        d.hooks.deliveries()
    ))
    .bind(d.webhook_id)
    .bind(d.delivery_id)
    .bind(d.event)
    .bind(d.git_ref)
    .bind(d.commit_sha)
    .bind(d.outcome)
    .bind(d.detail)
    .bind(now_ms())
    .fetch_optional(c)
    .await?;
    Ok(id)
}

/// Sets what came of a delivery once it is known.
pub async fn set_outcome(
    c: &mut AnyConnection,
    hooks: Hooks,
    delivery: i64,
    outcome: &str,
    detail: &str,
    release_id: Option<i64>,
) -> Result<()> {
    sqlx::query(&format!(
        "UPDATE {} SET outcome = $2, detail = $3, release_id = $4 WHERE id = $1",
        hooks.deliveries()
    ))
    .bind(delivery)
    .bind(outcome)
    .bind(detail)
    .bind(release_id)
    .execute(c)
    .await?;
    Ok(())
}

/// Forgets deliveries received before `before_ms` (their ids may come again
/// then; the ref-and-commit record still keeps a second release from being made).
pub async fn prune_deliveries(c: &mut AnyConnection, hooks: Hooks, webhook_id: i64, before_ms: i64) -> Result<u64> {
    Ok(sqlx::query(&format!(
        "DELETE FROM {} WHERE webhook_id = $1 AND received_at < $2",
        hooks.deliveries()
    ))
    .bind(webhook_id)
    .bind(before_ms)
    .execute(c)
    .await?
    .rows_affected())
}

/// The newest deliveries first.
pub async fn recent_deliveries(
    c: &mut AnyConnection,
    hooks: Hooks,
    webhook_id: i64,
    limit: i64,
) -> Result<Vec<Delivery>> {
    Ok(sqlx::query_as(&format!(
        "SELECT id, delivery_id, event, git_ref, commit_sha, outcome, detail, release_id, received_at \
         FROM {} WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2",
        hooks.deliveries()
    ))
    .bind(webhook_id)
    .bind(limit)
    .fetch_all(c)
    .await?)
}

/// Records that a push of (`git_ref`, `commit`) made `release_id`. False
/// when such a push made a release already (a concurrent delivery won): the
/// caller rolls its transaction back.
pub async fn claim_push(
    c: &mut AnyConnection,
    app_id: i64,
    git_ref: &str,
    commit: &str,
    release_id: i64,
) -> Result<bool> {
    let n = sqlx::query(
        "INSERT INTO webhook_releases (app_id, git_ref, commit_sha, release_id, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (app_id, git_ref, commit_sha) DO NOTHING",
    )
    .bind(app_id)
    .bind(git_ref)
    .bind(commit)
    .bind(release_id)
    .bind(now_ms())
    .execute(c)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// The release a push of (`git_ref`, `commit`) made, or else a release of
/// the same branch or tag (`ref_name`) whose build recorded that commit.
pub async fn release_for_push(
    c: &mut AnyConnection,
    app_id: i64,
    git_ref: &str,
    ref_name: &str,
    commit: &str,
) -> Result<Option<i64>> {
    let by_push: Option<i64> = sqlx::query_scalar(
        "SELECT release_id FROM webhook_releases WHERE app_id = $1 AND git_ref = $2 AND commit_sha = $3",
    )
    .bind(app_id)
    .bind(git_ref)
    .bind(commit)
    .fetch_optional(&mut *c)
    .await?;
    if by_push.is_some() {
        return Ok(by_push);
    }
    Ok(sqlx::query_scalar(
        "SELECT id FROM releases WHERE app_id = $1 AND git_ref = $2 AND commit_sha = $3 ORDER BY id LIMIT 1",
    )
    .bind(app_id)
    .bind(ref_name)
    .bind(commit)
    .fetch_optional(c)
    .await?)
}

/// A project's webhook: one URL for every repository of the project.
#[derive(Clone, sqlx::FromRow)]
pub struct ProjectWebhook {
    pub id: i64,
    pub project_id: i64,
    pub project: String,
    /// The random part of the URL the forge posts to.
    pub public_id: String,
    /// github, gitea or gitlab.
    pub forge: String,
    pub secret_enc: Vec<u8>,
    pub rules: String,
    pub enabled: i64,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub secret_set_at: i64,
}

impl std::fmt::Debug for ProjectWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectWebhook")
            .field("project", &self.project)
            .field("forge", &self.forge)
            .field("secret", &"<sealed>")
            .field("rules", &self.rules)
            .field("enabled", &self.enabled)
            .finish()
    }
}

const SELECT_PROJECT: &str = "SELECT w.id, w.project_id, p.name AS project, w.public_id, w.forge, w.secret_enc, w.rules, \
    w.enabled, w.created_by, w.created_at, w.updated_at, w.secret_set_at FROM project_webhooks w JOIN projects p ON p.id = w.project_id";

pub struct NewProjectWebhook<'a> {
    pub project_id: i64,
    pub project: &'a str,
    pub public_id: &'a str,
    pub forge: &'a str,
    pub secret_enc: &'a [u8],
    pub rules: &'a str,
    pub enabled: bool,
    pub created_by: &'a str,
}

pub async fn create_for_project(c: &mut AnyConnection, w: NewProjectWebhook<'_>) -> Result<ProjectWebhook> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO project_webhooks (project_id, public_id, forge, secret_enc, rules, enabled, created_by, created_at, updated_at, secret_set_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8)",
    )
    .bind(w.project_id)
    .bind(w.public_id)
    .bind(w.forge)
    .bind(w.secret_enc)
    .bind(w.rules)
    .bind(w.enabled as i64)
    .bind(w.created_by)
    .bind(now)
    .execute(&mut *c)
    .await
    .map_err(unique("webhook", "project", w.project))?;
    for_project(c, w.project_id)
        .await?
        .ok_or_else(|| StoreError::not_found("webhook", w.project))
}

/// The project's webhook, if it has one.
pub async fn for_project(c: &mut AnyConnection, project_id: i64) -> Result<Option<ProjectWebhook>> {
    Ok(sqlx::query_as(&format!("{SELECT_PROJECT} WHERE w.project_id = $1"))
        .bind(project_id)
        .fetch_optional(c)
        .await?)
}

/// The project webhook a forge posts to: project name and public id must both match.
pub async fn by_project_address(
    c: &mut AnyConnection,
    project: &str,
    public_id: &str,
) -> Result<Option<ProjectWebhook>> {
    Ok(
        sqlx::query_as(&format!("{SELECT_PROJECT} WHERE p.name = $1 AND w.public_id = $2"))
            .bind(project)
            .bind(public_id)
            .fetch_optional(c)
            .await?,
    )
}
