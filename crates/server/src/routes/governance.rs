//! Release governance over HTTP: a deploy's approvals (list, approve,
//! reject), environments' approval policies and deploy schedules (windows,
//! freezes, break-glass roles). Thin: each handler calls one operation in
//! `ops::approvals` or `ops::windows`.

use axum::extract::{Path, State};
use axum::Json;
use prism_api::deploys::Deploy;
use prism_api::governance::{Approvals, PolicyView, ScheduleView, SetPolicy, VoteInput};
use prism_domain::window::Schedule;
use serde::Deserialize;

use super::ApiQuery;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::ops::approvals;
use crate::ops::windows;
use crate::state::AppState;
use crate::wire::ToApi;

/// Who approved or rejected a deploy, who still may, and whether the caller may.
#[utoipa::path(get, path = "/api/v1/deploys/{id}/approvals", tag = "governance", params(("id" = i64, Path)),
    responses((status = 200, body = Approvals), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn list_approvals(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Approvals>> {
    Ok(Json(approvals::list(&state, &caller, &id).await?))
}

/// Approves a deploy awaiting review (the requester, and by default the
/// release's creator, may not; the role comes from the policy).
#[utoipa::path(post, path = "/api/v1/deploys/{id}/approve", tag = "governance", params(("id" = i64, Path)), request_body = VoteInput,
    responses((status = 200, body = Deploy), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<VoteInput>,
) -> ApiResult<Json<Deploy>> {
    Ok(Json(
        approvals::vote(&state, &caller, &id, true, &req.comment)
            .await?
            .to_api(),
    ))
}

/// Rejects a deploy awaiting review, with a comment; it ends the deploy.
#[utoipa::path(post, path = "/api/v1/deploys/{id}/reject", tag = "governance", params(("id" = i64, Path)), request_body = VoteInput,
    responses((status = 200, body = Deploy), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<VoteInput>,
) -> ApiResult<Json<Deploy>> {
    Ok(Json(
        approvals::vote(&state, &caller, &id, false, &req.comment)
            .await?
            .to_api(),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PolicyQuery {
    /// The project whose deploys' policy to show (its override, or the environment's).
    pub project: Option<String>,
}

/// The approval policy for an environment (or a project's deploys there).
#[utoipa::path(get, path = "/api/v1/environments/{name}/approval-policy", tag = "governance", params(("name" = String, Path), PolicyQuery),
    responses((status = 200, body = PolicyView), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn get_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<PolicyQuery>,
) -> ApiResult<Json<PolicyView>> {
    Ok(Json(
        approvals::get_policy(&state, &caller, &name, q.project.as_deref()).await?,
    ))
}

/// Sets or removes an environment's approval policy or a project's override (admins).
#[utoipa::path(put, path = "/api/v1/environments/{name}/approval-policy", tag = "governance", params(("name" = String, Path)), request_body = SetPolicy,
    responses((status = 200, body = PolicyView), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn put_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<SetPolicy>,
) -> ApiResult<Json<PolicyView>> {
    Ok(Json(approvals::set_policy(&state, &caller, &name, req).await?))
}

/// An environment's deploy windows, freezes and break-glass roles, and
/// whether deploying is open now (else when it opens).
#[utoipa::path(get, path = "/api/v1/environments/{name}/schedule", tag = "governance", params(("name" = String, Path)),
    responses((status = 200, body = ScheduleView), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn get_schedule(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    Ok(Json(windows::get_schedule(&state, &caller, &name).await?))
}

/// Replaces an environment's schedule (admins).
#[utoipa::path(put, path = "/api/v1/environments/{name}/schedule", tag = "governance", params(("name" = String, Path)), request_body = Schedule,
    responses((status = 200, body = ScheduleView), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn put_schedule(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<Schedule>,
) -> ApiResult<Json<ScheduleView>> {
    Ok(Json(windows::put_schedule(&state, &caller, &name, req).await?))
}
