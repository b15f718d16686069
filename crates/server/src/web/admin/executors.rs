//! Executors' forms (on the build setup page): create a Jenkins executor
//! (the token is write-only) or a Kubernetes build runner, and delete.

use axum::extract::{Path, State};
use axum::response::Response;
use minijinja::Value;
use prism_api::credentials::CreateExecutor;
use serde::Deserialize;

use super::{after, NoFields};
use crate::ops::executors;
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
    /// `kubernetes` for the runner form; empty for Jenkins.
    #[serde(default)]
    kind: String,
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    namespace: String,
    /// `key=value` pairs separated by commas.
    #[serde(default)]
    node_selector: String,
    #[serde(default)]
    workspace_size: String,
    #[serde(default)]
    memory_limit: String,
    #[serde(default)]
    ttl_seconds: String,
    #[serde(default)]
    host_network: Option<String>,
    #[serde(default)]
    max_concurrent_builds: String,
    #[serde(default)]
    cache_size: String,
    #[serde(default)]
    cache_storage_class: String,
    /// Empty: the default (ReadWriteOnce).
    #[serde(default)]
    cache_access_mode: String,
}

/// The runner form as the API's `kubernetes` object (checked by the operation).
fn runner_settings(f: &ExecutorForm) -> serde_json::Value {
    let mut v = serde_json::json!({"cluster": f.cluster.trim(), "namespace": f.namespace.trim()});
    let selector: serde_json::Map<String, serde_json::Value> = f
        .node_selector
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, val)) => (k.trim().to_owned(), serde_json::json!(val.trim())),
            None => (p.to_owned(), serde_json::json!("")),
        })
        .collect();
    if !selector.is_empty() {
        v["node_selector"] = selector.into();
    }
    for (key, raw) in [
        ("workspace_size", &f.workspace_size),
        ("memory_limit", &f.memory_limit),
        ("cache_size", &f.cache_size),
        ("cache_storage_class", &f.cache_storage_class),
        ("cache_access_mode", &f.cache_access_mode),
    ] {
        if !raw.trim().is_empty() {
            v[key] = raw.trim().into();
        }
    }
    let ttl = f.ttl_seconds.trim();
    if !ttl.is_empty() {
        // Not a number: passed as text, refused by the operation naming the field.
        v["ttl_seconds"] = ttl.parse::<i64>().map(Into::into).unwrap_or_else(|_| ttl.into());
    }
    if f.host_network.is_some() {
        v["host_network"] = true.into();
    }
    let max = f.max_concurrent_builds.trim();
    if !max.is_empty() {
        v["max_concurrent_builds"] = max.parse::<i64>().map(Into::into).unwrap_or_else(|_| max.into());
    }
    v
}

pub async fn create_executor(State(state): State<AppState>, p: Posted<ExecutorForm>) -> WebResult<Response> {
    let f = p.form;
    let req = if f.kind == "kubernetes" {
        CreateExecutor {
            name: f.name.trim().to_owned(),
            kind: f.kind.clone(),
            url: String::new(),
            job: String::new(),
            username: String::new(),
            token: String::new(),
            kubernetes: Some(runner_settings(&f)),
            all_projects: Some(super::checked(&f.all_projects)),
            projects: Some(super::list(&f.projects)),
        }
    } else {
        CreateExecutor {
            name: f.name.trim().to_owned(),
            kind: "jenkins".into(),
            url: f.url.trim().to_owned(),
            job: f.job.trim().to_owned(),
            username: f.username.trim().to_owned(),
            token: f.token,
            kubernetes: None,
            all_projects: Some(super::checked(&f.all_projects)),
            projects: Some(super::list(&f.projects)),
        }
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
