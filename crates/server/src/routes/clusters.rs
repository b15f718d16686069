use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_api::clusters::{Cluster, CreateCluster, Health, UpdateCluster};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::ops::clusters as op;
use crate::state::AppState;
use crate::wire::ToApi;

#[utoipa::path(get, path = "/api/v1/clusters", tag = "clusters", responses((status = 200, body = [Cluster])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Cluster>>> {
    Ok(Json(op::list(&state, &caller).await?.to_api()))
}

#[utoipa::path(post, path = "/api/v1/clusters", tag = "clusters", request_body = CreateCluster, responses((status = 201, body = Cluster), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateCluster>,
) -> ApiResult<(StatusCode, Json<Cluster>)> {
    Ok((
        StatusCode::CREATED,
        Json(op::create(&state, &caller, req).await?.to_api()),
    ))
}

#[utoipa::path(get, path = "/api/v1/clusters/{name}", tag = "clusters", params(("name" = String, Path)), responses((status = 200, body = Cluster)))]
pub async fn get(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<Json<Cluster>> {
    Ok(Json(op::get(&state, &caller, &name).await?.to_api()))
}

#[utoipa::path(patch, path = "/api/v1/clusters/{name}", tag = "clusters", params(("name" = String, Path)), request_body = UpdateCluster, responses((status = 200, body = Cluster)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<UpdateCluster>,
) -> ApiResult<Json<Cluster>> {
    Ok(Json(op::update(&state, &caller, &name, req).await?.to_api()))
}

#[utoipa::path(delete, path = "/api/v1/clusters/{name}", tag = "clusters", params(("name" = String, Path)), responses((status = 204)))]
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<StatusCode> {
    op::delete(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Connects to the cluster with the stored credentials and asks its version.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/health", tag = "clusters", params(("name" = String, Path)), responses((status = 200, body = Health)))]
pub async fn health(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Health>> {
    Ok(Json(op::health(&state, &caller, &name).await?))
}
