//! Users: create, make or remove admin, disable or enable.

use axum::extract::{Path, State};
use axum::response::{Html, Response};
use minijinja::context;
use prism_api::users::{CreateUser, UpdateUser};
use serde::Deserialize;

use super::{after, checked, opt, Notice};
use crate::auth::Caller;
use crate::ops::users as op;
use crate::ops::OpError;
use crate::state::AppState;
use crate::web::error::WebResult;
use crate::web::render::page as render;
use crate::web::session::{Posted, Web};

pub(super) async fn users_page(state: &AppState, caller: &Caller, notice: Option<Notice>) -> WebResult<Html<String>> {
    let list = op::list(state, caller).await?;
    let rules = crate::ops::directory::rules(state, caller).await?;
    let projects: Vec<String> = crate::ops::projects::list(state, caller)
        .await?
        .into_iter()
        .map(|p| p.name)
        .collect();
    let directory = state.settings.directory.as_ref().map(|d| d.url.clone());
    render(
        state,
        caller,
        "users.html",
        context! { nav => "users", users => list, notice => notice, rules => rules, projects => projects,
        directory => directory },
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
    let req = CreateUser {
        username: p.form.username.trim().to_owned(),
        password: p.form.password,
        display_name: opt(&p.form.display_name),
        admin: checked(&p.form.admin),
    };
    let r = op::create(&state, &p.caller, req).await;
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
    let mut req = UpdateUser {
        display_name: None,
        admin: None,
        disabled: None,
        password: None,
        current_password: None,
    };
    match p.form.set.as_str() {
        "admin" => req.admin = Some(value),
        "disabled" => req.disabled = Some(value),
        other => return Err(OpError::invalid("set", format!("unknown setting {other:?}")).into()),
    }
    let r = op::update(&state, &p.caller, &name, req).await;
    after(r, "/admin/users".into(), |n| users_page(&state, &p.caller, Some(n))).await
}
