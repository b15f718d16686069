//! Releases: the list with the create form, one release's page (state,
//! promotion history, deploys, its builds and the build log) with the actions
//! the caller may take, and holds on an application's environments.
//!
//! Which buttons a page shows is asked of the same pure `decide` the server
//! runs when the button is pressed (with the caller's roles, the lifecycle
//! and each environment's slot), so the page offers exactly what the server
//! would accept; the server still decides again on the post.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::context;
use prism_api::board::HoldRequest;
use prism_api::deploys::StartDeploy;
use prism_api::releases::{ActRequest, CreateRelease};
use prism_domain::release::{decide, Action, Actor, TransitionError};
use prism_domain::ReleaseId;
use prism_store::releases::{self, Release, ReleaseFilter};
use prism_store::{apps, environments, slots};
use serde::{Deserialize, Serialize};

use super::error::WebResult;
use super::render::page as render;
use super::resend;
use super::session::{PageQuery, Posted, Web};
use crate::auth::Caller;
use crate::ops::deploys;
use crate::ops::holds;
use crate::ops::releases as op;
use crate::ops::{access, OpError};
use crate::state::AppState;

const PAGE: i64 = 25;
/// Applications offered in the release form's list (past that, typed).
const CHOICES: i64 = 100;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    application: Option<String>,
    state: Option<String>,
    before: Option<String>,
}

#[derive(Serialize, Default)]
struct CreateError {
    field: Option<String>,
    message: String,
    application: String,
    git_ref: String,
    change_note: String,
    build: bool,
}

/// An application the caller may create releases of.
#[derive(Serialize)]
struct Creatable {
    name: String,
    /// It has build settings (so it can be built at once).
    builds: bool,
}

fn release_id(raw: &str) -> Result<ReleaseId, OpError> {
    ReleaseId::parse("id", raw).map_err(|_| OpError::not_found("release", raw))
}

async fn list_page(
    state: &AppState,
    caller: &Caller,
    q: ListQuery,
    error: Option<CreateError>,
) -> WebResult<Html<String>> {
    let mut c = state.store.conn().await?;
    let app_id = match q.application.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => Some(access::application(&mut c, caller, a).await?.0.id),
        None => None,
    };
    let st = q.state.as_deref().filter(|s| !s.is_empty());
    if let Some(s) = st {
        if !prism_domain::ReleaseState::KINDS.contains(&s) {
            return Err(OpError::invalid("state", format!("unknown state {s:?}")).into());
        }
    }
    let before = q
        .before
        .as_deref()
        .filter(|b| !b.is_empty())
        .map(|b| ReleaseId::parse("before", b))
        .transpose()
        .map_err(OpError::from)?;
    let items = releases::list(
        &mut c,
        &ReleaseFilter {
            visible_to: access::visibility(caller),
            app_id,
            state: st.map(str::to_owned),
            before: before.map(|b| b.seq()),
            limit: PAGE,
            ..Default::default()
        },
    )
    .await?;
    let next = (items.len() as i64 == PAGE)
        .then(|| items.last().map(|r| r.id.to_string()))
        .flatten();
    // The create form offers the applications where the caller is a developer,
    // each with whether it has build settings: "Build it now" is ticked for those.
    // Up to CHOICES of them are offered in a list; past that the name is
    // typed (with the first CHOICES suggested): a list of thousands helps
    // nobody and costs every page view.
    let mut creatable: Vec<Creatable> = apps::creatable(&mut c, caller.user.id, caller.is_admin(), CHOICES + 1)
        .await?
        .into_iter()
        .map(|(name, builds)| Creatable { name, builds })
        .collect();
    let type_the_name = creatable.len() as i64 > CHOICES;
    creatable.truncate(CHOICES as usize);
    if type_the_name {
        // The application asked for (from its page) decides "Build it now".
        let wanted = error
            .as_ref()
            .map(|e| e.application.as_str())
            .or(q.application.as_deref());
        if let Some(name) = wanted.filter(|n| !creatable.iter().any(|a| a.name == *n)) {
            if let Ok((app, _)) = access::application(&mut c, caller, name).await {
                let builds = app.build_settings.as_object().is_some_and(|o| !o.is_empty());
                creatable.insert(0, Creatable { name: app.name, builds });
            }
        }
    }
    drop(c);
    let chosen = error
        .as_ref()
        .map(|e| e.application.as_str())
        .or(q.application.as_deref())
        .and_then(|n| creatable.iter().find(|a| a.name == n))
        .or(creatable.first());
    let build_now = match &error {
        Some(e) => e.build,
        None => chosen.is_some_and(|a| a.builds),
    };
    render(
        state,
        caller,
        "releases.html",
        context! {
            nav => "releases",
            releases => items,
            next => next,
            application => q.application,
            state_filter => st,
            states => prism_domain::ReleaseState::KINDS,
            creatable => creatable,
            type_the_name => type_the_name,
            build_now => build_now,
            error => error,
        },
    )
    .await
}

pub async fn list(
    State(state): State<AppState>,
    Web(caller): Web,
    PageQuery(q): PageQuery<ListQuery>,
) -> WebResult<Html<String>> {
    list_page(&state, &caller, q, None).await
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    application: String,
    #[serde(default)]
    git_ref: String,
    #[serde(default)]
    change_note: String,
    /// The "build it now" checkbox (sent only when ticked).
    #[serde(default)]
    build: Option<String>,
}

pub async fn create(State(state): State<AppState>, p: Posted<CreateForm>) -> WebResult<Response> {
    if let Some(page) = resend::earlier(&state, &p.caller, resend::RELEASE).await? {
        return Ok(page);
    }
    let f = p.form;
    let req = CreateRelease {
        application: f.application.clone(),
        git_ref: f.git_ref.trim().to_owned(),
        change_note: f.change_note.replace("\r\n", "\n"),
        build: f.build.is_some(),
    };
    match op::create(&state, &p.caller, req).await {
        Ok(rel) => Ok(Redirect::to(&format!("/releases/{}", rel.release.id)).into_response()),
        Err(OpError::Invalid { field, message, .. }) => {
            let error = CreateError {
                field,
                message,
                application: f.application,
                git_ref: f.git_ref,
                change_note: f.change_note,
                build: f.build.is_some(),
            };
            let html = list_page(&state, &p.caller, ListQuery::default(), Some(error)).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => resend::or_twin(&state, &p.caller, resend::RELEASE, e).await,
    }
}

/// A control on the release page.
#[derive(Serialize)]
struct Control {
    action: &'static str,
    environment: Option<String>,
    /// Only with an operator's override reason (the environment is held).
    needs_override: bool,
    /// Why it cannot run as it is: the environment is not bound to a
    /// cluster (the button is disabled), or is held (an override is needed).
    blocked: Option<String>,
}

/// The actions `decide` would accept from this caller now.
async fn controls(c: &mut prism_store::AnyConnection, caller: &Caller, rel: &Release) -> WebResult<Vec<Control>> {
    let roles = access::roles_in(c, caller, rel.project_id).await?;
    let actor = Actor { roles, system: false };
    let lifecycle = environments::lifecycle(c).await?;
    let envs = environments::list(c).await?;
    let mut out = vec![];
    let current_view = match rel.parsed_state.env() {
        Some(e) => slots::get(c, rel.app_id, e).await?.view(),
        None => Default::default(),
    };
    // Starting a build is offered with the build log (`builds::for_release`).
    for (action, name) in [
        (Action::Pass, "pass"),
        (Action::Close, "close"),
        (Action::Abandon, "abandon"),
    ] {
        if decide(&lifecycle, &actor, rel.id, rel.parsed_state, &action, &current_view).is_ok() {
            out.push(Control {
                action: name,
                environment: None,
                needs_override: false,
                blocked: None,
            });
        }
    }
    for step in &lifecycle {
        let view = slots::get(c, rel.app_id, step.id).await?.view();
        let promote = Action::Promote {
            to: step.id,
            override_reason: None,
        };
        match decide(&lifecycle, &actor, rel.id, rel.parsed_state, &promote, &view) {
            Ok(_) => out.push(Control {
                action: "promote",
                environment: Some(step.name.clone()),
                needs_override: false,
                blocked: None,
            }),
            // Held: say by whom; an operator may override it with a reason.
            Err(e @ TransitionError::Held { .. }) if access::may_override_hold(roles) => out.push(Control {
                action: "promote",
                environment: Some(step.name.clone()),
                needs_override: true,
                blocked: Some(e.to_string()),
            }),
            Err(_) => {}
        }
        let deploy = Action::StartDeploy { env: step.id };
        if decide(&lifecycle, &actor, rel.id, rel.parsed_state, &deploy, &view).is_ok() {
            let bound = envs.iter().any(|e| e.id == step.id && e.cluster_id.is_some());
            out.push(Control {
                action: "deploy",
                environment: Some(step.name.clone()),
                needs_override: false,
                blocked: (!bound).then(|| format!("{} is not bound to a cluster yet", step.name)),
            });
        }
    }
    Ok(out)
}

pub async fn page(State(state): State<AppState>, Web(caller): Web, Path(id): Path<String>) -> WebResult<Html<String>> {
    let id = release_id(&id)?;
    let mut c = state.store.conn().await?;
    let (rel, _) = access::release(&mut c, &caller, id).await?;
    let history = releases::history(&mut c, id).await?;
    let ds = prism_store::deploys::list(&mut c, None, None, Some(id), 50).await?;
    let controls = controls(&mut c, &caller, &rel).await?;
    let build = super::builds::for_release(&mut c, &caller, &rel).await?;
    drop(c);
    let closed_envs = super::deploys::closed_environments(&state).await?;
    let closed_env_names: Vec<String> = closed_envs.iter().map(|c| c.environment.clone()).collect();
    render(
        &state,
        &caller,
        "release.html",
        context! { nav => "releases", release => rel, history => history, deploys => ds, controls => controls, build => build,
                   closed_envs => closed_envs, closed_env_names => closed_env_names },
    )
    .await
}

#[derive(Deserialize)]
pub struct ActForm {
    action: String,
    environment: Option<String>,
    override_reason: Option<String>,
    #[serde(default)]
    note: String,
    /// Deploy during a freeze or outside the windows: why (break-glass).
    #[serde(default)]
    break_glass_reason: Option<String>,
}

pub async fn act(State(state): State<AppState>, Path(id): Path<String>, p: Posted<ActForm>) -> WebResult<Response> {
    let f = p.form;
    let environment = f.environment.filter(|e| !e.is_empty());
    let shown = if f.action == "deploy" {
        resend::DEPLOY
    } else {
        resend::RELEASE
    };
    if f.action == "deploy" {
        // A deploy is more than a state change: the deploy operation
        // records it and queues the work; then the deploy's own page.
        let operation = async {
            let env = environment.ok_or_else(|| OpError::invalid("environment", "deploy needs an environment"))?;
            let req = StartDeploy {
                environment: env,
                note: f.note,
                break_glass_reason: f.break_glass_reason.filter(|r| !r.trim().is_empty()),
            };
            let rid = ReleaseId::parse("id", &id).map_err(|_| OpError::not_found("release", &id))?;
            deploys::start_deploy(&state, &p.caller, rid, req).await
        };
        return resend::once(&state, &p.caller, shown, operation, |d| format!("/deploys/{}", d.id)).await;
    }
    if !["promote", "pass", "close", "abandon"].contains(&f.action.as_str()) {
        return Err(OpError::invalid("action", format!("unknown action {:?}", f.action)).into());
    }
    let req = ActRequest {
        environment,
        override_reason: f.override_reason.filter(|r| !r.trim().is_empty()),
        note: f.note,
        commit_sha: None,
        image_ref: None,
        image_digest: None,
    };
    // As the API reads an address that is no release id: not found, naming the `id`.
    let rid =
        ReleaseId::parse("id", &id).map_err(|e| crate::error::ApiError::not_found("release", &id).field(e.field))?;
    let operation = op::act(&state, &p.caller, rid, &f.action, req);
    resend::once(&state, &p.caller, shown, operation, |rel| {
        format!("/releases/{}", rel.id)
    })
    .await
}

#[derive(Deserialize)]
pub struct HoldForm {
    #[serde(default)]
    note: String,
    #[serde(default)]
    reason: String,
}

pub async fn hold(
    State(state): State<AppState>,
    Path((name, env)): Path<(String, String)>,
    p: Posted<HoldForm>,
) -> WebResult<Response> {
    let req = HoldRequest {
        note: p.form.note,
        expires_in_minutes: None,
    };
    let _board = holds::hold(&state, &p.caller, &name, &env, req).await?;
    Ok(Redirect::to(&format!("/apps/{name}")).into_response())
}

pub async fn unhold(
    State(state): State<AppState>,
    Path((name, env)): Path<(String, String)>,
    p: Posted<HoldForm>,
) -> WebResult<Response> {
    let reason = Some(p.form.reason).filter(|r| !r.trim().is_empty());
    let _board = holds::unhold(&state, &p.caller, &name, &env, reason).await?;
    Ok(Redirect::to(&format!("/apps/{name}")).into_response())
}
