//! Application and project secrets (issue 19): write-only values and
//! references to existing Secrets, under `/api/v1/applications/{name}/secrets`
//! and `/api/v1/projects/{name}/secrets`. No answer ever holds a value.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_api::app_secrets::{AppSecret, PutSecret};

use super::ApiQuery;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::ops::app_secrets::{self as op, Owner, SecretQuery};
use crate::state::AppState;
use crate::wire::ToApi;

#[utoipa::path(get, path = "/api/v1/applications/{name}/secrets", tag = "secrets",
    params(("name" = String, Path)),
    responses((status = 200, body = Vec<AppSecret>, description = "the application's and its project's secrets, without values"), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn list_for_application(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<AppSecret>>> {
    Ok(Json(op::list_for_application(&state, &caller, &name).await?.to_api()))
}

#[utoipa::path(put, path = "/api/v1/applications/{name}/secrets/{secret}", tag = "secrets",
    params(("name" = String, Path), ("secret" = String, Path)), request_body = PutSecret,
    responses((status = 200, body = AppSecret), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn put_for_application(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, secret)): Path<(String, String)>,
    ApiJson(req): ApiJson<PutSecret>,
) -> ApiResult<Json<AppSecret>> {
    Ok(Json(
        op::put(&state, &caller, Owner::Application(&name), &secret, req)
            .await?
            .to_api(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/applications/{name}/secrets/{secret}", tag = "secrets",
    params(("name" = String, Path), ("secret" = String, Path), SecretQuery),
    responses((status = 204), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn delete_for_application(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, secret)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<SecretQuery>,
) -> ApiResult<StatusCode> {
    op::delete(
        &state,
        &caller,
        Owner::Application(&name),
        &secret,
        q.environment.as_deref(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/projects/{name}/secrets", tag = "secrets",
    params(("name" = String, Path)),
    responses((status = 200, body = Vec<AppSecret>, description = "the project's secrets, without values"), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn list_for_project(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<AppSecret>>> {
    Ok(Json(op::list_for_project(&state, &caller, &name).await?.to_api()))
}

#[utoipa::path(put, path = "/api/v1/projects/{name}/secrets/{secret}", tag = "secrets",
    params(("name" = String, Path), ("secret" = String, Path)), request_body = PutSecret,
    responses((status = 200, body = AppSecret), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn put_for_project(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, secret)): Path<(String, String)>,
    ApiJson(req): ApiJson<PutSecret>,
) -> ApiResult<Json<AppSecret>> {
    Ok(Json(
        op::put(&state, &caller, Owner::Project(&name), &secret, req)
            .await?
            .to_api(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/projects/{name}/secrets/{secret}", tag = "secrets",
    params(("name" = String, Path), ("secret" = String, Path), SecretQuery),
    responses((status = 204), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn delete_for_project(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, secret)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<SecretQuery>,
) -> ApiResult<StatusCode> {
    op::delete(
        &state,
        &caller,
        Owner::Project(&name),
        &secret,
        q.environment.as_deref(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
