use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_api::stacks::{PutStack, Stack};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::ops::stacks as op;
use crate::state::AppState;
use crate::wire::ToApi;

#[utoipa::path(get, path = "/api/v1/stacks", tag = "builds", responses((status = 200, body = [Stack])))]
pub async fn list_stacks(State(state): State<AppState>, _caller: Caller) -> ApiResult<Json<Vec<Stack>>> {
    Ok(Json(op::list(&state).await?.to_api()))
}

/// Creates or replaces a stack preset.
#[utoipa::path(put, path = "/api/v1/stacks/{name}", tag = "builds", params(("name" = String, Path)), request_body = PutStack, responses((status = 200, body = Stack)))]
pub async fn put_stack(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<PutStack>,
) -> ApiResult<Json<Stack>> {
    Ok(Json(op::put_stack(&state, &caller, &name, req).await?.to_api()))
}

#[utoipa::path(delete, path = "/api/v1/stacks/{name}", tag = "builds", params(("name" = String, Path)), responses((status = 204)))]
pub async fn delete_stack(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    op::delete_stack(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
