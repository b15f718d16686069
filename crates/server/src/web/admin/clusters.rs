//! Clusters: register one, check that it answers.

use axum::extract::{Path, State};
use axum::response::{Html, Response};
use minijinja::{context, Value};
use prism_api::clusters::CreateCluster;
use serde::Deserialize;

use super::{after, checked, opt, NoFields, Notice};
use crate::auth::Caller;
use crate::ops::clusters as op;
use crate::state::AppState;
use crate::web::error::WebResult;
use crate::web::render::page as render;
use crate::web::session::{Posted, Web};

async fn clusters_page(
    state: &AppState,
    caller: &Caller,
    health: Value,
    notice: Option<Notice>,
) -> WebResult<Html<String>> {
    let list = op::list(state, caller).await?;
    let list: Vec<Value> = list
        .iter()
        .map(|c| context! { name => c.name, api_url => c.api_url, has_token => c.has_token(), insecure => c.insecure_skip_tls_verify != 0, updated_at => c.updated_at })
        .collect();
    render(
        state,
        caller,
        "clusters.html",
        context! { nav => "clusters", clusters => list, health => health, notice => notice },
    )
    .await
}

pub async fn clusters(State(state): State<AppState>, Web(caller): Web) -> WebResult<Html<String>> {
    clusters_page(&state, &caller, Value::UNDEFINED, None).await
}

#[derive(Deserialize)]
pub struct ClusterForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    api_url: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    ca_cert: String,
    insecure_skip_tls_verify: Option<String>,
    #[serde(default)]
    kubeconfig: String,
}

pub async fn create_cluster(State(state): State<AppState>, p: Posted<ClusterForm>) -> WebResult<Response> {
    let f = p.form;
    let req = CreateCluster {
        name: f.name.trim().to_owned(),
        api_url: opt(&f.api_url),
        ca_cert: opt(&f.ca_cert),
        token: opt(&f.token),
        insecure_skip_tls_verify: checked(&f.insecure_skip_tls_verify),
        kubeconfig: opt(&f.kubeconfig),
        context: None,
    };
    let r = op::create(&state, &p.caller, req).await;
    after(r, "/admin/clusters".into(), |n| {
        clusters_page(&state, &p.caller, Value::UNDEFINED, Some(n))
    })
    .await
}

/// Connects to the cluster now and shows what it answered.
pub async fn cluster_health(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<NoFields>,
) -> WebResult<Html<String>> {
    let h = op::health(&state, &p.caller, &name).await?;
    let health = context! { cluster => name, ok => h.ok, version => h.version, error => h.error };
    clusters_page(&state, &p.caller, health, None).await
}
