//! An application's secrets page: its own secrets and those it inherits
//! from its project, each with scope, source, version and who changed it
//! (never a value); a form to set a value (a password field, never echoed
//! back) or to reference a Secret that exists in the namespace, and removal.
//! The same operations as the API's (`ops::app_secrets`), so the deploy-right
//! check per environment and the audit event are the same.

use axum::extract::{Path, State};
use axum::response::{Html, Response};
use minijinja::context;
use prism_api::app_secrets::{ExistingSecret, PutSecret};
use prism_domain::SecretDelivery;
use serde::Deserialize;

use super::admin::{after, opt, Notice};
use super::error::WebResult;
use super::render::page as render;
use super::session::{Posted, Web};
use crate::auth::Caller;
use crate::ops::app_secrets::{self, Owner};
use crate::ops::{access, OpError};
use crate::state::AppState;

async fn secrets_page(
    state: &AppState,
    caller: &Caller,
    name: &str,
    notice: Option<Notice>,
) -> WebResult<Html<String>> {
    let list = app_secrets::list_for_application(state, caller, name).await?;
    let mut c = state.store.conn().await?;
    let (app, roles) = access::application(&mut c, caller, name).await?;
    let envs = prism_store::environments::list(&mut c).await?;
    drop(c);
    // Offer only the environments the caller may deploy to (the operation checks again).
    let writable: Vec<&str> = envs
        .iter()
        .filter(|e| access::may_deploy(roles, e))
        .map(|e| e.name.as_str())
        .collect();
    let all_writable = writable.len() == envs.len();
    render(
        state,
        caller,
        "secrets.html",
        context! { nav => "apps", app => app.name, project => app.project, secrets => list,
        environments => writable, all_writable => all_writable, notice => notice },
    )
    .await
}

pub async fn page(
    State(state): State<AppState>,
    Web(caller): Web,
    Path(name): Path<String>,
) -> WebResult<Html<String>> {
    secrets_page(&state, &caller, &name, None).await
}

#[derive(Deserialize)]
pub struct SecretForm {
    #[serde(default)]
    name: String,
    /// Empty for every environment.
    #[serde(default)]
    environment: String,
    /// `value` or `existing`.
    #[serde(default)]
    source: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    existing_secret: String,
    #[serde(default)]
    existing_key: String,
    #[serde(default)]
    delivery: String,
}

pub async fn set(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<SecretForm>,
) -> WebResult<Response> {
    let f = &p.form;
    let attempt = async {
        let delivery = SecretDelivery::parse(f.delivery.trim())
            .ok_or_else(|| OpError::invalid("delivery", "choose a variable or a file"))?;
        let req = PutSecret {
            environment: opt(&f.environment),
            value: (f.source != "existing").then(|| f.value.clone()),
            existing: (f.source == "existing").then(|| ExistingSecret {
                secret: f.existing_secret.trim().to_owned(),
                key: f.existing_key.trim().to_owned(),
            }),
            delivery: Some(delivery),
        };
        app_secrets::put(&state, &p.caller, Owner::Application(&name), f.name.trim(), req).await
    };
    let r = attempt.await;
    after(r, format!("/apps/{name}/secrets"), |n| {
        secrets_page(&state, &p.caller, &name, Some(n))
    })
    .await
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    environment: String,
}

pub async fn delete(
    State(state): State<AppState>,
    Path((name, secret)): Path<(String, String)>,
    p: Posted<DeleteForm>,
) -> WebResult<Response> {
    let env = opt(&p.form.environment);
    let r = app_secrets::delete(&state, &p.caller, Owner::Application(&name), &secret, env.as_deref()).await;
    after(r, format!("/apps/{name}/secrets"), |n| {
        secrets_page(&state, &p.caller, &name, Some(n))
    })
    .await
}
