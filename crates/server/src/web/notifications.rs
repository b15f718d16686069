//! A project's notifications: its members see which channels hear of which
//! events (and in which language); its operators subscribe a channel the
//! project may use and unsubscribe it. The same operations as the API's
//! (`ops::notifications`), so the role check and the audit event are the same.

use axum::extract::{Path, State};
use axum::response::{Html, Response};
use minijinja::{context, Value};
use prism_api::notifications::PutSubscription;
use prism_notify::NoticeKind;

use super::admin::{after, event_label, NoFields, Notice};
use super::error::WebResult;
use super::render::page as render;
use super::session::{Posted, Web};
use crate::auth::Caller;
use crate::ops::access;
use crate::ops::notifications;
use crate::state::AppState;

async fn project_page(
    state: &AppState,
    caller: &Caller,
    name: &str,
    notice: Option<Notice>,
) -> WebResult<Html<String>> {
    let subs = notifications::subscriptions(state, caller, name).await?;
    let mut c = state.store.conn().await?;
    let project = access::project(&mut c, caller, name).await?;
    let can_manage = notifications::may_manage(access::roles_in(&mut c, caller, project.id).await?);
    drop(c);
    let channels = if can_manage {
        notifications::channels_for_project(state, project.id).await?
    } else {
        Vec::new()
    };
    let rows: Vec<Value> = subs
        .iter()
        .map(|s| {
            let labels: Vec<&str> = s.events().into_iter().map(event_label).collect();
            context! { channel => s.channel, kind => s.channel_kind, events => labels, language => s.lang,
            updated_by => s.updated_by, updated_at => s.updated_at }
        })
        .collect();
    let events: Vec<Value> = NoticeKind::subscribable()
        .map(|k| context! { word => k.as_str(), label => event_label(k.as_str()) })
        .collect();
    render(
        state,
        caller,
        "subscriptions.html",
        context! { nav => "apps", project => project.name, subscriptions => rows, channels => channels,
        events => events, can_manage => can_manage, notice => notice },
    )
    .await
}

pub async fn page(
    State(state): State<AppState>,
    Web(caller): Web,
    Path(name): Path<String>,
) -> WebResult<Html<String>> {
    project_page(&state, &caller, &name, None).await
}

/// The subscription form: `channel`, `language` and one `events` field per
/// ticked event (read as pairs: a form repeats the name).
pub async fn subscribe(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<Vec<(String, String)>>,
) -> WebResult<Response> {
    let field = |k: &str| p.form.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_owned());
    let channel = field("channel").unwrap_or_default();
    let req = PutSubscription {
        events: p
            .form
            .iter()
            .filter(|(n, _)| n == "events")
            .map(|(_, v)| v.clone())
            .collect(),
        language: field("language").filter(|l| !l.is_empty()),
    };
    let r = notifications::put_subscription(&state, &p.caller, &name, &channel, req).await;
    after(r, format!("/projects/{name}/notifications"), |n| {
        project_page(&state, &p.caller, &name, Some(n))
    })
    .await
}

pub async fn unsubscribe(
    State(state): State<AppState>,
    Path((name, channel)): Path<(String, String)>,
    p: Posted<NoFields>,
) -> WebResult<Response> {
    let r = notifications::delete_subscription(&state, &p.caller, &name, &channel).await;
    after(r, format!("/projects/{name}/notifications"), |n| {
        project_page(&state, &p.caller, &name, Some(n))
    })
    .await
}
