//! What builds need, for admins: registries (passwords are write-only),
//! base images with their lineage (digests, runtime bases and applications
//! still on an older digest; build again, create rebuild releases), and on
//! one page the stacks (edited as JSON), git credentials and Jenkins
//! executors (secrets write-only). Every change calls the API's handler.

use axum::extract::{Path, State};
use axum::response::{Html, Response};
use minijinja::{context, Value};
use prism_store::{base_images, credentials, stacks};
use serde::Deserialize;

use super::{after, checked, opt, NoFields, Notice};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{ApiJson, OptionalJson};
use crate::web::error::WebResult;
use crate::web::render::page as render;
use crate::web::session::{PageQuery, Posted, Web};

// ---- registries

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
    caller.require_admin()?;
    let list = credentials::list_registries(&mut *state.store.conn().await?).await?;
    // The form filled in for the registry being edited (never its password).
    let editing = edit.and_then(|n| list.iter().find(|r| r.name == n)).map(|r| {
        context! { name => r.name, host => r.host, insecure_http => r.insecure_http != 0, username => r.username }
    });
    let list: Vec<Value> = list
        .iter()
        .map(|r| context! { name => r.name, host => r.host, insecure_http => r.insecure_http != 0, username => r.username, has_password => r.password_enc.is_some(), updated_at => r.updated_at })
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
}

pub async fn put_registry(State(state): State<AppState>, p: Posted<RegistryForm>) -> WebResult<Response> {
    let f = p.form;
    let req = crate::routes::build_setup::PutRegistry {
        host: f.host.trim().to_owned(),
        insecure_http: checked(&f.insecure_http),
        username: opt(&f.username),
        // Empty: keep the stored password.
        password: Some(f.password).filter(|p| !p.is_empty()),
        clear_credentials: checked(&f.clear_credentials),
    };
    let name = f.name.trim().to_owned();
    let r = crate::routes::build_setup::put_registry(State(state.clone()), p.caller.clone(), Path(name), ApiJson(req))
        .await
        .map(|_| ());
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
    let r = crate::routes::build_setup::delete_registry(State(state.clone()), p.caller.clone(), Path(name))
        .await
        .map(|_| ());
    after(r, "/admin/registries".into(), |n| {
        registries_page(&state, &p.caller, None, Some(n))
    })
    .await
}

// ---- base images

async fn base_images_page(
    state: &AppState,
    caller: &Caller,
    form: Option<String>,
    notice: Option<Notice>,
) -> WebResult<Html<String>> {
    caller.require_admin()?;
    let list = base_images::list(&mut *state.store.conn().await?).await?;
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
    let r = match serde_json::from_str::<crate::routes::base_images::CreateBase>(&json) {
        Ok(req) => crate::routes::base_images::create(State(state.clone()), p.caller.clone(), ApiJson(req))
            .await
            .map(|_| ()),
        Err(e) => Err(ApiError::bad_request(
            "json",
            format!("not a base image description: {e}"),
        )),
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
    // The API's detail: versions, outdated runtime bases and applications.
    let detail = crate::routes::base_images::get(State(state.clone()), caller.clone(), Path(name.clone()))
        .await?
        .0;
    // Runtime bases built on it (current or not), from the one list.
    let all = base_images::list(&mut *state.store.conn().await?).await?;
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
    let r = crate::routes::base_images::build(
        State(state.clone()),
        p.caller.clone(),
        Path(name.clone()),
        OptionalJson(None),
    )
    .await
    .map(|_| ());
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
    match crate::routes::base_images::rebuild_applications(State(state.clone()), p.caller.clone(), Path(name.clone()))
        .await
    {
        Ok((_, made)) => {
            let made = Value::from_serialize(&made.0);
            Ok(base_page(&state, &p.caller, name, made, None).await?.into_response())
        }
        Err(e) => {
            after(Err(e), String::new(), |n| {
                base_page(&state, &p.caller, name.clone(), Value::UNDEFINED, Some(n))
            })
            .await
        }
    }
}

// ---- stacks, git credentials, executors

async fn setup_page(
    state: &AppState,
    caller: &Caller,
    stack_form: Value,
    notice: Option<Notice>,
) -> WebResult<Html<String>> {
    caller.require_admin()?;
    let mut c = state.store.conn().await?;
    let stack_list = stacks::list(&mut c).await?;
    let creds = credentials::list_git_credentials(&mut c).await?;
    let executors = credentials::list_executors(&mut c).await?;
    drop(c);
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
        context! { nav => "build_setup", stacks => stack_list, credentials => creds, executors => executors, stack_form => stack_form, notice => notice },
    )
    .await
}

pub async fn setup(State(state): State<AppState>, Web(caller): Web) -> WebResult<Html<String>> {
    setup_page(&state, &caller, Value::UNDEFINED, None).await
}

#[derive(Deserialize)]
pub struct StackForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    json: String,
}

pub async fn put_stack(State(state): State<AppState>, p: Posted<StackForm>) -> WebResult<Response> {
    let f = p.form;
    let again = context! { name => f.name, json => f.json };
    let r = match serde_json::from_str::<crate::routes::build_setup::PutStack>(&f.json) {
        Ok(req) => crate::routes::build_setup::put_stack(
            State(state.clone()),
            p.caller.clone(),
            Path(f.name.trim().to_owned()),
            ApiJson(req),
        )
        .await
        .map(|_| ()),
        Err(e) => Err(ApiError::bad_request(
            "json",
            format!("the stack is not valid JSON for a stack: {e}"),
        )),
    };
    after(r, "/admin/build-setup".into(), |n| {
        setup_page(&state, &p.caller, again, Some(n))
    })
    .await
}

#[derive(Deserialize)]
pub struct CredentialForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub async fn put_git_credential(State(state): State<AppState>, p: Posted<CredentialForm>) -> WebResult<Response> {
    let f = p.form;
    let req = crate::routes::build_setup::PutGitCredential {
        username: f.username.trim().to_owned(),
        password: f.password,
    };
    let r = crate::routes::build_setup::put_git_credential(
        State(state.clone()),
        p.caller.clone(),
        Path(f.name.trim().to_owned()),
        ApiJson(req),
    )
    .await
    .map(|_| ());
    after(r, "/admin/build-setup".into(), |n| {
        setup_page(&state, &p.caller, Value::UNDEFINED, Some(n))
    })
    .await
}

pub async fn delete_git_credential(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<NoFields>,
) -> WebResult<Response> {
    let r = crate::routes::build_setup::delete_git_credential(State(state.clone()), p.caller.clone(), Path(name))
        .await
        .map(|_| ());
    after(r, "/admin/build-setup".into(), |n| {
        setup_page(&state, &p.caller, Value::UNDEFINED, Some(n))
    })
    .await
}

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
}

pub async fn create_executor(State(state): State<AppState>, p: Posted<ExecutorForm>) -> WebResult<Response> {
    let f = p.form;
    let req = crate::routes::build_setup::CreateExecutor {
        name: f.name.trim().to_owned(),
        kind: "jenkins".into(),
        url: f.url.trim().to_owned(),
        job: f.job.trim().to_owned(),
        username: f.username.trim().to_owned(),
        token: f.token,
    };
    let r = crate::routes::build_setup::create_executor(State(state.clone()), p.caller.clone(), ApiJson(req))
        .await
        .map(|_| ());
    after(r, "/admin/build-setup".into(), |n| {
        setup_page(&state, &p.caller, Value::UNDEFINED, Some(n))
    })
    .await
}

pub async fn delete_executor(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<NoFields>,
) -> WebResult<Response> {
    let r = crate::routes::build_setup::delete_executor(State(state.clone()), p.caller.clone(), Path(name))
        .await
        .map(|_| ());
    after(r, "/admin/build-setup".into(), |n| {
        setup_page(&state, &p.caller, Value::UNDEFINED, Some(n))
    })
    .await
}
