//! Administration pages (users and roles, projects with their members and
//! applications, clusters with a health check, environments and their
//! policies) and every user's API tokens. Each form calls the API's handler
//! for the same change, so the admin check and the audit event are the API's.
//! A refused form shows the page again with the error on top (status kept).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::{context, Value};
use prism_domain::{EnvPolicy, Role};
use prism_store::{apps, clusters, environments, projects, tokens, users};
use serde::{Deserialize, Serialize};

use super::error::{WebError, WebResult};
use super::render::page as render;
use super::session::{Posted, Web};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;

/// A refused form: its message and the field it names.
#[derive(Serialize)]
struct Notice {
    message: String,
    field: Option<String>,
}

/// Redirects after a change; shows `page` again with the error when the
/// request was refused for something the user can fix.
async fn after<F, Fut>(result: ApiResult<()>, to: String, again: F) -> WebResult<Response>
where
    F: FnOnce(Notice) -> Fut,
    Fut: std::future::Future<Output = WebResult<Html<String>>>,
{
    match result {
        Ok(()) => Ok(Redirect::to(&to).into_response()),
        Err(e)
            if e.status.is_client_error() && e.status != StatusCode::FORBIDDEN && e.status != StatusCode::NOT_FOUND =>
        {
            let status = e.status;
            let html = again(Notice {
                message: e.message,
                field: e.field,
            })
            .await?;
            Ok((status, html).into_response())
        }
        Err(e) => Err(WebError::Api(e)),
    }
}

fn checked(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|v| v == "on" || v == "true" || v == "1")
}

fn opt(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

// ---- API tokens (every user, their own) ----

async fn tokens_page(
    state: &AppState,
    caller: &Caller,
    secret: Option<String>,
    notice: Option<Notice>,
) -> WebResult<Html<String>> {
    let list = tokens::list_tokens(&mut *state.store.conn().await?, Some(caller.user.id)).await?;
    let now = prism_store::now_ms();
    render(
        state,
        caller,
        "tokens.html",
        context! { nav => "tokens", tokens => list, secret => secret, notice => notice, now => now },
    )
    .await
}

pub async fn tokens(State(state): State<AppState>, Web(caller): Web) -> WebResult<Html<String>> {
    tokens_page(&state, &caller, None, None).await
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    expires_in_days: String,
}

/// The secret is shown on the page that answers the post, once; it is never stored.
pub async fn create_token(State(state): State<AppState>, p: Posted<TokenForm>) -> WebResult<Response> {
    let days = match opt(&p.form.expires_in_days) {
        Some(d) => match d.parse() {
            Ok(d) => Some(d),
            Err(_) => {
                let n = Notice {
                    message: "must be a whole number of days".into(),
                    field: Some("expires_in_days".into()),
                };
                let html = tokens_page(&state, &p.caller, None, Some(n)).await?;
                return Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response());
            }
        },
        None => None,
    };
    let req = crate::routes::tokens::CreateToken {
        name: opt(&p.form.name),
        expires_in_days: days,
    };
    match crate::routes::tokens::create(State(state.clone()), p.caller.clone(), ApiJson(req)).await {
        Ok((_, t)) => {
            let mut resp = tokens_page(&state, &p.caller, Some(t.0.secret), None)
                .await?
                .into_response();
            resp.headers_mut()
                .insert(axum::http::header::CACHE_CONTROL, "no-store".parse().expect("header"));
            Ok(resp)
        }
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            let n = Notice {
                message: e.message,
                field: e.field,
            };
            let html = tokens_page(&state, &p.caller, None, Some(n)).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct NoFields {}

pub async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<NoFields>,
) -> WebResult<Response> {
    let _revoked = crate::routes::tokens::revoke(State(state), p.caller, Path(id)).await?;
    Ok(Redirect::to("/tokens").into_response())
}

// ---- users ----

async fn users_page(state: &AppState, caller: &Caller, notice: Option<Notice>) -> WebResult<Html<String>> {
    caller.require_admin()?;
    let mut c = state.store.conn().await?;
    let list = users::list(&mut c).await?;
    drop(c);
    render(
        state,
        caller,
        "users.html",
        context! { nav => "users", users => list, notice => notice },
    )
    .await
}

pub async fn users(State(state): State<AppState>, Web(caller): Web) -> WebResult<Html<String>> {
    users_page(&state, &caller, None).await
}

#[derive(Deserialize)]
pub struct UserForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    display_name: String,
    admin: Option<String>,
}

pub async fn create_user(State(state): State<AppState>, p: Posted<UserForm>) -> WebResult<Response> {
    let req = crate::routes::users::CreateUser {
        username: p.form.username.trim().to_owned(),
        password: p.form.password,
        display_name: opt(&p.form.display_name),
        admin: checked(&p.form.admin),
    };
    let r = crate::routes::users::create(State(state.clone()), p.caller.clone(), ApiJson(req))
        .await
        .map(|_| ());
    after(r, "/admin/users".into(), |n| users_page(&state, &p.caller, Some(n))).await
}

#[derive(Deserialize)]
pub struct UserUpdateForm {
    /// Which flag to flip: admin or disabled.
    set: String,
    value: String,
}

pub async fn update_user(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<UserUpdateForm>,
) -> WebResult<Response> {
    let value = p.form.value == "true";
    let mut req = crate::routes::users::UpdateUser {
        display_name: None,
        admin: None,
        disabled: None,
        password: None,
        current_password: None,
    };
    match p.form.set.as_str() {
        "admin" => req.admin = Some(value),
        "disabled" => req.disabled = Some(value),
        other => return Err(ApiError::bad_request("set", format!("unknown setting {other:?}")).into()),
    }
    let r = crate::routes::users::update(State(state.clone()), p.caller.clone(), Path(name), ApiJson(req))
        .await
        .map(|_| ());
    after(r, "/admin/users".into(), |n| users_page(&state, &p.caller, Some(n))).await
}

// ---- projects, members, applications ----

async fn projects_page(state: &AppState, caller: &Caller, notice: Option<Notice>) -> WebResult<Html<String>> {
    caller.require_admin()?;
    let list = projects::list_visible(&mut *state.store.conn().await?, None).await?;
    render(
        state,
        caller,
        "projects.html",
        context! { nav => "projects", projects => list, notice => notice },
    )
    .await
}

pub async fn projects(State(state): State<AppState>, Web(caller): Web) -> WebResult<Html<String>> {
    projects_page(&state, &caller, None).await
}

#[derive(Deserialize)]
pub struct ProjectForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

pub async fn create_project(State(state): State<AppState>, p: Posted<ProjectForm>) -> WebResult<Response> {
    let name = p.form.name.trim().to_owned();
    let req = crate::routes::projects::CreateProject {
        name: name.clone(),
        description: p.form.description,
    };
    let r = crate::routes::projects::create(State(state.clone()), p.caller.clone(), ApiJson(req))
        .await
        .map(|_| ());
    after(r, format!("/admin/projects/{name}"), |n| {
        projects_page(&state, &p.caller, Some(n))
    })
    .await
}

async fn project_page(
    state: &AppState,
    caller: &Caller,
    name: &str,
    notice: Option<Notice>,
) -> WebResult<Html<String>> {
    caller.require_admin()?;
    let mut c = state.store.conn().await?;
    let project = projects::by_name(&mut c, name).await?;
    let members = projects::members(&mut c, project.id).await?;
    let list = apps::list_visible(&mut c, None, Some(project.id)).await?;
    let all_users = users::list(&mut c).await?;
    drop(c);
    render(
        state,
        caller,
        "project.html",
        context! {
            nav => "projects",
            project => project,
            members => members,
            apps => list,
            users => all_users.iter().map(|u| &u.username).collect::<Vec<_>>(),
            roles => Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            notice => notice,
        },
    )
    .await
}

pub async fn project(
    State(state): State<AppState>,
    Web(caller): Web,
    Path(name): Path<String>,
) -> WebResult<Html<String>> {
    project_page(&state, &caller, &name, None).await
}

#[derive(Deserialize)]
pub struct GrantForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
    /// "revoke" to take the role away.
    #[serde(default)]
    op: String,
}

pub async fn grant(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<GrantForm>,
) -> WebResult<Response> {
    let f = p.form;
    let r = if f.op == "revoke" {
        crate::routes::projects::revoke(
            State(state.clone()),
            p.caller.clone(),
            Path((name.clone(), f.username, f.role)),
        )
        .await
        .map(|_| ())
    } else {
        let req = crate::routes::projects::Grant {
            username: f.username,
            role: f.role,
        };
        crate::routes::projects::grant(State(state.clone()), p.caller.clone(), Path(name.clone()), ApiJson(req))
            .await
            .map(|_| ())
    };
    after(r, format!("/admin/projects/{name}"), |n| {
        project_page(&state, &p.caller, &name, Some(n))
    })
    .await
}

#[derive(Deserialize)]
pub struct AppForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    git_url: String,
}

pub async fn create_app(
    State(state): State<AppState>,
    Path(project): Path<String>,
    p: Posted<AppForm>,
) -> WebResult<Response> {
    let name = p.form.name.trim().to_owned();
    let req = crate::routes::applications::CreateApplication {
        project: project.clone(),
        name: name.clone(),
        git_url: p.form.git_url.trim().to_owned(),
        build_settings: None,
        template_settings: None,
    };
    let r = crate::routes::applications::create(State(state.clone()), p.caller.clone(), ApiJson(req))
        .await
        .map(|_| ());
    after(r, format!("/apps/{name}"), |n| {
        project_page(&state, &p.caller, &project, Some(n))
    })
    .await
}

// ---- clusters ----

async fn clusters_page(
    state: &AppState,
    caller: &Caller,
    health: Value,
    notice: Option<Notice>,
) -> WebResult<Html<String>> {
    caller.require_admin()?;
    let list = clusters::list(&mut *state.store.conn().await?).await?;
    let list: Vec<Value> = list
        .iter()
        .map(|c| context! { name => c.name, api_url => c.api_url, has_token => c.has_token(), insecure => c.insecure_skip_tls_verify != 0, updated_at => c.updated_at })
        .collect();
    render(
        state,
        caller,
        "clusters.html",
        context! { nav => "clusters", clusters => list, health => health, notice => notice },
    )
    .await
}

pub async fn clusters(State(state): State<AppState>, Web(caller): Web) -> WebResult<Html<String>> {
    clusters_page(&state, &caller, Value::UNDEFINED, None).await
}

#[derive(Deserialize)]
pub struct ClusterForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    api_url: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    ca_cert: String,
    insecure_skip_tls_verify: Option<String>,
    #[serde(default)]
    kubeconfig: String,
}

pub async fn create_cluster(State(state): State<AppState>, p: Posted<ClusterForm>) -> WebResult<Response> {
    let f = p.form;
    let req = crate::routes::clusters::CreateCluster {
        name: f.name.trim().to_owned(),
        api_url: opt(&f.api_url),
        ca_cert: opt(&f.ca_cert),
        token: opt(&f.token),
        insecure_skip_tls_verify: checked(&f.insecure_skip_tls_verify),
        kubeconfig: opt(&f.kubeconfig),
        context: None,
    };
    let r = crate::routes::clusters::create(State(state.clone()), p.caller.clone(), ApiJson(req))
        .await
        .map(|_| ());
    after(r, "/admin/clusters".into(), |n| {
        clusters_page(&state, &p.caller, Value::UNDEFINED, Some(n))
    })
    .await
}

/// Connects to the cluster now and shows what it answered.
pub async fn cluster_health(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<NoFields>,
) -> WebResult<Html<String>> {
    let h = crate::routes::clusters::health(State(state.clone()), p.caller.clone(), Path(name.clone()))
        .await?
        .0;
    let health = context! { cluster => name, ok => h.ok, version => h.version, error => h.error };
    clusters_page(&state, &p.caller, health, None).await
}

// ---- environments and their policies ----

async fn environments_page(state: &AppState, caller: &Caller, notice: Option<Notice>) -> WebResult<Html<String>> {
    caller.require_admin()?;
    let mut c = state.store.conn().await?;
    let envs = environments::list(&mut c).await?;
    let cl = clusters::list(&mut c).await?;
    drop(c);
    render(
        state,
        caller,
        "environments.html",
        context! {
            nav => "environments",
            envs => envs,
            clusters => cl.iter().map(|c| &c.name).collect::<Vec<_>>(),
            roles => [Role::Developer.as_str(), Role::Tester.as_str(), Role::Operator.as_str()],
            notice => notice,
        },
    )
    .await
}

pub async fn environments(State(state): State<AppState>, Web(caller): Web) -> WebResult<Html<String>> {
    environments_page(&state, &caller, None).await
}

/// The policy part of an environment form: one checkbox per role that may deploy.
#[derive(Deserialize)]
pub struct EnvForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    namespace: String,
    deploy_developer: Option<String>,
    deploy_tester: Option<String>,
    deploy_operator: Option<String>,
    requires_review: Option<String>,
    requires_previous: Option<String>,
}

fn policy(f: &EnvForm) -> EnvPolicy {
    let mut deploy_roles = vec![];
    for (on, role) in [
        (&f.deploy_developer, Role::Developer),
        (&f.deploy_tester, Role::Tester),
        (&f.deploy_operator, Role::Operator),
    ] {
        if checked(on) {
            deploy_roles.push(role);
        }
    }
    EnvPolicy {
        deploy_roles,
        requires_review: checked(&f.requires_review),
        requires_previous: checked(&f.requires_previous),
    }
}

pub async fn create_environment(State(state): State<AppState>, p: Posted<EnvForm>) -> WebResult<Response> {
    let req = crate::routes::environments::CreateEnvironment {
        name: p.form.name.trim().to_owned(),
        position: None,
        cluster: opt(&p.form.cluster),
        namespace: p.form.namespace.trim().to_owned(),
        policy: Some(policy(&p.form)),
        rules: None,
    };
    let r = crate::routes::environments::create(State(state.clone()), p.caller.clone(), ApiJson(req))
        .await
        .map(|_| ());
    after(r, "/admin/environments".into(), |n| {
        environments_page(&state, &p.caller, Some(n))
    })
    .await
}

pub async fn update_environment(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<EnvForm>,
) -> WebResult<Response> {
    let req = crate::routes::environments::UpdateEnvironment {
        position: None,
        cluster: Some(opt(&p.form.cluster)),
        namespace: opt(&p.form.namespace),
        policy: Some(policy(&p.form)),
        rules: None,
    };
    let r = crate::routes::environments::update(State(state.clone()), p.caller.clone(), Path(name), ApiJson(req))
        .await
        .map(|_| ());
    after(r, "/admin/environments".into(), |n| {
        environments_page(&state, &p.caller, Some(n))
    })
    .await
}
