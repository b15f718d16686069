use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_api::credentials::{PutRegistry, Registry};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::ops::registries as op;
use crate::state::AppState;
use crate::wire::ToApi;

#[utoipa::path(get, path = "/api/v1/registries", tag = "builds", responses((status = 200, body = [Registry])))]
pub async fn list_registries(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Registry>>> {
    Ok(Json(op::list(&state, &caller).await?.to_api()))
}

/// Creates or updates a registry.
#[utoipa::path(put, path = "/api/v1/registries/{name}", tag = "builds", params(("name" = String, Path)), request_body = PutRegistry, responses((status = 200, body = Registry)))]
pub async fn put_registry(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<PutRegistry>,
) -> ApiResult<Json<Registry>> {
    Ok(Json(op::put_registry(&state, &caller, &name, req).await?.to_api()))
}

#[utoipa::path(delete, path = "/api/v1/registries/{name}", tag = "builds", params(("name" = String, Path)), responses((status = 204)))]
pub async fn delete_registry(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    op::delete_registry(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
