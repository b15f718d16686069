//! Notification channels, for admins: listed (where they go, whether a
//! secret is stored, who subscribes), created or edited (the URL and the
//! secret are write-only), deleted, tested; and each channel's delivery
//! log with every attempt.

use axum::extract::{Path, State};
use axum::response::{Html, Response};
use minijinja::{context, Value};
use prism_api::notifications::{ChannelKind, EmailSettings, PutChannel, TestMessage};
use prism_notify::NoticeKind;
use serde::Deserialize;

use super::{after, checked, opt, NoFields, Notice};
use crate::auth::Caller;
use crate::ops::access;
use crate::ops::notifications::{self, DeliveryQuery};
use crate::state::AppState;
use crate::web::error::WebResult;
use crate::web::render::page as render;
use crate::web::session::{PageQuery, Posted, Web};
use crate::web::text;

#[derive(Deserialize, Default)]
pub struct ChannelQuery {
    edit: Option<String>,
}

/// An event's or a status's words in the reader's language.
pub(crate) fn event_label(word: &str) -> &'static str {
    text::get(&format!("event.{word}"))
}

async fn channels_page(
    state: &AppState,
    caller: &Caller,
    edit: Option<String>,
    notice: Option<Notice>,
) -> WebResult<Html<String>> {
    access::require_admin(caller)?;
    let list = notifications::list_channels(state, caller).await?;
    let projects: Vec<String> = crate::ops::projects::list(state, caller)
        .await?
        .into_iter()
        .map(|p| p.name)
        .collect();
    let editing = edit.and_then(|n| list.iter().find(|c| c.name == n)).map(|c| {
        context! { name => c.name, kind => c.kind.as_str(), project => c.project, email => c.email,
        email_to => c.email.as_ref().map(|e| e.to.join(", ")).unwrap_or_default() }
    });
    let kinds: Vec<&str> = ChannelKind::ALL.iter().map(|k| k.as_str()).collect();
    render(
        state,
        caller,
        "notifications.html",
        context! { nav => "notifications", channels => list, editing => editing, notice => notice,
        kinds => kinds, projects => projects },
    )
    .await
}

pub async fn channels(
    State(state): State<AppState>,
    Web(caller): Web,
    PageQuery(q): PageQuery<ChannelQuery>,
) -> WebResult<Html<String>> {
    channels_page(&state, &caller, q.edit, None).await
}

#[derive(Deserialize)]
pub struct ChannelForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    secret: String,
    clear_secret: Option<String>,
    #[serde(default)]
    project: String,
    #[serde(default)]
    smtp_host: String,
    #[serde(default)]
    smtp_port: String,
    #[serde(default)]
    smtp_tls: String,
    #[serde(default)]
    smtp_username: String,
    #[serde(default)]
    email_from: String,
    /// Comma-separated addresses.
    #[serde(default)]
    email_to: String,
}

fn put_request(f: &ChannelForm) -> Result<PutChannel, crate::ops::OpError> {
    let kind = ChannelKind::parse(f.kind.trim())
        .ok_or_else(|| crate::ops::OpError::invalid("kind", "choose one of the kinds listed"))?;
    let email = if kind == ChannelKind::Email {
        let port = match f.smtp_port.trim() {
            "" => 587,
            p => p
                .parse()
                .map_err(|_| crate::ops::OpError::invalid("email.port", "must be 1 to 65535"))?,
        };
        Some(EmailSettings {
            host: f.smtp_host.trim().to_owned(),
            port,
            tls: opt(&f.smtp_tls).unwrap_or_else(|| "starttls".into()),
            username: opt(&f.smtp_username),
            from: f.email_from.trim().to_owned(),
            to: super::list(&f.email_to),
        })
    } else {
        None
    };
    Ok(PutChannel {
        kind,
        // Empty: keep the stored URL and secret.
        url: opt(&f.url),
        secret: Some(f.secret.clone()).filter(|s| !s.is_empty()),
        clear_secret: checked(&f.clear_secret),
        project: opt(&f.project),
        email,
    })
}

pub async fn put_channel(State(state): State<AppState>, p: Posted<ChannelForm>) -> WebResult<Response> {
    let f = p.form;
    let name = f.name.trim().to_owned();
    let r = match put_request(&f) {
        Ok(req) => notifications::put_channel(&state, &p.caller, &name, req).await,
        Err(e) => Err(e),
    };
    after(r, "/admin/notifications".into(), |n| {
        channels_page(&state, &p.caller, None, Some(n))
    })
    .await
}

pub async fn delete_channel(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<NoFields>,
) -> WebResult<Response> {
    let r = notifications::delete_channel(&state, &p.caller, &name).await;
    after(r, "/admin/notifications".into(), |n| {
        channels_page(&state, &p.caller, None, Some(n))
    })
    .await
}

#[derive(Deserialize)]
pub struct TestForm {
    language: Option<String>,
}

/// Sends a test message; the channel's log shows how it went.
pub async fn test_channel(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<TestForm>,
) -> WebResult<Response> {
    let req = TestMessage {
        language: p.form.language.as_deref().and_then(opt),
    };
    let r = notifications::test_channel(&state, &p.caller, &name, req).await;
    after(r, format!("/admin/notifications/{name}"), |n| {
        log_page(&state, &p.caller, &name, Some(n))
    })
    .await
}

async fn log_page(state: &AppState, caller: &Caller, name: &str, notice: Option<Notice>) -> WebResult<Html<String>> {
    let channel = notifications::get_channel(state, caller, name).await?;
    let log = notifications::deliveries(state, caller, name, DeliveryQuery { limit: Some(100) }).await?;
    let rows: Vec<Value> = log
        .iter()
        .map(|d| {
            let attempts: Vec<Value> = d
                .attempt_log
                .iter()
                .map(|a| {
                    context! { attempt => a.attempt, at => a.at, duration_ms => a.duration_ms,
                    delivered => a.delivered != 0, response_code => a.response_code, error => a.error }
                })
                .collect();
            let event = NoticeKind::parse(&d.event)
                .map(|k| event_label(k.as_str()))
                .unwrap_or("?");
            context! { id => d.id, delivery => d.uid, event => d.event, event_label => event, project => d.project,
            language => d.language, status => d.status, status_label => text::get(&format!("delivery.{}", d.status)),
            response_code => d.response_code, attempts => d.attempts, next_retry_at => d.next_retry_at,
            error => d.error, created_at => d.created_at, attempt_log => attempts }
        })
        .collect();
    render(
        state,
        caller,
        "notification_log.html",
        context! { nav => "notifications", channel => channel, deliveries => rows, notice => notice },
    )
    .await
}

pub async fn channel_log(
    State(state): State<AppState>,
    Web(caller): Web,
    Path(name): Path<String>,
) -> WebResult<Html<String>> {
    log_page(&state, &caller, &name, None).await
}
