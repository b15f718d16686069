//! Retrying a failed deploy or build (see `ops::retry`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_api::builds::Build;
use prism_api::deploys::Deploy;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::ops::retry as op;
use crate::state::AppState;
use crate::wire::ToApi;

/// Retries a failed deploy: a new deploy of the same release into the same
/// environment (role and hold checks as when starting one).
#[utoipa::path(post, path = "/api/v1/deploys/{id}/retry", tag = "deploys", params(("id" = i64, Path)),
    responses((status = 201, body = Deploy, description = "the new deploy"),
        (status = 403, body = crate::error::ErrorBody, description = "neither an admin nor the one who asked for the deploy"),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody, description = "the deploy has not failed"),
        (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn deploy(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Deploy>)> {
    Ok((
        StatusCode::CREATED,
        Json(op::retry_deploy(&state, &caller, &id).await?.to_api()),
    ))
}

/// Retries a failed build: a new build of the same release.
#[utoipa::path(post, path = "/api/v1/builds/{id}/retry", tag = "builds", params(("id" = i64, Path)),
    responses((status = 201, body = Build, description = "the new build"),
        (status = 403, body = crate::error::ErrorBody, description = "neither an admin nor the one who asked for the build"),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody, description = "the build has not failed"),
        (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn build(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Build>)> {
    Ok((
        StatusCode::CREATED,
        Json(op::retry_build(&state, &caller, &id).await?.to_api()),
    ))
}
