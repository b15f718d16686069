//! Jenkins executors' forms (on the build setup page): create (the token is
//! write-only) and delete.

use axum::extract::{Path, State};
use axum::response::Response;
use minijinja::Value;
use serde::Deserialize;

use super::{after, NoFields};
use crate::ops::executors::{self, CreateExecutor};
use crate::state::AppState;
use crate::web::error::WebResult;
use crate::web::session::Posted;

#[derive(Deserialize)]
pub struct ExecutorForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    job: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    token: String,
    /// Comma-separated project names.
    #[serde(default)]
    projects: String,
    all_projects: Option<String>,
}

pub async fn create_executor(State(state): State<AppState>, p: Posted<ExecutorForm>) -> WebResult<Response> {
    let f = p.form;
    let req = CreateExecutor {
        name: f.name.trim().to_owned(),
        kind: "jenkins".into(),
        url: f.url.trim().to_owned(),
        job: f.job.trim().to_owned(),
        username: f.username.trim().to_owned(),
        token: f.token,
        all_projects: Some(super::checked(&f.all_projects)),
        projects: Some(super::list(&f.projects)),
    };
    let r = executors::create_executor(&state, &p.caller, req).await;
    after(r, "/admin/build-setup".into(), |n| {
        super::build_setup::setup_page(&state, &p.caller, Value::UNDEFINED, Some(n))
    })
    .await
}

pub async fn delete_executor(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<NoFields>,
) -> WebResult<Response> {
    let r = executors::delete_executor(&state, &p.caller, &name).await;
    after(r, "/admin/build-setup".into(), |n| {
        super::build_setup::setup_page(&state, &p.caller, Value::UNDEFINED, Some(n))
    })
    .await
}
