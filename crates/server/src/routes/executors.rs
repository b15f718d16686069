use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_api::credentials::{CreateExecutor, ExecutorRecord};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::ops::executors as op;
use crate::state::AppState;
use crate::wire::ToApi;

#[utoipa::path(get, path = "/api/v1/executors", tag = "builds", responses((status = 200, body = [ExecutorRecord])))]
pub async fn list_executors(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<ExecutorRecord>>> {
    Ok(Json(op::list(&state, &caller).await?.to_api()))
}

#[utoipa::path(post, path = "/api/v1/executors", tag = "builds", request_body = CreateExecutor, responses((status = 201, body = ExecutorRecord)))]
pub async fn create_executor(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateExecutor>,
) -> ApiResult<(StatusCode, Json<ExecutorRecord>)> {
    Ok((
        StatusCode::CREATED,
        Json(op::create_executor(&state, &caller, req).await?.to_api()),
    ))
}

#[utoipa::path(delete, path = "/api/v1/executors/{name}", tag = "builds", params(("name" = String, Path)), responses((status = 204)))]
pub async fn delete_executor(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    op::delete_executor(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
