use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_api::environments::{CreateEnvironment, Environment, UpdateEnvironment};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::ops::environments as op;
use crate::state::AppState;
use crate::wire::ToApi;

#[utoipa::path(get, path = "/api/v1/environments", tag = "environments", responses((status = 200, body = [Environment])))]
pub async fn list(State(state): State<AppState>, _caller: Caller) -> ApiResult<Json<Vec<Environment>>> {
    Ok(Json(op::list(&state).await?.to_api()))
}

#[utoipa::path(get, path = "/api/v1/environments/{name}", tag = "environments", params(("name" = String, Path)), responses((status = 200, body = Environment)))]
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Environment>> {
    Ok(Json(op::get(&state, &name).await?.to_api()))
}

#[utoipa::path(post, path = "/api/v1/environments", tag = "environments", request_body = CreateEnvironment, responses((status = 201, body = Environment), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateEnvironment>,
) -> ApiResult<(StatusCode, Json<Environment>)> {
    Ok((
        StatusCode::CREATED,
        Json(op::create(&state, &caller, req).await?.to_api()),
    ))
}

#[utoipa::path(patch, path = "/api/v1/environments/{name}", tag = "environments", params(("name" = String, Path)), request_body = UpdateEnvironment, responses((status = 200, body = Environment)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<UpdateEnvironment>,
) -> ApiResult<Json<Environment>> {
    Ok(Json(op::update(&state, &caller, &name, req).await?.to_api()))
}

#[utoipa::path(delete, path = "/api/v1/environments/{name}", tag = "environments", params(("name" = String, Path)), responses((status = 204)))]
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<StatusCode> {
    op::delete(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
