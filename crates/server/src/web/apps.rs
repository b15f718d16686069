//! Applications: the list, one application's page (board row, settings per
//! environment as forms with inline errors, releases and deploys), and the
//! template editor with a preview for a chosen environment and release.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::{context, Value};
use prism_api::applications::{PutSettings, UpdateApplication};
use prism_api::templates::{PreviewRequest, SaveTemplates};
use prism_domain::ReleaseId;
use prism_manifests::{TemplateSet, BUILTIN_NAMES};
use prism_store::releases::{self, ReleaseFilter};
use prism_store::{apps, deploys, environments, slots};
use serde::{Deserialize, Serialize};

use super::error::{WebError, WebResult};
use super::render::page as render;
use super::session::{PageQuery, Posted, Web};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::ops::applications as api;
use crate::ops::templates as tapi;
use crate::ops::{access, OpError};
use crate::state::AppState;

const PAGE: i64 = 20;

/// Applications per page of the list.
const APPS_PAGE: i64 = 100;

#[derive(Deserialize)]
pub struct ListQuery {
    /// Name cursor: the previous page's last application.
    after: Option<String>,
}

/// The applications the caller may see, a page at a time by name (keyset:
/// the page reads its own rows and the count, never the rest).
pub async fn list(
    State(state): State<AppState>,
    Web(caller): Web,
    PageQuery(q): PageQuery<ListQuery>,
) -> WebResult<Html<String>> {
    let mut c = state.store.conn().await?;
    let visible = crate::ops::access::visibility(&caller);
    let after = q.after.as_deref().filter(|a| !a.is_empty());
    let mut shown = apps::list_visible_page(&mut c, visible, None, after, APPS_PAGE + 1).await?;
    let total = prism_store::slots::visible_applications(&mut c, visible).await?;
    drop(c);
    let next = (shown.len() as i64 > APPS_PAGE).then(|| shown[APPS_PAGE as usize - 1].name.clone());
    shown.truncate(APPS_PAGE as usize);
    render(
        &state,
        &caller,
        "apps.html",
        context! { nav => "apps", apps => shown, next => next, total => total },
    )
    .await
}

#[derive(Deserialize)]
pub struct AppPageQuery {
    /// Release cursor: the previous page's last release id.
    before: Option<String>,
}

/// An inline error on one of the page's forms, and what the user had typed.
#[derive(Serialize, Default)]
pub(super) struct FormError {
    /// Which form (the environment for settings).
    pub form: String,
    pub field: Option<String>,
    pub message: String,
    pub values: BTreeMap<String, String>,
}

async fn app_page(
    state: &AppState,
    caller: &Caller,
    name: &str,
    before: Option<&str>,
    error: Option<FormError>,
) -> WebResult<Html<String>> {
    app_page_with(state, caller, name, before, error, None).await
}

/// The application's page; `webhook_secret` is a webhook secret just set,
/// shown on this answer only.
pub(super) async fn app_page_with(
    state: &AppState,
    caller: &Caller,
    name: &str,
    before: Option<&str>,
    error: Option<FormError>,
    webhook_secret: Option<String>,
) -> WebResult<Html<String>> {
    // Only those who may configure it see the webhook (its address, rules, deliveries).
    let webhook = crate::ops::webhooks::for_page(state, caller, name).await?;
    let mut c = state.store.conn().await?;
    let (app, roles) = access::application(&mut c, caller, name).await?;
    let before = before
        .map(|b| ReleaseId::parse("before", b))
        .transpose()
        .map_err(OpError::from)?;
    let settings = apps::env_settings(&mut c, app.id).await?;
    let board = slots::board(&mut c, None, slots::BoardScope::Application(app.id)).await?;
    let rels = releases::list(
        &mut c,
        &ReleaseFilter {
            app_id: Some(app.id),
            before: before.map(|b| b.seq()),
            limit: PAGE,
            ..Default::default()
        },
    )
    .await?;
    let next = (rels.len() as i64 == PAGE)
        .then(|| rels.last().map(|r| r.id.to_string()))
        .flatten();
    let deploys = deploys::list(&mut c, Some(app.id), None, None, PAGE).await?;
    let rollouts = crate::ops::rollouts::for_application(&mut c, app.id).await?;
    drop(c);
    render(
        state,
        caller,
        "app.html",
        context! {
            nav => "apps",
            app => app,
            can_edit => access::may_edit_application(roles),
            can_release => access::may_create_release(roles),
            can_hold => access::may_hold(roles),
            // Another user's hold: only an operator may lift it (with a reason).
            can_lift_others => access::may_override_hold(roles),
            settings => settings,
            board => board,
            releases => rels,
            next => next,
            deploys => deploys,
            build_settings => serde_json::to_string_pretty(&app.build_settings).unwrap_or_default(),
            rollouts => rollouts,
            error => error,
            webhook => webhook,
            webhook_secret => webhook_secret,
            webhook_base => format!("/apps/{}/webhook", app.name),
            forges => ["github", "gitea", "gitlab"],
        },
    )
    .await
}

pub async fn page(
    State(state): State<AppState>,
    Web(caller): Web,
    Path(name): Path<String>,
    PageQuery(q): PageQuery<AppPageQuery>,
) -> WebResult<Html<String>> {
    app_page(&state, &caller, &name, q.before.as_deref(), None).await
}

#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    replicas: String,
    #[serde(default)]
    cpu_request: String,
    #[serde(default)]
    cpu_limit: String,
    #[serde(default)]
    memory_request: String,
    #[serde(default)]
    memory_limit: String,
    /// One `NAME=value` per line.
    #[serde(default)]
    env_vars: String,
}

fn parse_env_vars(text: &str) -> Result<BTreeMap<String, String>, OpError> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| OpError::invalid("env_vars", format!("line {}: write NAME=value", i + 1)))?;
        out.insert(k.trim().to_owned(), v.to_owned());
    }
    Ok(out)
}

pub async fn save_settings(
    State(state): State<AppState>,
    Path((name, env)): Path<(String, String)>,
    p: Posted<SettingsForm>,
) -> WebResult<Response> {
    let f = p.form;
    let attempt = async {
        let replicas: i64 = f
            .replicas
            .trim()
            .parse()
            .map_err(|_| OpError::invalid("replicas", "must be a whole number"))?;
        let req = PutSettings {
            replicas,
            cpu_request: f.cpu_request.trim().to_owned(),
            cpu_limit: f.cpu_limit.trim().to_owned(),
            memory_request: f.memory_request.trim().to_owned(),
            memory_limit: f.memory_limit.trim().to_owned(),
            env_vars: parse_env_vars(&f.env_vars)?,
        };
        api::put_settings(&state, &p.caller, &name, &env, req).await
    };
    match attempt.await {
        Ok(_) => Ok(Redirect::to(&format!("/apps/{name}#settings-{env}")).into_response()),
        // A field the user can fix: the same page again, with the error next to it.
        Err(OpError::Invalid { field, message, .. }) => {
            let values = BTreeMap::from([
                ("replicas".to_owned(), f.replicas),
                ("cpu_request".to_owned(), f.cpu_request),
                ("cpu_limit".to_owned(), f.cpu_limit),
                ("memory_request".to_owned(), f.memory_request),
                ("memory_limit".to_owned(), f.memory_limit),
                ("env_vars".to_owned(), f.env_vars),
            ]);
            // `env_vars.NAME` errors belong to the one env-vars box.
            let field = field.map(|f| {
                if f.starts_with("env_vars") {
                    "env_vars".to_owned()
                } else {
                    f
                }
            });
            let error = FormError {
                form: env,
                field,
                message,
                values,
            };
            let html = app_page(&state, &p.caller, &name, None, Some(error)).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct RolloutForm {
    #[serde(default)]
    strategy: String,
}

/// Saves how the application rolls out in one environment, edited as JSON;
/// a refused field (`steps[1].weight`) is named next to the box.
pub async fn save_rollout(
    State(state): State<AppState>,
    Path((name, env)): Path<(String, String)>,
    p: Posted<RolloutForm>,
) -> WebResult<Response> {
    let text = p.form.strategy;
    let attempt = async {
        let strategy: prism_kube::progressive::strategy::Strategy =
            serde_json::from_str(&text).map_err(|e| OpError::invalid("strategy", format!("not a strategy: {e}")))?;
        crate::ops::rollouts::set_strategy(&state, &p.caller, &name, &env, strategy).await
    };
    match attempt.await {
        Ok(_) => Ok(Redirect::to(&format!("/apps/{name}#rollout-{env}")).into_response()),
        Err(OpError::Invalid { field, message, .. }) => {
            let error = FormError {
                form: format!("rollout-{env}"),
                field: field.or(Some("strategy".into())),
                message,
                values: BTreeMap::from([("strategy".to_owned(), text)]),
            };
            let html = app_page(&state, &p.caller, &name, None, Some(error)).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct BuildSettingsForm {
    #[serde(default)]
    build_settings: String,
}

/// Saves the application's build settings, edited as JSON; a field the API
/// refuses (e.g. `build_settings.artifact_paths[1]`) is named next to the box.
pub async fn save_build_settings(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<BuildSettingsForm>,
) -> WebResult<Response> {
    let text = p.form.build_settings;
    let attempt = async {
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| OpError::invalid("build_settings", format!("not valid JSON: {e}")))?;
        let req = UpdateApplication {
            git_url: None,
            build_settings: Some(value),
            template_settings: None,
        };
        api::update(&state, &p.caller, &name, req).await
    };
    match attempt.await {
        Ok(_) => Ok(Redirect::to(&format!("/apps/{name}#build-settings")).into_response()),
        Err(OpError::Invalid { field, message, .. }) => {
            let error = FormError {
                form: "build_settings".into(),
                field: field.or(Some("build_settings".into())),
                message,
                values: BTreeMap::from([("build_settings".to_owned(), text)]),
            };
            let html = app_page(&state, &p.caller, &name, None, Some(error)).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
pub struct TemplateQuery {
    environment: Option<String>,
    release: Option<String>,
}

/// One template in the editor: the project's own body, else the built-in one.
#[derive(Serialize)]
struct EditorFile {
    name: String,
    body: String,
    builtin: bool,
    overridden: bool,
}

struct Editor {
    files: Vec<EditorFile>,
    version: i64,
    project: String,
}

async fn editor(
    state: &AppState,
    caller: &Caller,
    app: &str,
) -> WebResult<(Editor, prism_store::apps::Application, bool)> {
    let mut c = state.store.conn().await?;
    let (app, roles) = access::application(&mut c, caller, app).await?;
    drop(c);
    let t = tapi::get(state, caller, &app.project).await?;
    let mut files: Vec<EditorFile> = t
        .builtin
        .iter()
        .map(|(name, body)| EditorFile {
            name: name.clone(),
            body: t.current.files.get(name).unwrap_or(body).clone(),
            builtin: true,
            overridden: t.current.files.contains_key(name),
        })
        .collect();
    for (name, body) in &t.current.files {
        if !t.builtin.contains_key(name) {
            files.push(EditorFile {
                name: name.clone(),
                body: body.clone(),
                builtin: false,
                overridden: true,
            });
        }
    }
    Ok((
        Editor {
            files,
            version: t.current.version,
            project: app.project.clone(),
        },
        app,
        access::may_edit_application(roles),
    ))
}

#[allow(clippy::too_many_arguments)]
async fn editor_page(
    state: &AppState,
    caller: &Caller,
    name: &str,
    environment: Option<String>,
    release: Option<String>,
    edited: Option<BTreeMap<String, String>>,
    preview: Option<String>,
    error: Option<ApiError>,
) -> WebResult<Html<String>> {
    let (mut ed, app, can_edit) = editor(state, caller, name).await?;
    if let Some(edited) = &edited {
        for f in &mut ed.files {
            if let Some(body) = edited.get(&f.name) {
                f.body = body.clone();
            }
        }
    }
    let mut c = state.store.conn().await?;
    let envs = environments::list(&mut c).await?;
    let rels = releases::list(
        &mut c,
        &ReleaseFilter {
            app_id: Some(app.id),
            limit: PAGE,
            ..Default::default()
        },
    )
    .await?;
    drop(c);
    let error = error.map(|e| {
        let template = e.field.as_deref().map(|f| f.trim_start_matches("files.").to_owned());
        context! { message => e.message, template => template }
    });
    let ctx: Value = context! {
        nav => "apps",
        app => app,
        can_edit => can_edit,
        files => ed.files,
        base_version => ed.version,
        project => ed.project,
        envs => envs.iter().map(|e| &e.name).collect::<Vec<_>>(),
        releases => rels.iter().map(|r| r.id.to_string()).collect::<Vec<_>>(),
        environment => environment.or_else(|| envs.first().map(|e| e.name.clone())),
        release => release.or_else(|| rels.first().map(|r| r.id.to_string())),
        preview => preview,
        error => error,
    };
    render(state, caller, "templates.html", ctx).await
}

pub async fn templates(
    State(state): State<AppState>,
    Web(caller): Web,
    Path(name): Path<String>,
    PageQuery(q): PageQuery<TemplateQuery>,
) -> WebResult<Html<String>> {
    editor_page(&state, &caller, &name, q.environment, q.release, None, None, None).await
}

/// The editor's fields: `file:NAME` bodies plus the preview's choices.
fn edited_files(form: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    form.iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("file:")?.to_owned(), v.replace("\r\n", "\n"))))
        .collect()
}

/// What to send as the project's own set: bodies that differ from the
/// built-in of that name (an emptied built-in removes it), and every
/// template that is not a built-in.
fn overrides(edited: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let builtin = TemplateSet::builtin();
    edited
        .iter()
        .filter(|(name, body)| {
            !BUILTIN_NAMES.contains(&name.as_str()) || builtin.get(name).map(|b| b.trim_end()) != Some(body.trim_end())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub async fn preview(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<BTreeMap<String, String>>,
) -> WebResult<Response> {
    let edited = edited_files(&p.form);
    let environment = p.form.get("environment").cloned().unwrap_or_default();
    let release = p.form.get("release").cloned().unwrap_or_default();
    let req = PreviewRequest {
        environment: environment.clone(),
        release: release.clone(),
        files: Some(overrides(&edited)),
    };
    let result = tapi::preview(&state, &p.caller, &name, req).await;
    let (preview, error, status) = match result {
        Ok(r) => (Some(r.yaml), None, StatusCode::OK),
        Err(e) if e.is_correctable() => {
            let e = ApiError::from(e);
            let s = e.status;
            (None, Some(e), s)
        }
        Err(e) => return Err(WebError::from(e)),
    };
    let html = editor_page(
        &state,
        &p.caller,
        &name,
        Some(environment),
        Some(release),
        Some(edited),
        preview,
        error,
    )
    .await?;
    Ok((status, html).into_response())
}

pub async fn save_templates(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<BTreeMap<String, String>>,
) -> WebResult<Response> {
    let edited = edited_files(&p.form);
    let base_version = p
        .form
        .get("base_version")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| OpError::invalid("base_version", "missing"))?;
    let project = api::get(&state, &p.caller, &name).await?.0.project;
    let req = SaveTemplates {
        base_version,
        files: overrides(&edited),
        note: p.form.get("note").cloned().unwrap_or_default(),
    };
    match tapi::save(&state, &p.caller, &project, req).await {
        Ok(_) => Ok(Redirect::to(&format!("/apps/{name}/templates")).into_response()),
        Err(e @ (OpError::Invalid { .. } | OpError::Conflict { .. })) => {
            let e = ApiError::from(e);
            let s = e.status;
            let html = editor_page(&state, &p.caller, &name, None, None, Some(edited), None, Some(e)).await?;
            Ok((s, html).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
