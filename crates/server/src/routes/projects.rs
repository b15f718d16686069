use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_api::projects::{CreateProject, Grant, Membership, Project, UpdateProject};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::ops::members;
use crate::ops::projects as op;
use crate::state::AppState;
use crate::wire::ToApi;

#[utoipa::path(get, path = "/api/v1/projects", tag = "projects", responses((status = 200, body = [Project])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Project>>> {
    Ok(Json(op::list(&state, &caller).await?.to_api()))
}

#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = CreateProject, responses((status = 201, body = Project), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateProject>,
) -> ApiResult<(StatusCode, Json<Project>)> {
    Ok((
        StatusCode::CREATED,
        Json(op::create(&state, &caller, req).await?.to_api()),
    ))
}

#[utoipa::path(get, path = "/api/v1/projects/{name}", tag = "projects", params(("name" = String, Path)), responses((status = 200, body = Project)))]
pub async fn get(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<Json<Project>> {
    Ok(Json(op::get(&state, &caller, &name).await?.to_api()))
}

#[utoipa::path(patch, path = "/api/v1/projects/{name}", tag = "projects", params(("name" = String, Path)), request_body = UpdateProject, responses((status = 200, body = Project)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<UpdateProject>,
) -> ApiResult<Json<Project>> {
    Ok(Json(op::update(&state, &caller, &name, req).await?.to_api()))
}

#[utoipa::path(delete, path = "/api/v1/projects/{name}", tag = "projects", params(("name" = String, Path)), responses((status = 204)))]
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<StatusCode> {
    op::delete(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/projects/{name}/members", tag = "projects", params(("name" = String, Path)), responses((status = 200, body = [Membership])))]
pub async fn members(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<Membership>>> {
    Ok(Json(members::list(&state, &caller, &name).await?.to_api()))
}

#[utoipa::path(post, path = "/api/v1/projects/{name}/members", tag = "projects", params(("name" = String, Path)), request_body = Grant, responses((status = 201, body = [Membership])))]
pub async fn grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<Grant>,
) -> ApiResult<(StatusCode, Json<Vec<Membership>>)> {
    Ok((
        StatusCode::CREATED,
        Json(members::grant(&state, &caller, &name, req).await?.to_api()),
    ))
}

#[utoipa::path(delete, path = "/api/v1/projects/{name}/members/{username}/{role}", tag = "projects",
    params(("name" = String, Path), ("username" = String, Path), ("role" = String, Path)), responses((status = 204)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, username, role)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    members::revoke(&state, &caller, &name, &username, &role).await?;
    Ok(StatusCode::NO_CONTENT)
}
