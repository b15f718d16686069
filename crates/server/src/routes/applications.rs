use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_api::applications::{Application, CreateApplication, EnvSettings, PutSettings, UpdateApplication};
use serde::Deserialize;

use super::ApiQuery;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::ops::applications as op;
use crate::state::AppState;
use crate::wire::ToApi;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AppQuery {
    pub project: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/applications", tag = "applications", params(AppQuery), responses((status = 200, body = [Application])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AppQuery>,
) -> ApiResult<Json<Vec<Application>>> {
    Ok(Json(op::list(&state, &caller, q.project.as_deref()).await?.to_api()))
}

#[utoipa::path(post, path = "/api/v1/applications", tag = "applications", request_body = CreateApplication, responses((status = 201, body = Application), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateApplication>,
) -> ApiResult<(StatusCode, Json<Application>)> {
    Ok((
        StatusCode::CREATED,
        Json(op::create(&state, &caller, req).await?.to_api()),
    ))
}

#[utoipa::path(get, path = "/api/v1/applications/{name}", tag = "applications", params(("name" = String, Path)), responses((status = 200, body = Application)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Application>> {
    Ok(Json(op::get(&state, &caller, &name).await?.0.to_api()))
}

#[utoipa::path(patch, path = "/api/v1/applications/{name}", tag = "applications", params(("name" = String, Path)), request_body = UpdateApplication, responses((status = 200, body = Application)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<UpdateApplication>,
) -> ApiResult<Json<Application>> {
    Ok(Json(op::update(&state, &caller, &name, req).await?.to_api()))
}

#[utoipa::path(delete, path = "/api/v1/applications/{name}", tag = "applications", params(("name" = String, Path)), responses((status = 204)))]
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<StatusCode> {
    op::delete(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/applications/{name}/settings", tag = "applications", params(("name" = String, Path)), responses((status = 200, body = [EnvSettings])))]
pub async fn settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<EnvSettings>>> {
    Ok(Json(op::settings(&state, &caller, &name).await?.to_api()))
}

#[utoipa::path(put, path = "/api/v1/applications/{name}/settings/{env}", tag = "applications",
    params(("name" = String, Path), ("env" = String, Path)), request_body = PutSettings, responses((status = 200, body = [EnvSettings]), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn put_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, env)): Path<(String, String)>,
    ApiJson(req): ApiJson<PutSettings>,
) -> ApiResult<Json<Vec<EnvSettings>>> {
    Ok(Json(
        op::put_settings(&state, &caller, &name, &env, req).await?.to_api(),
    ))
}
