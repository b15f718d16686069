use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_api::board::{BoardCell, HoldRequest};
use prism_api::releases::{ActRequest, CreateRelease, CreatedRelease, Release, ReleasePage, Transition};
use prism_domain::ReleaseId;
use serde::Deserialize;

use super::ApiQuery;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{ApiJson, OptionalJson};
use crate::ops::holds;
use crate::ops::releases::{self as op, ReleaseQuery};
use crate::state::AppState;
use crate::wire::ToApi;

/// The release named in the address; one that cannot be a release id is not found.
pub(super) fn release_id(raw: &str) -> ApiResult<ReleaseId> {
    ReleaseId::parse("id", raw).map_err(|e| ApiError::not_found("release", raw).field(e.field))
}

#[utoipa::path(get, path = "/api/v1/releases", tag = "releases", params(ReleaseQuery), responses((status = 200, body = ReleasePage)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ReleaseQuery>,
) -> ApiResult<Json<ReleasePage>> {
    Ok(Json(op::list(&state, &caller, q).await?))
}

#[utoipa::path(post, path = "/api/v1/releases", tag = "releases", request_body = CreateRelease, responses((status = 201, body = CreatedRelease), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateRelease>,
) -> ApiResult<(StatusCode, Json<CreatedRelease>)> {
    Ok((StatusCode::CREATED, Json(op::create(&state, &caller, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/releases/{id}", tag = "releases", params(("id" = String, Path, description = "e.g. r42")), responses((status = 200, body = Release)))]
pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Release>> {
    Ok(Json(op::get(&state, &caller, release_id(&id)?).await?.to_api()))
}

#[utoipa::path(get, path = "/api/v1/releases/{id}/history", tag = "releases", params(("id" = String, Path)), responses((status = 200, body = [Transition])))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Transition>>> {
    Ok(Json(op::history(&state, &caller, release_id(&id)?).await?.to_api()))
}

/// POST /releases/{id}/actions/{action}: one step of the release state machine.
#[utoipa::path(post, path = "/api/v1/releases/{id}/actions/{action}", tag = "releases",
    params(("id" = String, Path), ("action" = String, Path, description = "start_build, build_succeeded, build_failed, promote, deploy, deploy_succeeded, deploy_failed, pass, close or abandon")),
    request_body = ActRequest, responses((status = 200, body = Release), (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn act(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, action)): Path<(String, String)>,
    OptionalJson(body): OptionalJson<ActRequest>,
) -> ApiResult<Json<Release>> {
    let id = release_id(&id)?;
    Ok(Json(
        op::act(&state, &caller, id, &action, body.unwrap_or_default())
            .await?
            .to_api(),
    ))
}

/// Holds an application's environment for testing the release running there.
#[utoipa::path(post, path = "/api/v1/applications/{name}/environments/{env}/hold", tag = "releases",
    params(("name" = String, Path), ("env" = String, Path)), request_body = HoldRequest, responses((status = 201, body = [BoardCell])))]
pub async fn hold(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, env)): Path<(String, String)>,
    ApiJson(req): ApiJson<HoldRequest>,
) -> ApiResult<(StatusCode, Json<Vec<BoardCell>>)> {
    Ok((
        StatusCode::CREATED,
        Json(holds::hold(&state, &caller, &name, &env, req).await?.to_api()),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UnholdQuery {
    /// Required when releasing someone else's hold (operators only).
    pub reason: Option<String>,
}

#[utoipa::path(delete, path = "/api/v1/applications/{name}/environments/{env}/hold", tag = "releases",
    params(("name" = String, Path), ("env" = String, Path), UnholdQuery), responses((status = 200, body = [BoardCell])))]
pub async fn unhold(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, env)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<UnholdQuery>,
) -> ApiResult<Json<Vec<BoardCell>>> {
    Ok(Json(
        holds::unhold(&state, &caller, &name, &env, q.reason).await?.to_api(),
    ))
}
