//! Registries, for admins: listed, created or edited (the password is
//! write-only), deleted.

use axum::extract::{Path, State};
use axum::response::{Html, Response};
use minijinja::{context, Value};
use prism_api::credentials::PutRegistry;
use serde::Deserialize;

use super::{after, checked, opt, NoFields, Notice};
use crate::auth::Caller;
use crate::ops::access;
use crate::ops::registries;
use crate::state::AppState;
use crate::web::error::WebResult;
use crate::web::render::page as render;
use crate::web::session::{PageQuery, Posted, Web};

#[derive(Deserialize, Default)]
pub struct RegistryQuery {
    edit: Option<String>,
}

async fn registries_page(
    state: &AppState,
    caller: &Caller,
    edit: Option<String>,
    notice: Option<Notice>,
) -> WebResult<Html<String>> {
    access::require_admin(caller)?;
    let list = registries::list(state, caller).await?;
    // The form filled in for the registry being edited (never its password).
    let editing = edit.and_then(|n| list.iter().find(|r| r.name == n)).map(|r| {
        context! { name => r.name, host => r.host, insecure_http => r.insecure_http != 0, username => r.username,
        projects => r.projects.join(", "), all_projects => r.all_projects != 0,
        token_realm_hosts => r.token_realm_hosts() .join(", ") }
    });
    let list: Vec<Value> = list
        .iter()
        .map(|r| context! { name => r.name, host => r.host, insecure_http => r.insecure_http != 0, username => r.username, has_password => r.password_enc.is_some(), updated_at => r.updated_at,
                            projects => r.projects, all_projects => r.all_projects != 0 })
        .collect();
    render(
        state,
        caller,
        "registries.html",
        context! { nav => "registries", registries => list, editing => editing, notice => notice },
    )
    .await
}

pub async fn registries(
    State(state): State<AppState>,
    Web(caller): Web,
    PageQuery(q): PageQuery<RegistryQuery>,
) -> WebResult<Html<String>> {
    registries_page(&state, &caller, q.edit, None).await
}

#[derive(Deserialize)]
pub struct RegistryForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    host: String,
    insecure_http: Option<String>,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    clear_credentials: Option<String>,
    /// Comma-separated host[:port] list.
    #[serde(default)]
    token_realm_hosts: String,
    /// Comma-separated project names.
    #[serde(default)]
    projects: String,
    all_projects: Option<String>,
}

pub async fn put_registry(State(state): State<AppState>, p: Posted<RegistryForm>) -> WebResult<Response> {
    let f = p.form;
    let req = PutRegistry {
        host: f.host.trim().to_owned(),
        insecure_http: checked(&f.insecure_http),
        username: opt(&f.username),
        // Empty: keep the stored password.
        password: Some(f.password).filter(|p| !p.is_empty()),
        clear_credentials: checked(&f.clear_credentials),
        token_realm_hosts: Some(super::list(&f.token_realm_hosts)),
        all_projects: Some(checked(&f.all_projects)),
        projects: Some(super::list(&f.projects)),
    };
    let name = f.name.trim().to_owned();
    let r = registries::put_registry(&state, &p.caller, &name, req).await;
    after(r, "/admin/registries".into(), |n| {
        registries_page(&state, &p.caller, None, Some(n))
    })
    .await
}

pub async fn delete_registry(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<NoFields>,
) -> WebResult<Response> {
    let r = registries::delete_registry(&state, &p.caller, &name).await;
    after(r, "/admin/registries".into(), |n| {
        registries_page(&state, &p.caller, None, Some(n))
    })
    .await
}
