//! Progressive delivery over HTTP: an application's rollout strategy per
//! environment, steering a running rollout, a cluster's Prometheus.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_api::deploys::Deploy;
use prism_api::rollouts::{PrometheusRequest, PrometheusSetting, RolloutCommandRequest, RolloutSetting};
use prism_kube::progressive::strategy::Strategy;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::{ApiJson, OptionalJson};
use crate::ops::rollouts as op;
use crate::state::AppState;
use crate::wire::ToApi;

/// How releases of an application roll out in an environment (rolling unless chosen).
#[utoipa::path(get, path = "/api/v1/applications/{name}/environments/{env}/rollout", tag = "deploys",
    params(("name" = String, Path), ("env" = String, Path)),
    responses((status = 200, body = RolloutSetting), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_strategy(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, env)): Path<(String, String)>,
) -> ApiResult<Json<RolloutSetting>> {
    Ok(Json(op::get_strategy(&state, &caller, &name, &env).await?))
}

/// Chooses `rolling`, `canary` or `blue-green` (the project's operators).
#[utoipa::path(put, path = "/api/v1/applications/{name}/environments/{env}/rollout", tag = "deploys",
    params(("name" = String, Path), ("env" = String, Path)), request_body = Strategy,
    responses((status = 200, body = RolloutSetting), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn put_strategy(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, env)): Path<(String, String)>,
    ApiJson(strategy): ApiJson<Strategy>,
) -> ApiResult<Json<RolloutSetting>> {
    Ok(Json(op::set_strategy(&state, &caller, &name, &env, strategy).await?))
}

/// Promote, pause, resume or abort a running canary or blue-green rollout
/// (the environment's deploy roles).
#[utoipa::path(post, path = "/api/v1/deploys/{id}/rollout/{action}", tag = "deploys",
    params(("id" = String, Path), ("action" = String, Path, description = "promote, pause, resume or abort")),
    request_body = RolloutCommandRequest,
    responses((status = 202, body = Deploy), (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn command(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, action)): Path<(String, String)>,
    OptionalJson(body): OptionalJson<RolloutCommandRequest>,
) -> ApiResult<(StatusCode, Json<Deploy>)> {
    let body = body.unwrap_or(RolloutCommandRequest { reason: String::new() });
    Ok((
        StatusCode::ACCEPTED,
        Json(op::command(&state, &caller, &id, &action, body).await?.to_api()),
    ))
}

/// A cluster's Prometheus for metric gates (admins; credentials never returned).
#[utoipa::path(get, path = "/api/v1/clusters/{name}/prometheus", tag = "clusters",
    params(("name" = String, Path)), responses((status = 200, body = PrometheusSetting), (status = 403, body = crate::error::ErrorBody)))]
pub async fn get_prometheus(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<PrometheusSetting>> {
    Ok(Json(op::get_prometheus(&state, &caller, &name).await?))
}

#[utoipa::path(put, path = "/api/v1/clusters/{name}/prometheus", tag = "clusters",
    params(("name" = String, Path)), request_body = PrometheusRequest,
    responses((status = 200, body = PrometheusSetting), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn put_prometheus(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<PrometheusRequest>,
) -> ApiResult<Json<PrometheusSetting>> {
    Ok(Json(op::set_prometheus(&state, &caller, &name, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/clusters/{name}/prometheus", tag = "clusters",
    params(("name" = String, Path)), responses((status = 204), (status = 403, body = crate::error::ErrorBody)))]
pub async fn delete_prometheus(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    op::clear_prometheus(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
