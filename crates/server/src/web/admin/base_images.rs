//! Base images with their lineage, for admins: registered from a JSON
//! description, their digests, runtime bases and applications still on an
//! older digest; built again, rebuild releases created.

use axum::extract::{Path, State};
use axum::response::{Html, Response};
use minijinja::{context, Value};
use prism_api::base_images::{CreateBase, UpdateBase};
use serde::Deserialize;

use super::{after, NoFields, Notice};
use crate::auth::Caller;
use crate::ops::base_images;
use crate::ops::{access, OpError};
use crate::state::AppState;
use crate::web::error::WebResult;
use crate::web::render::page as render;
use crate::web::session::{Posted, Web};

async fn base_images_page(
    state: &AppState,
    caller: &Caller,
    form: Option<String>,
    notice: Option<Notice>,
) -> WebResult<Html<String>> {
    access::require_admin(caller)?;
    let list = base_images::list(state).await?;
    render(
        state,
        caller,
        "base_images.html",
        context! { nav => "base_images", bases => list, base_form => form, notice => notice },
    )
    .await
}

pub async fn base_images(State(state): State<AppState>, Web(caller): Web) -> WebResult<Html<String>> {
    base_images_page(&state, &caller, None, None).await
}

#[derive(Deserialize)]
pub struct BaseForm {
    #[serde(default)]
    json: String,
}

/// Registers a base image from its JSON description (name, tier, parent,
/// registry, repository, tag, recipe); Prism then builds it.
pub async fn create_base(State(state): State<AppState>, p: Posted<BaseForm>) -> WebResult<Response> {
    let json = p.form.json;
    let r = match serde_json::from_str::<CreateBase>(&json) {
        Ok(req) => base_images::create(&state, &p.caller, req).await.map(|_| ()),
        Err(e) => Err(OpError::invalid("json", format!("not a base image description: {e}"))),
    };
    after(r, "/admin/base-images".into(), |n| {
        base_images_page(&state, &p.caller, Some(json.clone()), Some(n))
    })
    .await
}

async fn base_page(
    state: &AppState,
    caller: &Caller,
    name: String,
    rebuilt: Value,
    notice: Option<Notice>,
) -> WebResult<Html<String>> {
    // The detail the API shows: versions, outdated runtime bases and applications.
    let detail = base_images::get(state, caller, &name).await?;
    // Runtime bases built on it (current or not), from the one list.
    let all = base_images::list(state).await?;
    let children: Vec<_> = all
        .into_iter()
        .filter(|b| b.parent.as_deref() == Some(name.as_str()))
        .collect();
    render(
        state,
        caller,
        "base_image.html",
        context! { nav => "base_images", d => detail, children => children, rebuilt => rebuilt, notice => notice },
    )
    .await
}

pub async fn base_image(
    State(state): State<AppState>,
    Web(caller): Web,
    Path(name): Path<String>,
) -> WebResult<Html<String>> {
    base_page(&state, &caller, name, Value::UNDEFINED, None).await
}

/// "Build again": the same recipe on the parent's current digest.
pub async fn build_base(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<NoFields>,
) -> WebResult<Response> {
    let r = base_images::build(&state, &p.caller, &name, UpdateBase::default()).await;
    after(r, format!("/admin/base-images/{name}"), |n| {
        base_page(&state, &p.caller, name.clone(), Value::UNDEFINED, Some(n))
    })
    .await
}

/// "Create rebuild releases": shows the page again with the releases made.
pub async fn rebuild_applications(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<NoFields>,
) -> WebResult<Response> {
    use axum::response::IntoResponse;
    match base_images::rebuild_applications(&state, &p.caller, &name).await {
        Ok(made) => {
            let made = Value::from_serialize(&made);
            Ok(base_page(&state, &p.caller, name, made, None).await?.into_response())
        }
        Err(e) => {
            after(Err::<(), _>(e), String::new(), |n| {
                base_page(&state, &p.caller, name.clone(), Value::UNDEFINED, Some(n))
            })
            .await
        }
    }
}
