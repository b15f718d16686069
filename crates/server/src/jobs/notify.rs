//! The notify job: one attempt of one delivery (`services::notices` queues
//! the first when something is announced). The receiver's answer decides
//! what follows (`prism_notify::retry`): delivered, failed for good, or a
//! next attempt queued after an exponential backoff. Each attempt and the
//! delivery's new state are written in one transaction with the next
//! attempt's job, so the delivery log always says what happened and what
//! comes next.
//!
//! ```text
//! attempt n --delivered--> delivered
//!           --refused (4xx, bad settings) or n = max--> failed
//!           --5xx, 429, no answer, n < max--> retrying; job attempt n+1 at next_retry_at
//! ```
//!
//! Requests go through the address policy (resolved addresses checked, no
//! redirects followed; SMTP servers resolved once and dialled at the
//! checked address), time out after `settings.notify.timeout`, and errors
//! are stored with the channel's URL and secrets removed. A delivery runs
//! beside the deploys and builds it reports on, never in their way.

use std::time::{Duration, Instant};

use prism_jobs::{Cancel, Job, JobError, Quarantine};
use prism_netguard::Guard;
use prism_notify::{
    after_attempt, redact, Backoff, Channel as Target, ChannelKind, Delivery, DeliveryError, DeliveryStatus, Lang,
    Notice, NoticeKind, SmtpSettings, SmtpTls,
};
use prism_store::notifications::{self, AttemptRecord, Channel};
use serde::{Deserialize, Serialize};

use crate::state::AppState;

/// Retries are never more than this far apart.
const MAX_BACKOFF_MS: i64 = 3_600_000;

/// Attempt `attempt` (1-based) of delivery `delivery_id`.
#[derive(Debug, Serialize, Deserialize)]
pub struct NotifyJob {
    pub delivery_id: i64,
    pub attempt: i64,
}

impl Job for NotifyJob {
    const KIND: &'static str = "notify";
    /// Runs of this job that fail on the store itself; a receiver's refusal
    /// is the delivery's own retry, recorded in its log.
    const MAX_ATTEMPTS: i64 = 3;
    type Context = AppState;

    fn dedup_key(&self) -> Option<String> {
        Some(format!("notify:{}:{}", self.delivery_id, self.attempt))
    }

    async fn run(&self, ctx: &AppState, cancel: Cancel) -> Result<(), JobError> {
        attempt(ctx, self.delivery_id, self.attempt, Some(cancel))
            .await
            .map(|_| ())
    }

    async fn quarantined(&self, ctx: &AppState, q: &Quarantine) -> Result<(), JobError> {
        // The server died during this attempt again and again: give up on it.
        let err: Result<Delivery, DeliveryError> = Err(DeliveryError::Config(q.describe()));
        record(ctx, self.delivery_id, self.attempt, 0, &err, &[], None).await?;
        Ok(())
    }
}

/// Queues attempt `attempt` of a delivery, now or at `run_at`.
pub async fn enqueue(
    c: &mut prism_store::AnyConnection,
    delivery_id: i64,
    attempt: i64,
    run_at: Option<i64>,
) -> prism_store::Result<()> {
    prism_jobs::enqueue_at(c, &NotifyJob { delivery_id, attempt }, run_at).await?;
    Ok(())
}

/// Runs attempt `n` of delivery `id` and records it; returns the delivery's
/// new status, or None when there was nothing to do (the attempt was
/// recorded already, the delivery ended, or it went with its channel).
/// `cancel`: the job's (shutdown interrupts the attempt); None for a test
/// message sent while its admin waits.
pub async fn attempt(
    state: &AppState,
    id: i64,
    n: i64,
    cancel: Option<Cancel>,
) -> Result<Option<DeliveryStatus>, JobError> {
    let mut c = state.store.conn().await?;
    let Some(d) = notifications::delivery(&mut c, id).await? else {
        return Ok(None);
    };
    let done = DeliveryStatus::parse(&d.status).is_none_or(DeliveryStatus::is_final);
    if done || d.attempts >= n {
        return Ok(None);
    }
    let ch = notifications::channel_by_id(&mut c, d.channel_id).await?;
    let guard = crate::services::address_policy::guard(&mut c).await?;
    drop(c);
    let timeout = state.settings.notify.timeout;
    let started = Instant::now();
    let target = target(state, &ch);
    let result = match &target {
        Err(e) => Err(e.clone()),
        Ok(t) => match serde_json::from_str::<Notice>(&d.notice) {
            Err(e) => Err(DeliveryError::Config(format!("stored notice unreadable: {e}"))),
            Ok(mut notice) => {
                notice.link = absolute(state.settings.public_url.as_deref(), &notice.link);
                let lang = Lang::parse(&d.language).unwrap_or_default();
                // The timeout bounds each request; this bounds the whole attempt
                // (an SMTP dialogue is several), and shutdown interrupts it.
                let limit = timeout * 3 + Duration::from_secs(1);
                tokio::select! {
                    r = send(&guard, t, &notice, lang, &d.uid, timeout) => r,
                    r = limit_or_cancel(cancel, limit) => {
                        r?;
                        Err(DeliveryError::Unreachable(format!(
                            "no answer within {} ms (timed out)",
                            limit.as_millis()
                        )))
                    }
                }
            }
        },
    };
    let took = started.elapsed().as_millis() as i64;
    let secrets = target.as_ref().map(secrets_of).unwrap_or_default();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let url = target.as_ref().ok().map(|t| t.url.as_str()).filter(|u| !u.is_empty());
    record(state, id, n, took, &result, &secrets, url).await
}

/// Waits `limit`, or ends early with `Interrupted` when the job is cancelled.
async fn limit_or_cancel(cancel: Option<Cancel>, limit: Duration) -> Result<(), JobError> {
    match cancel {
        Some(mut c) => c.sleep(limit).await,
        None => {
            tokio::time::sleep(limit).await;
            Ok(())
        }
    }
}

/// Records how attempt `n` went and queues the next one when it is due.
async fn record(
    state: &AppState,
    id: i64,
    n: i64,
    duration_ms: i64,
    result: &Result<Delivery, DeliveryError>,
    secrets: &[&str],
    url: Option<&str>,
) -> Result<Option<DeliveryStatus>, JobError> {
    let mut c = state.store.conn().await?;
    let Some(d) = notifications::delivery(&mut c, id).await? else {
        return Ok(None);
    };
    drop(c);
    // A test message is tried once: the admin is waiting for its answer.
    let max = if d.event == NoticeKind::Test.as_str() {
        1
    } else {
        state.settings.notify.max_attempts
    };
    let backoff = Backoff {
        base_ms: state.settings.notify.retry_base_ms,
        max_ms: MAX_BACKOFF_MS,
    };
    let now = prism_store::now_ms();
    let (status, next_retry_at) = after_attempt(result, n, max, backoff, now);
    let (code, error) = match result {
        Ok(ok) => (ok.status, None),
        Err(e) => {
            let code = match e {
                DeliveryError::Refused { status, .. } => *status,
                _ => None,
            };
            let text: String = e.to_string().chars().take(1000).collect();
            (code, Some(redact(&text, url, secrets)))
        }
    };
    let mut tx = state.store.begin().await?;
    let recorded = notifications::record_attempt(
        &mut tx,
        id,
        &AttemptRecord {
            attempt: n,
            at: now - duration_ms,
            duration_ms,
            delivered: result.is_ok(),
            response_code: code.map(i64::from),
            error: error.as_deref(),
            status: status.as_str(),
            next_retry_at,
        },
    )
    .await?;
    if !recorded {
        return Ok(None);
    }
    if let Some(at) = next_retry_at {
        enqueue(&mut tx, id, n + 1, Some(at)).await?;
    }
    tx.commit().await?;
    match &error {
        Some(e) => {
            tracing::info!(delivery = id, attempt = n, status = %status, error = %e, "notification not delivered")
        }
        None => tracing::debug!(delivery = id, attempt = n, "notification delivered"),
    }
    Ok(Some(status))
}

/// `link` under the server's public URL (relative without one).
fn absolute(public_url: Option<&str>, link: &str) -> String {
    match public_url {
        Some(base) if link.starts_with('/') => format!("{}{link}", base.trim_end_matches('/')),
        _ => link.to_owned(),
    }
}

/// The channel with its URL and secret unsealed (in memory only).
fn target(state: &AppState, ch: &Channel) -> Result<Target, DeliveryError> {
    let open = |sealed: &Option<Vec<u8>>, what: &str| -> Result<Option<String>, DeliveryError> {
        sealed
            .as_ref()
            .map(|s| {
                state
                    .secrets
                    .open(s)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        DeliveryError::Config(format!(
                            "the channel's {what} cannot be unsealed with this server's key"
                        ))
                    })
            })
            .transpose()
    };
    let kind = ChannelKind::parse(&ch.kind)
        .ok_or_else(|| DeliveryError::Config(format!("unknown channel kind {:?}", ch.kind)))?;
    let url = open(&ch.url_enc, "URL")?.unwrap_or_default();
    let secret = open(&ch.secret_enc, "secret")?;
    let smtp = match kind {
        ChannelKind::Email => {
            let e = crate::ops::notifications::email_of(ch)
                .ok_or_else(|| DeliveryError::Config("the channel's SMTP settings cannot be read".into()))?;
            Some(SmtpSettings {
                host: e.host,
                port: e.port,
                tls: SmtpTls::parse(&e.tls).unwrap_or(SmtpTls::StartTls),
                username: e.username,
                password: secret.clone(),
                from: e.from,
                to: e.to,
                address: None,
            })
        }
        _ => None,
    };
    Ok(Target {
        kind,
        url,
        // An e-mail channel's secret is its SMTP password, never a signing key.
        secret: if kind == ChannelKind::Email { None } else { secret },
        smtp,
    })
}

fn secrets_of(t: &Target) -> Vec<String> {
    let mut out: Vec<String> = t.secret.iter().cloned().collect();
    if let Some(p) = t.smtp.as_ref().and_then(|s| s.password.clone()) {
        out.push(p);
    }
    out
}

/// One request (or SMTP dialogue) to the channel, through the address policy.
async fn send(
    guard: &Guard,
    t: &Target,
    notice: &Notice,
    lang: Lang,
    uid: &str,
    timeout: Duration,
) -> Result<Delivery, DeliveryError> {
    let mut t = t.clone();
    if let Some(smtp) = t.smtp.as_mut() {
        // Resolved once and pinned: a second lookup cannot lead elsewhere.
        let addrs = guard
            .resolve(&smtp.host, smtp.port)
            .await
            .map_err(|e| DeliveryError::Unreachable(e.to_string()))?;
        // IPv4 first: many relays listen on it only (`localhost` often resolves to ::1 first).
        let pick = addrs.iter().find(|a| a.is_ipv4()).or(addrs.first());
        smtp.address = pick.map(|a| a.ip());
    } else {
        let url = reqwest::Url::parse(&t.url)
            .map_err(|_| DeliveryError::Config("the channel's URL cannot be read".into()))?;
        guard
            .check_url(&url)
            .map_err(|e| DeliveryError::Config(e.to_string()))?;
    }
    let http = reqwest::Client::builder()
        .dns_resolver(guard.resolver())
        .redirect(guard.redirect_policy(0))
        .connect_timeout(timeout)
        .build()
        .map_err(|e| DeliveryError::Config(format!("HTTP client: {e}")))?;
    prism_notify::deliver(&http, &t, notice, lang, uid, prism_store::now_ms(), timeout).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_made_absolute_with_the_public_url_only() {
        assert_eq!(
            absolute(Some("https://prism.example/"), "/deploys/7"),
            "https://prism.example/deploys/7"
        );
        assert_eq!(absolute(None, "/deploys/7"), "/deploys/7");
    }
}
