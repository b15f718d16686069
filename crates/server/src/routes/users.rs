use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_api::users::{CreateUser, EndedSessions, UpdateUser, User};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::ops::users as op;
use crate::state::AppState;
use crate::wire::ToApi;

#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses((status = 200, body = [User])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(op::list(&state, &caller).await?.to_api()))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser, responses((status = 201, body = User), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    Ok((
        StatusCode::CREATED,
        Json(op::create(&state, &caller, req).await?.to_api()),
    ))
}

#[utoipa::path(get, path = "/api/v1/users/{username}", tag = "users", params(("username" = String, Path)), responses((status = 200, body = User)))]
pub async fn get(State(state): State<AppState>, caller: Caller, Path(username): Path<String>) -> ApiResult<Json<User>> {
    Ok(Json(op::get(&state, &caller, &username).await?.to_api()))
}

/// Admins change anyone; users change their own display name and password.
#[utoipa::path(patch, path = "/api/v1/users/{username}", tag = "users", params(("username" = String, Path)), request_body = UpdateUser, responses((status = 200, body = User)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
    ApiJson(req): ApiJson<UpdateUser>,
) -> ApiResult<Json<User>> {
    Ok(Json(op::update(&state, &caller, &username, req).await?.to_api()))
}

/// Ends all of a user's browser sessions now (admins).
#[utoipa::path(delete, path = "/api/v1/users/{username}/sessions", tag = "users", params(("username" = String, Path)),
    responses((status = 200, body = EndedSessions), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn end_sessions(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<EndedSessions>> {
    Ok(Json(EndedSessions {
        ended: op::end_sessions(&state, &caller, &username).await?,
    }))
}
