//! A project's git webhook: configured under `/api/v1/projects/{name}/webhook`
//! by the project's operators; forges post to `/hooks/git-project/{project}/{id}`
//! (no login; the forge signs each delivery).

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use prism_api::webhooks::{
    CreateWebhook, Outcome, ProjectReceipt, ProjectWebhookSecret, ProjectWebhookView, RotateWebhook, UpdateWebhook,
};

use crate::auth::caller::Address;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::{ApiJson, OptionalJson};
use crate::ops::project_webhooks::{self as op, ProjectIncoming};
use crate::state::AppState;

#[utoipa::path(post, path = "/api/v1/projects/{name}/webhook", tag = "webhooks",
    params(("name" = String, Path)), request_body = CreateWebhook,
    responses((status = 201, body = ProjectWebhookSecret, description = "the secret is in this answer only"), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<CreateWebhook>,
) -> ApiResult<(StatusCode, Json<ProjectWebhookSecret>)> {
    Ok((
        StatusCode::CREATED,
        Json(op::create(&state, &caller, &name, req).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/projects/{name}/webhook", tag = "webhooks",
    params(("name" = String, Path)), responses((status = 200, body = ProjectWebhookView), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<ProjectWebhookView>> {
    Ok(Json(op::show(&state, &caller, &name).await?))
}

#[utoipa::path(patch, path = "/api/v1/projects/{name}/webhook", tag = "webhooks",
    params(("name" = String, Path)), request_body = UpdateWebhook,
    responses((status = 200, body = ProjectWebhookView), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<UpdateWebhook>,
) -> ApiResult<Json<ProjectWebhookView>> {
    Ok(Json(op::update(&state, &caller, &name, req).await?))
}

#[utoipa::path(post, path = "/api/v1/projects/{name}/webhook/rotate", tag = "webhooks",
    params(("name" = String, Path)), request_body = RotateWebhook,
    responses((status = 200, body = ProjectWebhookSecret, description = "the new secret is in this answer only"), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    OptionalJson(req): OptionalJson<RotateWebhook>,
) -> ApiResult<Json<ProjectWebhookSecret>> {
    Ok(Json(op::rotate(&state, &caller, &name, req.unwrap_or_default()).await?))
}

#[utoipa::path(delete, path = "/api/v1/projects/{name}/webhook", tag = "webhooks",
    params(("name" = String, Path)), responses((status = 204), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<StatusCode> {
    op::delete(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where a forge's organisation (or group) webhook posts pushes and tags of
/// any of the project's repositories; checked as an application's webhook is.
#[utoipa::path(post, path = "/hooks/git-project/{project}/{id}", tag = "webhooks",
    params(("project" = String, Path), ("id" = String, Path, description = "the webhook's public id, from its path")),
    request_body(content = Object, description = "the forge's push event, as it sends it"),
    security(()),
    responses(
        (status = 202, body = ProjectReceipt, description = "releases were created (and their builds started)"),
        (status = 200, body = ProjectReceipt, description = "acknowledged: a duplicate, another event, a repository of no application, or a push no rule releases"),
        (status = 401, body = crate::error::ErrorBody, description = "the signature is missing or wrong; nothing was written"),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "concurrent deliveries of the same push; retry"),
        (status = 413, body = crate::error::ErrorBody)))]
pub async fn receive(
    State(state): State<AppState>,
    Path((project, id)): Path<(String, String)>,
    Address(address, _): Address,
    headers: HeaderMap,
    req: Request,
) -> ApiResult<(StatusCode, Json<ProjectReceipt>)> {
    let (headers, body) = super::webhooks::delivery(&state, headers, req).await?;
    let receipt = op::receive(
        &state,
        ProjectIncoming {
            project: &project,
            public_id: &id,
            headers: &headers,
            body: &body,
            address: &address,
        },
    )
    .await?;
    let status = if receipt.outcome == Outcome::Created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(receipt)))
}
