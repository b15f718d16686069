//! Notifications: the channels admins set up (the URL and the secret
//! sealed by the server, `*_enc`), each project's subscriptions (events ->
//! channel, language), and the delivery log (one row per notice and
//! channel, one per attempt). Event kinds, languages and statuses are the
//! words of `prism_notify`; this module stores them as text.

use serde::Serialize;
use sqlx::AnyConnection;

use crate::error::unique;
use crate::{now_ms, Result, StoreError};

/// A channel. The URL and the secret are sealed and never serialised.
#[derive(Clone, Serialize, sqlx::FromRow)]
pub struct Channel {
    #[serde(skip)]
    pub id: i64,
    pub name: String,
    /// webhook, slack, dingtalk, feishu, wecom or email.
    pub kind: String,
    /// The only project that may subscribe to it; none: every project.
    pub project: Option<String>,
    #[serde(skip)]
    pub project_id: Option<i64>,
    /// What may be shown of where it goes: the URL's scheme and host, or the SMTP server.
    pub target: String,
    /// E-mail settings without the password (JSON; `{}` for other kinds).
    #[serde(skip)]
    pub settings: String,
    #[serde(skip)]
    pub url_enc: Option<Vec<u8>>,
    #[serde(skip)]
    pub secret_enc: Option<Vec<u8>>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("project", &self.project)
            .field("target", &self.target)
            .field("url", &self.url_enc.as_ref().map(|_| "<sealed>"))
            .field("secret", &self.secret_enc.as_ref().map(|_| "<sealed>"))
            .finish()
    }
}

const CHANNEL_COLS: &str = "c.id, c.name, c.kind, p.name AS project, c.project_id, c.target, c.settings, \
     c.url_enc, c.secret_enc, c.created_by, c.created_at, c.updated_at";
const CHANNEL_FROM: &str = "notification_channels c LEFT JOIN projects p ON p.id = c.project_id";

/// A channel's fields as written (already checked and sealed).
pub struct ChannelFields<'a> {
    pub kind: &'a str,
    pub project_id: Option<i64>,
    pub target: &'a str,
    pub settings: &'a str,
    /// None keeps the stored URL (on update).
    pub url_enc: Option<Vec<u8>>,
    /// None keeps the stored secret unless `clear_secret`.
    pub secret_enc: Option<Vec<u8>>,
    pub clear_secret: bool,
    pub by: &'a str,
}

pub async fn create_channel(c: &mut AnyConnection, name: &str, f: ChannelFields<'_>) -> Result<Channel> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO notification_channels (name, kind, project_id, target, settings, url_enc, secret_enc, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(name)
    .bind(f.kind)
    .bind(f.project_id)
    .bind(f.target)
    .bind(f.settings)
    .bind(f.url_enc)
    .bind(f.secret_enc)
    .bind(f.by)
    .bind(now)
    .execute(&mut *c)
    .await
    .map_err(unique("notification channel", "name", name))?;
    channel_by_name(c, name).await
}

pub async fn update_channel(c: &mut AnyConnection, name: &str, f: ChannelFields<'_>) -> Result<Channel> {
    let n = sqlx::query(
        "UPDATE notification_channels SET kind = $2, project_id = $3, target = $4, settings = $5, \
         url_enc = COALESCE($6, url_enc), \
         secret_enc = CASE WHEN $8 = 1 THEN NULL ELSE COALESCE($7, secret_enc) END, updated_at = $9 \
         WHERE name = $1",
    )
    .bind(name)
    .bind(f.kind)
    .bind(f.project_id)
    .bind(f.target)
    .bind(f.settings)
    .bind(f.url_enc)
    .bind(f.secret_enc)
    .bind(f.clear_secret as i64)
    .bind(now_ms())
    .execute(&mut *c)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(StoreError::not_found("notification channel", name));
    }
    channel_by_name(c, name).await
}

pub async fn channel_by_name(c: &mut AnyConnection, name: &str) -> Result<Channel> {
    sqlx::query_as(&format!("SELECT {CHANNEL_COLS} FROM {CHANNEL_FROM} WHERE c.name = $1"))
        .bind(name)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::not_found("notification channel", name))
}

pub async fn channel_by_id(c: &mut AnyConnection, id: i64) -> Result<Channel> {
    sqlx::query_as(&format!("SELECT {CHANNEL_COLS} FROM {CHANNEL_FROM} WHERE c.id = $1"))
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::not_found("notification channel", id))
}

/// Every channel, by name.
pub async fn list_channels(c: &mut AnyConnection) -> Result<Vec<Channel>> {
    Ok(
        sqlx::query_as(&format!("SELECT {CHANNEL_COLS} FROM {CHANNEL_FROM} ORDER BY c.name"))
            .fetch_all(c)
            .await?,
    )
}

/// Removes a channel with its delivery log; refused while a project subscribes to it.
pub async fn delete_channel(c: &mut AnyConnection, name: &str) -> Result<()> {
    let ch = channel_by_name(c, name).await?;
    let subscribers = subscribing_projects(c, ch.id).await?;
    if !subscribers.is_empty() {
        return Err(StoreError::InUse(format!(
            "notification channel {name:?} is subscribed to by project(s) {}; remove those subscriptions first",
            subscribers.join(", ")
        )));
    }
    sqlx::query("DELETE FROM notification_channels WHERE id = $1")
        .bind(ch.id)
        .execute(c)
        .await?;
    Ok(())
}

/// The names of the projects subscribing to channel `channel_id`.
pub async fn subscribing_projects(c: &mut AnyConnection, channel_id: i64) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT p.name FROM notification_subscriptions s JOIN projects p ON p.id = s.project_id \
         WHERE s.channel_id = $1 ORDER BY p.name",
    )
    .bind(channel_id)
    .fetch_all(c)
    .await?)
}

/// A project's subscription of one channel.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Subscription {
    pub project: String,
    #[serde(skip)]
    pub project_id: i64,
    pub channel: String,
    #[serde(skip)]
    pub channel_id: i64,
    pub channel_kind: String,
    /// The event words, comma-separated in the store.
    #[serde(serialize_with = "ser_words")]
    pub events: String,
    /// en or zh-CN.
    #[serde(rename = "language")]
    pub lang: String,
    pub updated_by: String,
    pub updated_at: i64,
}

impl Subscription {
    pub fn events(&self) -> Vec<&str> {
        words(&self.events)
    }
}

fn words(csv: &str) -> Vec<&str> {
    csv.split(',').map(str::trim).filter(|w| !w.is_empty()).collect()
}

fn ser_words<S: serde::Serializer>(v: &str, s: S) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let items = words(v);
    let mut seq = s.serialize_seq(Some(items.len()))?;
    for i in &items {
        seq.serialize_element(i)?;
    }
    seq.end()
}

const SUBSCRIPTION_SELECT: &str = "SELECT p.name AS project, s.project_id, c.name AS channel, s.channel_id, \
     c.kind AS channel_kind, s.events, s.lang, s.updated_by, s.updated_at \
     FROM notification_subscriptions s JOIN projects p ON p.id = s.project_id \
     JOIN notification_channels c ON c.id = s.channel_id";

/// A project's subscriptions, by channel name.
pub async fn subscriptions_of(c: &mut AnyConnection, project_id: i64) -> Result<Vec<Subscription>> {
    Ok(sqlx::query_as(&format!(
        "{SUBSCRIPTION_SELECT} WHERE s.project_id = $1 ORDER BY c.name"
    ))
    .bind(project_id)
    .fetch_all(c)
    .await?)
}

/// The subscriptions of `project_id` to `event` whose channel the project
/// may use (every project's, or its own).
pub async fn subscribers(c: &mut AnyConnection, project_id: i64, event: &str) -> Result<Vec<Subscription>> {
    let all: Vec<Subscription> = sqlx::query_as(&format!(
        "{SUBSCRIPTION_SELECT} WHERE s.project_id = $1 AND (c.project_id IS NULL OR c.project_id = s.project_id) \
         ORDER BY c.name"
    ))
    .bind(project_id)
    .fetch_all(c)
    .await?;
    Ok(all.into_iter().filter(|s| s.events().contains(&event)).collect())
}

/// Creates or replaces the subscription of `project_id` to `channel_id`.
pub async fn put_subscription(
    c: &mut AnyConnection,
    project_id: i64,
    channel_id: i64,
    events_csv: &str,
    lang: &str,
    by: &str,
) -> Result<()> {
    let now = now_ms();
    let n = sqlx::query(
        "UPDATE notification_subscriptions SET events = $3, lang = $4, updated_by = $5, updated_at = $6 \
         WHERE project_id = $1 AND channel_id = $2",
    )
    .bind(project_id)
    .bind(channel_id)
    .bind(events_csv)
    .bind(lang)
    .bind(by)
    .bind(now)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if n == 0 {
        sqlx::query(
            "INSERT INTO notification_subscriptions (project_id, channel_id, events, lang, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(project_id)
        .bind(channel_id)
        .bind(events_csv)
        .bind(lang)
        .bind(by)
        .bind(now)
        .execute(&mut *c)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict("the subscription was changed meanwhile; try again".into())
            }
            _ => StoreError::Database(e),
        })?;
    }
    Ok(())
}

/// Removes a subscription; false when there was none.
pub async fn delete_subscription(c: &mut AnyConnection, project_id: i64, channel_id: i64) -> Result<bool> {
    let n = sqlx::query("DELETE FROM notification_subscriptions WHERE project_id = $1 AND channel_id = $2")
        .bind(project_id)
        .bind(channel_id)
        .execute(c)
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// One notice on its way to one channel.
pub struct NewDelivery<'a> {
    pub uid: &'a str,
    pub channel_id: i64,
    pub project: Option<&'a str>,
    pub event: &'a str,
    pub lang: &'a str,
    /// The notice as JSON.
    pub notice: &'a str,
}

/// Records a queued delivery; returns its id.
pub async fn create_delivery(c: &mut AnyConnection, d: NewDelivery<'_>) -> Result<i64> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO notification_deliveries (uid, channel_id, project, event, lang, notice, status, attempts, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'queued', 0, $7, $7)",
    )
    .bind(d.uid)
    .bind(d.channel_id)
    .bind(d.project)
    .bind(d.event)
    .bind(d.lang)
    .bind(d.notice)
    .bind(now)
    .execute(&mut *c)
    .await?;
    sqlx::query_scalar("SELECT id FROM notification_deliveries WHERE uid = $1")
        .bind(d.uid)
        .fetch_one(c)
        .await
        .map_err(Into::into)
}

/// A delivery as the log shows it (with its attempts, when asked for).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Delivery {
    pub id: i64,
    /// The delivery id the receiver sees (the same on every attempt).
    #[serde(rename = "delivery")]
    pub uid: String,
    #[serde(skip)]
    pub channel_id: i64,
    pub channel: String,
    pub project: Option<String>,
    pub event: String,
    pub language: String,
    /// The notice as sent (JSON; its link relative to the server).
    #[serde(skip)]
    pub notice: String,
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
    #[sqlx(skip)]
    pub attempt_log: Vec<Attempt>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Attempt {
    pub attempt: i64,
    pub at: i64,
    pub duration_ms: i64,
    #[serde(serialize_with = "crate::ser_flag")]
    pub delivered: i64,
    pub response_code: Option<i64>,
    pub error: Option<String>,
}

const DELIVERY_SELECT: &str = "SELECT d.id, d.uid, d.channel_id, c.name AS channel, d.project, d.event, \
     d.lang AS language, d.notice, d.status, d.response_code, d.attempts, d.next_retry_at, d.error, \
     d.created_at, d.updated_at FROM notification_deliveries d JOIN notification_channels c ON c.id = d.channel_id";

pub async fn delivery(c: &mut AnyConnection, id: i64) -> Result<Option<Delivery>> {
    let d: Option<Delivery> = sqlx::query_as(&format!("{DELIVERY_SELECT} WHERE d.id = $1"))
        .bind(id)
        .fetch_optional(&mut *c)
        .await?;
    match d {
        Some(mut d) => {
            d.attempt_log = attempts(c, d.id).await?;
            Ok(Some(d))
        }
        None => Ok(None),
    }
}

async fn attempts(c: &mut AnyConnection, delivery_id: i64) -> Result<Vec<Attempt>> {
    Ok(sqlx::query_as(
        "SELECT attempt, at, duration_ms, delivered, response_code, error FROM notification_attempts \
         WHERE delivery_id = $1 ORDER BY attempt",
    )
    .bind(delivery_id)
    .fetch_all(c)
    .await?)
}

/// A channel's deliveries, newest first, with their attempts.
pub async fn deliveries_of(c: &mut AnyConnection, channel_id: i64, limit: i64) -> Result<Vec<Delivery>> {
    let mut list: Vec<Delivery> = sqlx::query_as(&format!(
        "{DELIVERY_SELECT} WHERE d.channel_id = $1 ORDER BY d.id DESC LIMIT $2"
    ))
    .bind(channel_id)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    for d in &mut list {
        d.attempt_log = attempts(c, d.id).await?;
    }
    Ok(list)
}

/// How one attempt ended, as recorded.
pub struct AttemptRecord<'a> {
    pub attempt: i64,
    pub at: i64,
    pub duration_ms: i64,
    pub delivered: bool,
    pub response_code: Option<i64>,
    pub error: Option<&'a str>,
    /// The delivery's status after it.
    pub status: &'a str,
    pub next_retry_at: Option<i64>,
}

/// Records attempt `r.attempt` of delivery `id`; false when that attempt
/// was recorded already (a run that lost its lease and another that took
/// over both got this far): the caller drops its transaction.
pub async fn record_attempt(c: &mut AnyConnection, id: i64, r: &AttemptRecord<'_>) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE notification_deliveries SET status = $2, response_code = $3, attempts = $4, next_retry_at = $5, \
         error = $6, updated_at = $7 WHERE id = $1 AND attempts = $8",
    )
    .bind(id)
    .bind(r.status)
    .bind(r.response_code)
    .bind(r.attempt)
    .bind(r.next_retry_at)
    .bind(r.error)
    .bind(now_ms())
    .bind(r.attempt - 1)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if n == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO notification_attempts (delivery_id, attempt, at, duration_ms, delivered, response_code, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(r.attempt)
    .bind(r.at)
    .bind(r.duration_ms)
    .bind(r.delivered as i64)
    .bind(r.response_code)
    .bind(r.error)
    .execute(c)
    .await?;
    Ok(true)
}

/// Deletes the finished deliveries (delivered, or failed for good) last
/// changed before `before_ms`, with their attempts; the ones still queued
/// or waiting for a retry stay whatever their age. Returns how many
/// deliveries went. Finished deliveries never change again, so the two
/// statements see the same rows.
pub async fn prune_deliveries(c: &mut AnyConnection, before_ms: i64) -> Result<u64> {
    const FINISHED_BEFORE: &str = "status IN ('delivered', 'failed') AND updated_at < $1";
    // The attempts go first and by name: the schema cascades too, but this
    // does not depend on SQLite's foreign_keys pragma.
    sqlx::query(&format!(
        "DELETE FROM notification_attempts WHERE delivery_id IN \
         (SELECT id FROM notification_deliveries WHERE {FINISHED_BEFORE})"
    ))
    .bind(before_ms)
    .execute(&mut *c)
    .await?;
    let n = sqlx::query(&format!("DELETE FROM notification_deliveries WHERE {FINISHED_BEFORE}"))
        .bind(before_ms)
        .execute(c)
        .await?
        .rows_affected();
    Ok(n)
}
