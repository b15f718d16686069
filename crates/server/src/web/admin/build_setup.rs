//! The build setup page, for admins: the stacks (edited as JSON), git
//! credentials, Jenkins executors and the address policy on one page
//! (secrets write-only). Their forms are in `stacks`, `git_credentials`,
//! `executors` and `address_policy`.

use axum::extract::State;
use axum::response::Html;
use minijinja::{context, Value};

use super::Notice;
use crate::auth::Caller;
use crate::ops::access;
use crate::state::AppState;
use crate::web::error::WebResult;
use crate::web::render::page as render;
use crate::web::session::Web;

pub(super) async fn setup_page(
    state: &AppState,
    caller: &Caller,
    stack_form: Value,
    notice: Option<Notice>,
) -> WebResult<Html<String>> {
    access::require_admin(caller)?;
    let stack_list = crate::ops::stacks::list(state).await?;
    let creds = crate::ops::git_credentials::list(state, caller).await?;
    let executors = crate::ops::executors::list(state, caller).await?;
    let policy = crate::ops::address_policy::get(state, caller).await?;
    // Each stack as the JSON its edit form holds.
    let stack_list: Vec<Value> = stack_list
        .iter()
        .map(|s| {
            let body = serde_json::json!({
                "description": s.description, "build_command": s.build_command,
                "artifact_paths": s.artifact_paths, "image_dir": s.image_dir,
                "entrypoint": s.entrypoint, "cmd": s.cmd, "env": s.env,
            });
            context! { name => s.name, description => s.description, json => serde_json::to_string_pretty(&body).unwrap_or_default() }
        })
        .collect();
    render(
        state,
        caller,
        "build_setup.html",
        context! { nav => "build_setup", stacks => stack_list, credentials => creds, executors => executors, stack_form => stack_form, notice => notice,
                   policy => context! { allowed => policy.allowed.join("\n"), denied => policy.denied.join("\n") } },
    )
    .await
}

pub async fn setup(State(state): State<AppState>, Web(caller): Web) -> WebResult<Html<String>> {
    setup_page(&state, &caller, Value::UNDEFINED, None).await
}
