//! An application's git webhook: configured under `/api/v1/applications/{name}/webhook`
//! by its project's operators, and the address forges post to,
//! `/hooks/git/{app}/{id}` (no login; the forge signs each delivery).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use prism_api::webhooks::{CreateWebhook, Outcome, Receipt, RotateWebhook, UpdateWebhook, WebhookSecret, WebhookView};

use crate::auth::caller::Address;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{ApiJson, OptionalJson};
use crate::ops::webhooks::{self as op, Incoming};
use crate::state::AppState;

/// The largest delivery accepted (forges send a push's last commits, with
/// their file lists); larger ones get 413 before anything is checked.
pub const DELIVERY_LIMIT: usize = 5 * 1024 * 1024;

#[utoipa::path(post, path = "/api/v1/applications/{name}/webhook", tag = "webhooks",
    params(("name" = String, Path)), request_body = CreateWebhook,
    responses((status = 201, body = WebhookSecret, description = "the secret is in this answer only"), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<CreateWebhook>,
) -> ApiResult<(StatusCode, Json<WebhookSecret>)> {
    Ok((
        StatusCode::CREATED,
        Json(op::create(&state, &caller, &name, req).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/applications/{name}/webhook", tag = "webhooks",
    params(("name" = String, Path)), responses((status = 200, body = WebhookView), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<WebhookView>> {
    Ok(Json(op::show(&state, &caller, &name).await?))
}

#[utoipa::path(patch, path = "/api/v1/applications/{name}/webhook", tag = "webhooks",
    params(("name" = String, Path)), request_body = UpdateWebhook,
    responses((status = 200, body = WebhookView), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<UpdateWebhook>,
) -> ApiResult<Json<WebhookView>> {
    Ok(Json(op::update(&state, &caller, &name, req).await?))
}

#[utoipa::path(post, path = "/api/v1/applications/{name}/webhook/rotate", tag = "webhooks",
    params(("name" = String, Path)), request_body = RotateWebhook,
    responses((status = 200, body = WebhookSecret, description = "the new secret is in this answer only"), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    OptionalJson(req): OptionalJson<RotateWebhook>,
) -> ApiResult<Json<WebhookSecret>> {
    Ok(Json(op::rotate(&state, &caller, &name, req.unwrap_or_default()).await?))
}

#[utoipa::path(delete, path = "/api/v1/applications/{name}/webhook", tag = "webhooks",
    params(("name" = String, Path)), responses((status = 204), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<StatusCode> {
    op::delete(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where GitHub, Gitea/Forgejo and GitLab post pushes and tags. The
/// signature (`X-Hub-Signature-256`, `X-Gitea-Signature`, `X-Gitlab-Token`
/// or GitLab's `webhook-signature`) is checked before the body is read.
#[utoipa::path(post, path = "/hooks/git/{app}/{id}", tag = "webhooks",
    params(("app" = String, Path), ("id" = String, Path, description = "the webhook's public id, from its path")),
    request_body(content = Object, description = "the forge's push event, as it sends it"),
    security(()),
    responses(
        (status = 202, body = Receipt, description = "a release was created (and its build started)"),
        (status = 200, body = Receipt, description = "acknowledged: a duplicate, another event, or a push no rule releases"),
        (status = 401, body = crate::error::ErrorBody, description = "the signature is missing or wrong; nothing was written"),
        (status = 404, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody)))]
pub async fn receive(
    State(state): State<AppState>,
    Path((app, id)): Path<(String, String)>,
    Address(address, _): Address,
    headers: HeaderMap,
    req: Request,
) -> ApiResult<(StatusCode, Json<Receipt>)> {
    let (headers, body) = delivery(&state, headers, req).await?;
    let receipt = op::receive(
        &state,
        Incoming {
            application: &app,
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

/// A delivery's headers (names lowercase, values that are text) and its
/// body, read up to [`DELIVERY_LIMIT`] (413 past it): what both receiving
/// endpoints hand to their operation.
pub(super) async fn delivery(
    state: &AppState,
    headers: HeaderMap,
    req: Request,
) -> ApiResult<(HashMap<String, String>, Bytes)> {
    let body = Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("delivery larger than {DELIVERY_LIMIT} bytes"),
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.body_text())
        }
    })?;
    let headers = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    Ok((headers, body))
}
