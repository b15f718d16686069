use axum::extract::{Path, State};
use axum::Json;
use prism_api::templates::{Preview, PreviewRequest, SaveTemplates, TemplateSetVersion, Templates, VersionSummary};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::ops::templates as op;
use crate::state::AppState;
use crate::wire::ToApi;

#[utoipa::path(get, path = "/api/v1/projects/{name}/templates", tag = "templates", params(("name" = String, Path)), responses((status = 200, body = Templates)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Templates>> {
    Ok(Json(op::get(&state, &caller, &name).await?))
}

#[utoipa::path(get, path = "/api/v1/projects/{name}/templates/versions", tag = "templates", params(("name" = String, Path)), responses((status = 200, body = [VersionSummary])))]
pub async fn versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<VersionSummary>>> {
    Ok(Json(op::versions(&state, &caller, &name).await?.to_api()))
}

#[utoipa::path(get, path = "/api/v1/projects/{name}/templates/versions/{version}", tag = "templates", params(("name" = String, Path), ("version" = i64, Path)), responses((status = 200, body = TemplateSetVersion)))]
pub async fn version(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<TemplateSetVersion>> {
    Ok(Json(op::version(&state, &caller, &name, &version).await?.to_api()))
}

/// Saves a new version of the project's templates after checking that
/// every template compiles (names, sizes, Jinja syntax).
#[utoipa::path(put, path = "/api/v1/projects/{name}/templates", tag = "templates", params(("name" = String, Path)), request_body = SaveTemplates, responses((status = 200, body = TemplateSetVersion)))]
pub async fn save(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<SaveTemplates>,
) -> ApiResult<Json<TemplateSetVersion>> {
    Ok(Json(op::save(&state, &caller, &name, req).await?.to_api()))
}

/// Renders an application's templates for (environment, release) and returns
/// the YAML, or the problems with their template and line.
#[utoipa::path(post, path = "/api/v1/applications/{name}/preview", tag = "templates", params(("name" = String, Path)), request_body = PreviewRequest, responses((status = 200, body = Preview)))]
pub async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<PreviewRequest>,
) -> ApiResult<Json<Preview>> {
    Ok(Json(op::preview(&state, &caller, &name, req).await?))
}
