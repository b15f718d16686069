//! Projects, their members and roles, and their applications.

use axum::extract::{Path, State};
use axum::response::{Html, Response};
use minijinja::context;
use prism_api::applications::CreateApplication;
use prism_api::projects::{CreateProject, Grant};
use prism_domain::Role;
use prism_store::{apps, projects, users};
use serde::Deserialize;

use super::{after, Notice};
use crate::auth::Caller;
use crate::ops::access;
use crate::ops::applications;
use crate::ops::members;
use crate::ops::projects as op;
use crate::state::AppState;
use crate::web::error::WebResult;
use crate::web::render::page as render;
use crate::web::session::{Posted, Web};

async fn projects_page(state: &AppState, caller: &Caller, notice: Option<Notice>) -> WebResult<Html<String>> {
    access::require_admin(caller)?;
    let list = op::list(state, caller).await?;
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
    let req = CreateProject {
        name: name.clone(),
        description: p.form.description,
    };
    let r = op::create(&state, &p.caller, req).await;
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
    access::require_admin(caller)?;
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
        members::revoke(&state, &p.caller, &name, &f.username, &f.role).await
    } else {
        let req = Grant {
            username: f.username,
            role: f.role,
        };
        members::grant(&state, &p.caller, &name, req).await.map(|_| ())
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
    let req = CreateApplication {
        project: project.clone(),
        name: name.clone(),
        git_url: p.form.git_url.trim().to_owned(),
        build_settings: None,
        template_settings: None,
    };
    let r = applications::create(&state, &p.caller, req).await;
    after(r, format!("/apps/{name}"), |n| {
        project_page(&state, &p.caller, &project, Some(n))
    })
    .await
}
