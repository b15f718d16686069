//! Every user's own API tokens: created (the secret shown once), listed, revoked.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::context;
use prism_api::tokens::CreateToken;
use serde::Deserialize;

use super::{opt, NoFields, Notice};
use crate::auth::Caller;
use crate::ops::tokens as op;
use crate::ops::OpError;
use crate::state::AppState;
use crate::web::error::WebResult;
use crate::web::render::page as render;
use crate::web::session::{Posted, Web};

async fn tokens_page(
    state: &AppState,
    caller: &Caller,
    secret: Option<String>,
    notice: Option<Notice>,
) -> WebResult<Html<String>> {
    let list = op::list(state, caller, false).await?;
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
    let req = CreateToken {
        name: opt(&p.form.name),
        expires_in_days: days,
    };
    match op::create(&state, &p.caller, req).await {
        Ok(t) => {
            let mut resp = tokens_page(&state, &p.caller, Some(t.secret), None)
                .await?
                .into_response();
            resp.headers_mut()
                .insert(axum::http::header::CACHE_CONTROL, "no-store".parse().expect("header"));
            Ok(resp)
        }
        Err(OpError::Invalid { field, message, .. }) => {
            let n = Notice { message, field };
            let html = tokens_page(&state, &p.caller, None, Some(n)).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<NoFields>,
) -> WebResult<Response> {
    let id: i64 = id
        .parse()
        .map_err(|_| OpError::invalid("id", "token id must be a number"))?;
    let _revoked = op::revoke(&state, &p.caller, id).await?;
    Ok(Redirect::to("/tokens").into_response())
}
