//! Ops tools behind Prism: registered by admins under
//! `/api/v1/ops-tools/{cluster}/{name}`, listed to whoever may open them,
//! nginx's configuration at `/api/v1/ops-tools/nginx-config`, and the
//! `auth_request` endpoint nginx asks, `/auth/ops/check`.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use prism_api::ops_tools::{PutTool, ToolView};
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::ops::ops_tools::{self as op, Verdict};
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/ops-tools", tag = "ops-tools",
    responses((status = 200, body = [ToolView], description = "the tools the caller may open (admins: all)"), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<ToolView>>> {
    Ok(Json(op::list(&state, &caller).await?))
}

#[utoipa::path(put, path = "/api/v1/ops-tools/{cluster}/{name}", tag = "ops-tools",
    params(("cluster" = String, Path), ("name" = String, Path)), request_body = PutTool,
    responses((status = 200, body = ToolView), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path((cluster, name)): Path<(String, String)>,
    ApiJson(req): ApiJson<PutTool>,
) -> ApiResult<Json<ToolView>> {
    Ok(Json(op::put(&state, &caller, &cluster, &name, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/ops-tools/{cluster}/{name}", tag = "ops-tools",
    params(("cluster" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((cluster, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    op::delete(&state, &caller, &cluster, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NginxQuery {
    /// Where nginx reaches Prism (default `127.0.0.1:8080`).
    pub prism: Option<String>,
    /// What nginx listens on (default `80`).
    pub listen: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/ops-tools/nginx-config", tag = "ops-tools", params(NginxQuery),
    responses((status = 200, content_type = "text/plain", body = String, description = "nginx configuration for the front"),
              (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn nginx_config(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<NginxQuery>,
) -> ApiResult<Response> {
    let text = op::nginx_config(
        &state,
        &caller,
        q.prism.as_deref().unwrap_or("127.0.0.1:8080"),
        q.listen.as_deref().unwrap_or("80"),
    )
    .await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// nginx's `auth_request`: 204 with `X-Auth-User`, `X-Auth-Name` and
/// `X-Auth-Roles` when the person may open the tool `X-Original-URI` names,
/// 401 when nobody is logged in, 403 otherwise. Never a redirect (nginx
/// treats one as an error); nginx's `error_page 401` sends the browser to
/// the login page instead.
#[utoipa::path(get, path = "/auth/ops/check", tag = "ops-tools",
    params(("X-Original-URI" = String, Header, description = "the request nginx is deciding on")),
    security(()),
    responses((status = 204, description = "allowed; identity in X-Auth-User, X-Auth-Name, X-Auth-Roles"),
              (status = 401, description = "not logged in"), (status = 403, description = "not allowed")))]
pub async fn check(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let uri = headers.get("x-original-uri").and_then(|v| v.to_str().ok());
    let verdict = op::check(&state, caller.as_ref().ok(), uri).await?;
    Ok(match verdict {
        Verdict::Allow { user, name, roles } => {
            let mut h = HeaderMap::new();
            for (k, v) in [("x-auth-user", user), ("x-auth-name", name), ("x-auth-roles", roles)] {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(HeaderName::from_static(k), v);
                }
            }
            (StatusCode::NO_CONTENT, h).into_response()
        }
        Verdict::NotLoggedIn => StatusCode::UNAUTHORIZED.into_response(),
        Verdict::Forbidden => StatusCode::FORBIDDEN.into_response(),
    })
}
