//! Builds in the console: a release's builds with the newest one's log
//! (server-rendered, then followed live over the API's SSE stream by
//! `live.js`), a build's own page with its whole log (its permanent human
//! address), and the "Build" and "Cancel" buttons, which call the operations
//! the API calls (`ops::builds`), so the role checks and the audit trail are
//! the same.

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::context;
use prism_domain::release::{decide, Action, Actor};
use prism_store::builds::{self, Build, LogLine};
use prism_store::releases::Release;
use prism_store::{environments, slots, AnyConnection};
use serde::Serialize;

use super::admin::NoFields;
use super::error::WebResult;
use super::render::page as render;
use super::resend;
use super::session::{Posted, Web};
use crate::auth::Caller;
use crate::ops::builds as op;
use crate::ops::{access, OpError};
use crate::state::AppState;

/// The most log lines a page shows (the plain-text log has them all).
const LOG_LINES: i64 = 10_000;

/// A build as the pages show it: the record, whether it is still running and
/// how long it ran (once it ended).
#[derive(Serialize)]
pub(super) struct BuildView {
    #[serde(flatten)]
    build: Build,
    active: bool,
    duration: Option<String>,
}

impl From<Build> for BuildView {
    fn from(build: Build) -> Self {
        let active = !build.state.is_final();
        let duration = build.started_at.zip(build.finished_at).map(|(s, e)| duration(e - s));
        BuildView {
            build,
            active,
            duration,
        }
    }
}

/// `850 ms`, `42 s`, `3 min 05 s`, `1 h 02 min`.
pub(super) fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    let s = ms / 1000;
    match s {
        0 => format!("{ms} ms"),
        1..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

/// What the release page shows about builds: every build (newest first), the
/// newest one's log, and the buttons the caller may press.
#[derive(Serialize)]
pub(super) struct ReleaseBuilds {
    builds: Vec<BuildView>,
    log: Vec<LogLine>,
    can_build: bool,
    can_cancel: bool,
}

pub(super) async fn for_release(c: &mut AnyConnection, caller: &Caller, rel: &Release) -> WebResult<ReleaseBuilds> {
    let list = builds::for_release(c, rel.id).await?;
    let log = match list.first() {
        Some(b) => builds::logs(c, b.id, -1, LOG_LINES).await?,
        None => vec![],
    };
    let roles = access::roles_in(c, caller, rel.project_id).await?;
    let actor = Actor { roles, system: false };
    let lifecycle = environments::lifecycle(c).await?;
    let view = match rel.parsed_state.env() {
        Some(e) => slots::get(c, rel.app_id, e).await?.view(),
        None => Default::default(),
    };
    // The same pure decision the server makes when the button is pressed.
    let can_build = decide(&lifecycle, &actor, rel.id, rel.parsed_state, &Action::StartBuild, &view).is_ok();
    let running = list.first().is_some_and(|b| !b.state.is_final());
    let can_cancel = running && access::may_cancel_build(roles);
    Ok(ReleaseBuilds {
        builds: list.into_iter().map(BuildView::from).collect(),
        log,
        can_build,
        can_cancel,
    })
}

/// `/builds/{id}`: the build's facts and its whole log.
pub async fn page(State(state): State<AppState>, Web(caller): Web, Path(id): Path<String>) -> WebResult<Html<String>> {
    // The same visibility check as the API (a build of a project the caller
    // is not a member of is not found).
    let (b, roles) = op::get(&state, &caller, &id).await?;
    let log = builds::logs(&mut *state.store.conn().await?, b.id, -1, LOG_LINES).await?;
    let can_cancel = !b.state.is_final() && access::may_cancel_build(roles);
    let can_retry =
        b.state == prism_domain::BuildState::Failed && crate::ops::retry::may_retry_for(&caller, &b.requested_by);
    let truncated = log.len() as i64 == LOG_LINES;
    render(
        &state,
        &caller,
        "build.html",
        context! { nav => "releases", b => BuildView::from(b), log => log, can_cancel => can_cancel, can_retry => can_retry, truncated => truncated },
    )
    .await
}

/// "Build" on the release page: starts (or, after a failure, restarts) the build.
pub async fn start(State(state): State<AppState>, Path(id): Path<String>, p: Posted<NoFields>) -> WebResult<Response> {
    let rid = prism_domain::ReleaseId::parse("id", &id).map_err(|_| OpError::not_found("release", &id))?;
    let operation = op::start_build(&state, &p.caller, rid);
    resend::once(&state, &p.caller, resend::BUILD_RELEASE, operation, |b| {
        format!("/releases/{}", b.release)
    })
    .await
}

/// "Cancel" on the release or build page; back to the release.
/// Retry of a failed build (for one whose job was quarantined above all): a
/// new build of the same release.
pub async fn retry(State(state): State<AppState>, Path(id): Path<String>, p: Posted<NoFields>) -> WebResult<Response> {
    let operation = crate::ops::retry::retry_build(&state, &p.caller, &id);
    resend::once(&state, &p.caller, resend::BUILD, operation, |b| {
        format!("/builds/{}", b.id)
    })
    .await
}

pub async fn cancel(State(state): State<AppState>, Path(id): Path<String>, p: Posted<NoFields>) -> WebResult<Response> {
    let b = op::cancel_build(&state, &p.caller, &id).await?;
    Ok(Redirect::to(&format!("/releases/{}", b.release)).into_response())
}
