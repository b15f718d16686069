use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_api::credentials::{GitCredential, PutGitCredential};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::ops::git_credentials as op;
use crate::state::AppState;
use crate::wire::ToApi;

#[utoipa::path(get, path = "/api/v1/git-credentials", tag = "builds", responses((status = 200, body = [GitCredential])))]
pub async fn list_git_credentials(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<GitCredential>>> {
    Ok(Json(op::list(&state, &caller).await?.to_api()))
}

#[utoipa::path(put, path = "/api/v1/git-credentials/{name}", tag = "builds", params(("name" = String, Path)), request_body = PutGitCredential, responses((status = 200, body = GitCredential)))]
pub async fn put_git_credential(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<PutGitCredential>,
) -> ApiResult<Json<GitCredential>> {
    Ok(Json(
        op::put_git_credential(&state, &caller, &name, req).await?.to_api(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/git-credentials/{name}", tag = "builds", params(("name" = String, Path)), responses((status = 204)))]
pub async fn delete_git_credential(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    op::delete_git_credential(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
