//! Git credentials' forms (on the build setup page): put (the password is
//! write-only) and delete.

use axum::extract::{Path, State};
use axum::response::Response;
use minijinja::Value;
use prism_api::credentials::PutGitCredential;
use serde::Deserialize;

use super::{after, NoFields};
use crate::ops::git_credentials;
use crate::state::AppState;
use crate::web::error::WebResult;
use crate::web::session::Posted;

#[derive(Deserialize)]
pub struct CredentialForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    host: String,
    /// Comma-separated project names.
    #[serde(default)]
    projects: String,
    all_projects: Option<String>,
}

pub async fn put_git_credential(State(state): State<AppState>, p: Posted<CredentialForm>) -> WebResult<Response> {
    let f = p.form;
    let req = PutGitCredential {
        username: f.username.trim().to_owned(),
        password: f.password,
        host: f.host.trim().to_owned(),
        all_projects: Some(super::checked(&f.all_projects)),
        projects: Some(super::list(&f.projects)),
    };
    let r = git_credentials::put_git_credential(&state, &p.caller, f.name.trim(), req).await;
    after(r, "/admin/build-setup".into(), |n| {
        super::build_setup::setup_page(&state, &p.caller, Value::UNDEFINED, Some(n))
    })
    .await
}

pub async fn delete_git_credential(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<NoFields>,
) -> WebResult<Response> {
    let r = git_credentials::delete_git_credential(&state, &p.caller, &name).await;
    after(r, "/admin/build-setup".into(), |n| {
        super::build_setup::setup_page(&state, &p.caller, Value::UNDEFINED, Some(n))
    })
    .await
}
