//! Per-project namespace bindings of an environment (issue 11 item 5).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_api::environments::{BindNamespace, NamespaceBinding};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::ops::environments as op;
use crate::state::AppState;
use crate::wire::ToApi;

#[utoipa::path(get, path = "/api/v1/environments/{name}/namespaces", tag = "environments", params(("name" = String, Path)), responses((status = 200, body = [NamespaceBinding])))]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<NamespaceBinding>>> {
    Ok(Json(op::namespace_bindings(&state, &name).await?.to_api()))
}

/// Binds the project's namespace in the environment (admins only).
#[utoipa::path(put, path = "/api/v1/environments/{name}/namespaces/{project}", tag = "environments", params(("name" = String, Path), ("project" = String, Path)), request_body = BindNamespace, responses((status = 200, body = [NamespaceBinding]), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn bind(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, project)): Path<(String, String)>,
    ApiJson(req): ApiJson<BindNamespace>,
) -> ApiResult<Json<Vec<NamespaceBinding>>> {
    Ok(Json(
        op::bind_namespace(&state, &caller, &name, &project, req)
            .await?
            .to_api(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/environments/{name}/namespaces/{project}", tag = "environments", params(("name" = String, Path), ("project" = String, Path)), responses((status = 204)))]
pub async fn unbind(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, project)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    op::unbind_namespace(&state, &caller, &name, &project).await?;
    Ok(StatusCode::NO_CONTENT)
}
