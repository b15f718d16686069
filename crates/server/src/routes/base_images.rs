//! Base images and their lineage (see `ops::base_images`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_api::base_images::{BaseDetail, BaseImage, CreateBase, Rebuilt, UpdateBase};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::{ApiJson, OptionalJson};
use crate::ops::base_images as op;
use crate::state::AppState;
use crate::wire::ToApi;

#[utoipa::path(get, path = "/api/v1/base-images", tag = "base images", responses((status = 200, body = [BaseImage])))]
pub async fn list(State(state): State<AppState>, _caller: Caller) -> ApiResult<Json<Vec<BaseImage>>> {
    Ok(Json(op::list(&state).await?.to_api()))
}

#[utoipa::path(post, path = "/api/v1/base-images", tag = "base images", request_body = CreateBase, responses((status = 201, body = BaseImage), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateBase>,
) -> ApiResult<(StatusCode, Json<BaseImage>)> {
    Ok((
        StatusCode::CREATED,
        Json(op::create(&state, &caller, req).await?.to_api()),
    ))
}

#[utoipa::path(get, path = "/api/v1/base-images/{name}", tag = "base images", params(("name" = String, Path)), responses((status = 200, body = BaseDetail)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<BaseDetail>> {
    Ok(Json(op::get(&state, &caller, &name).await?))
}

/// Builds the base again (after changing its recipe, or to pick up a new
/// parent digest); an image registered as it is has its tag re-resolved.
#[utoipa::path(post, path = "/api/v1/base-images/{name}/build", tag = "base images", params(("name" = String, Path)), request_body = UpdateBase, responses((status = 202, body = BaseImage), (status = 409, body = crate::error::ErrorBody)))]
pub async fn build(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    OptionalJson(body): OptionalJson<UpdateBase>,
) -> ApiResult<(StatusCode, Json<BaseImage>)> {
    let base = op::build(&state, &caller, &name, body.unwrap_or_default()).await?;
    Ok((StatusCode::ACCEPTED, Json(base.to_api())))
}

/// Creates a release of each application still on an older digest of this
/// base (the same commit, rebuilt on the current digest) and starts its build.
#[utoipa::path(post, path = "/api/v1/base-images/{name}/rebuild-applications", tag = "base images", params(("name" = String, Path)), responses((status = 201, body = [Rebuilt])))]
pub async fn rebuild_applications(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<Vec<Rebuilt>>)> {
    Ok((
        StatusCode::CREATED,
        Json(op::rebuild_applications(&state, &caller, &name).await?),
    ))
}

#[utoipa::path(delete, path = "/api/v1/base-images/{name}", tag = "base images", params(("name" = String, Path)), responses((status = 204)))]
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<StatusCode> {
    op::delete(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
