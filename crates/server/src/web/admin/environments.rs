//! Environments in lifecycle order and their deploy policies.

use axum::extract::{Path, State};
use axum::response::{Html, Response};
use minijinja::context;
use prism_api::environments::{BindNamespace, CreateEnvironment, UpdateEnvironment};
use prism_domain::{EnvPolicy, Role};
use serde::Deserialize;

use super::{after, checked, opt, NoFields, Notice};
use crate::auth::Caller;
use crate::ops::access;
use crate::ops::environments as op;
use crate::state::AppState;
use crate::web::error::WebResult;
use crate::web::render::page as render;
use crate::web::session::{Posted, Web};

pub(crate) async fn environments_page(
    state: &AppState,
    caller: &Caller,
    notice: Option<Notice>,
) -> WebResult<Html<String>> {
    access::require_admin(caller)?;
    let envs = op::list(state).await?;
    let mut governance = std::collections::BTreeMap::new();
    for e in &envs {
        governance.insert(e.name.clone(), super::governance::of(state, caller, &e.name).await?);
    }
    let cl = crate::ops::clusters::list(state, caller).await?;
    // Each environment's per-project namespace bindings, by environment name.
    let mut bindings = std::collections::BTreeMap::new();
    for e in &envs {
        bindings.insert(e.name.clone(), op::namespace_bindings(state, &e.name).await?);
    }
    let projects = crate::ops::projects::list(state, caller).await?;
    render(
        state,
        caller,
        "environments.html",
        context! {
            nav => "environments",
            envs => envs,
            bindings => bindings,
            projects => projects.iter().map(|p| &p.name).collect::<Vec<_>>(),
            governance => governance,
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
    let req = CreateEnvironment {
        name: p.form.name.trim().to_owned(),
        position: None,
        cluster: opt(&p.form.cluster),
        namespace: p.form.namespace.trim().to_owned(),
        policy: Some(policy(&p.form)),
        rules: None,
    };
    let r = op::create(&state, &p.caller, req).await;
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
    let req = UpdateEnvironment {
        position: None,
        cluster: Some(opt(&p.form.cluster)),
        namespace: opt(&p.form.namespace),
        policy: Some(policy(&p.form)),
        rules: None,
    };
    let r = op::update(&state, &p.caller, &name, req).await;
    after(r, "/admin/environments".into(), |n| {
        environments_page(&state, &p.caller, Some(n))
    })
    .await
}

#[derive(Deserialize)]
pub struct BindForm {
    #[serde(default)]
    project: String,
    #[serde(default)]
    namespace: String,
}

/// Binds one project's namespace in the environment (wins over its pattern).
pub async fn bind_namespace(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<BindForm>,
) -> WebResult<Response> {
    let req = BindNamespace {
        namespace: p.form.namespace.trim().to_owned(),
    };
    let r = op::bind_namespace(&state, &p.caller, &name, p.form.project.trim(), req).await;
    after(r, "/admin/environments".into(), |n| {
        environments_page(&state, &p.caller, Some(n))
    })
    .await
}

pub async fn unbind_namespace(
    State(state): State<AppState>,
    Path((name, project)): Path<(String, String)>,
    p: Posted<NoFields>,
) -> WebResult<Response> {
    let r = op::unbind_namespace(&state, &p.caller, &name, &project).await;
    after(r, "/admin/environments".into(), |n| {
        environments_page(&state, &p.caller, Some(n))
    })
    .await
}
