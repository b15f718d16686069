//! The page where a person approves a command-line login (`prism login
//! --sso`): the code from their terminal, the token's name and where the
//! request came from, and one button; the same operations as the API's
//! (`ops::cli_logins`).

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use minijinja::context;
use serde::Deserialize;

use super::error::WebResult;
use super::render::page as render;
use super::session::{Posted, Web};
use crate::auth::Caller;
use crate::ops::cli_logins as op;
use crate::ops::OpError;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct CodeQuery {
    #[serde(default)]
    code: String,
}

async fn page_for(state: &AppState, caller: &Caller, code: &str, approved: bool) -> WebResult<Html<String>> {
    let (request, unknown) = if code.trim().is_empty() || approved {
        (None, false)
    } else {
        match op::show(state, caller, code).await {
            Ok(r) => (Some(r), false),
            Err(OpError::NotFound { .. }) => (None, true),
            Err(e) => return Err(e.into()),
        }
    };
    render(
        state,
        caller,
        "cli_login.html",
        context! { nav => "tokens", request => request, unknown => unknown, approved => approved, code => code.trim() },
    )
    .await
}

/// The code form. A code in the address is not taken: the person types the
/// one their terminal shows (a link cannot bring someone else's login).
pub async fn page(State(state): State<AppState>, Web(caller): Web) -> WebResult<Html<String>> {
    page_for(&state, &caller, "", false).await
}

/// The typed code: the request it names, with the approve button.
pub async fn check(State(state): State<AppState>, p: Posted<CodeQuery>) -> WebResult<Html<String>> {
    page_for(&state, &p.caller, &p.form.code, false).await
}

pub async fn approve(State(state): State<AppState>, p: Posted<CodeQuery>) -> WebResult<Response> {
    match op::approve(&state, &p.caller, &p.form.code).await {
        Ok(()) => Ok(page_for(&state, &p.caller, &p.form.code, true).await?.into_response()),
        Err(OpError::NotFound { .. }) => Ok(page_for(&state, &p.caller, &p.form.code, false).await?.into_response()),
        Err(e) => Err(e.into()),
    }
}
