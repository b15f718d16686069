//! The webhook panel of an application's page (and a project's webhook page): create (forge, branch and
//! tag rules, build or not), change the rules, rotate the secret, delete.
//! A secret just set is shown on the page that answers the post, once.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::context;
use prism_api::webhooks::{CreateWebhook, RotateWebhook, UpdateWebhook};
use prism_webhooks::{Forge, ReleaseRules};
use serde::Deserialize;

use super::apps::{app_page_with, FormError};
use super::error::WebResult;
use super::render::page as render;
use super::session::{Posted, Web};
use crate::ops::project_webhooks as project_op;
use crate::ops::webhooks as op;
use crate::ops::OpError;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct WebhookForm {
    #[serde(default)]
    forge: String,
    /// Patterns separated by commas, spaces or lines.
    #[serde(default)]
    branches: String,
    #[serde(default)]
    tags: String,
    /// A checkbox: present when ticked.
    build: Option<String>,
    enabled: Option<String>,
    #[serde(default)]
    secret: String,
}

fn patterns(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect()
}

fn forge(raw: &str) -> Result<Forge, OpError> {
    Forge::parse(raw.trim()).ok_or_else(|| OpError::invalid("forge", "choose github, gitea or gitlab"))
}

impl WebhookForm {
    fn rules(&self) -> ReleaseRules {
        ReleaseRules {
            branches: patterns(&self.branches),
            tags: patterns(&self.tags),
            build: self.build.is_some(),
        }
    }

    fn values(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("forge".to_owned(), self.forge.clone()),
            ("branches".to_owned(), self.branches.clone()),
            ("tags".to_owned(), self.tags.clone()),
        ])
    }
}

/// The page again with the secret, never cached.
async fn with_secret(state: &AppState, p: &Posted<WebhookForm>, name: &str, secret: String) -> WebResult<Response> {
    let html = app_page_with(state, &p.caller, name, None, None, Some(secret)).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], html).into_response())
}

/// A refusal the person can fix: the page again, the field marked.
async fn refused(state: &AppState, p: &Posted<WebhookForm>, name: &str, e: OpError) -> WebResult<Response> {
    match e {
        OpError::Invalid { field, message, .. } => {
            let error = FormError {
                form: "webhook".into(),
                field,
                message,
                values: p.form.values(),
            };
            let html = app_page_with(state, &p.caller, name, None, Some(error), None).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        e => Err(e.into()),
    }
}

pub async fn create(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<WebhookForm>,
) -> WebResult<Response> {
    let attempt = async {
        let req = CreateWebhook {
            forge: forge(&p.form.forge)?,
            release_rules: p.form.rules(),
            secret: Some(p.form.secret.trim().to_owned()).filter(|s| !s.is_empty()),
            enabled: true,
        };
        op::create(&state, &p.caller, &name, req).await
    };
    match attempt.await {
        Ok(done) => with_secret(&state, &p, &name, done.secret).await,
        Err(e) => refused(&state, &p, &name, e).await,
    }
}

pub async fn update(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<WebhookForm>,
) -> WebResult<Response> {
    let attempt = async {
        let req = UpdateWebhook {
            forge: Some(forge(&p.form.forge)?),
            release_rules: Some(p.form.rules()),
            enabled: Some(p.form.enabled.is_some()),
        };
        op::update(&state, &p.caller, &name, req).await
    };
    match attempt.await {
        Ok(_) => Ok(Redirect::to(&format!("/apps/{name}#webhook")).into_response()),
        Err(e) => refused(&state, &p, &name, e).await,
    }
}

pub async fn rotate(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<WebhookForm>,
) -> WebResult<Response> {
    let req = RotateWebhook {
        secret: Some(p.form.secret.trim().to_owned()).filter(|s| !s.is_empty()),
    };
    match op::rotate(&state, &p.caller, &name, req).await {
        Ok(done) => with_secret(&state, &p, &name, done.secret).await,
        Err(e) => refused(&state, &p, &name, e).await,
    }
}

pub async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<WebhookForm>,
) -> WebResult<Response> {
    op::delete(&state, &p.caller, &name).await?;
    Ok(Redirect::to(&format!("/apps/{name}#webhook")).into_response())
}

// A project's webhook: its own page, `/projects/{name}/webhook`, with the
// same panel; the same operations as the API's (`ops::project_webhooks`).

/// The project's webhook page; `secret` is one just set, shown on this answer only.
async fn project_page(
    state: &AppState,
    caller: &crate::auth::Caller,
    name: &str,
    error: Option<FormError>,
    secret: Option<String>,
) -> WebResult<Html<String>> {
    let (webhook, applications) = project_op::for_page(state, caller, name).await?;
    render(
        state,
        caller,
        "project_webhook.html",
        context! {
            nav => "apps",
            project => name,
            webhook => webhook,
            applications => applications,
            webhook_secret => secret,
            webhook_base => format!("/projects/{name}/webhook"),
            forges => ["github", "gitea", "gitlab"],
            error => error,
        },
    )
    .await
}

pub async fn project(
    State(state): State<AppState>,
    Web(caller): Web,
    Path(name): Path<String>,
) -> WebResult<Html<String>> {
    project_page(&state, &caller, &name, None, None).await
}

async fn project_answer(
    state: &AppState,
    p: &Posted<WebhookForm>,
    name: &str,
    r: Result<Option<String>, OpError>,
) -> WebResult<Response> {
    match r {
        Ok(Some(secret)) => {
            let html = project_page(state, &p.caller, name, None, Some(secret)).await?;
            Ok(([(header::CACHE_CONTROL, "no-store")], html).into_response())
        }
        Ok(None) => Ok(Redirect::to(&format!("/projects/{name}/webhook")).into_response()),
        Err(OpError::Invalid { field, message, .. }) => {
            let error = FormError {
                form: "webhook".into(),
                field,
                message,
                values: p.form.values(),
            };
            let html = project_page(state, &p.caller, name, Some(error), None).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn project_create(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<WebhookForm>,
) -> WebResult<Response> {
    let attempt = async {
        let req = CreateWebhook {
            forge: forge(&p.form.forge)?,
            release_rules: p.form.rules(),
            secret: Some(p.form.secret.trim().to_owned()).filter(|s| !s.is_empty()),
            enabled: true,
        };
        Ok(Some(project_op::create(&state, &p.caller, &name, req).await?.secret))
    };
    let r = attempt.await;
    project_answer(&state, &p, &name, r).await
}

pub async fn project_update(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<WebhookForm>,
) -> WebResult<Response> {
    let attempt = async {
        let req = UpdateWebhook {
            forge: Some(forge(&p.form.forge)?),
            release_rules: Some(p.form.rules()),
            enabled: Some(p.form.enabled.is_some()),
        };
        project_op::update(&state, &p.caller, &name, req).await.map(|_| None)
    };
    let r = attempt.await;
    project_answer(&state, &p, &name, r).await
}

pub async fn project_rotate(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<WebhookForm>,
) -> WebResult<Response> {
    let req = RotateWebhook {
        secret: Some(p.form.secret.trim().to_owned()).filter(|s| !s.is_empty()),
    };
    let r = project_op::rotate(&state, &p.caller, &name, req)
        .await
        .map(|d| Some(d.secret));
    project_answer(&state, &p, &name, r).await
}

pub async fn project_delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<WebhookForm>,
) -> WebResult<Response> {
    let r = project_op::delete(&state, &p.caller, &name).await.map(|_| None);
    project_answer(&state, &p, &name, r).await
}
