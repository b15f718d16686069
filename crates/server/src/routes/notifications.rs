//! Notifications over HTTP: channels (admins; their URL and secret are
//! never returned), a test message and the delivery log per channel
//! (admins), and each project's subscriptions (its operators). Thin: each
//! handler calls one operation in `ops::notifications`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_api::notifications::{ChannelView, Delivery, PutChannel, PutSubscription, Subscription, TestMessage};

use super::ApiQuery;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::{ApiJson, OptionalJson};
use crate::ops::notifications::{self as op, DeliveryQuery};
use crate::state::AppState;
use crate::wire::ToApi;

/// The channels the caller may see: admins every one, others those their
/// projects may subscribe to (without where they go).
#[utoipa::path(get, path = "/api/v1/notification-channels", tag = "notifications",
    responses((status = 200, body = [ChannelView])))]
pub async fn list_channels(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<ChannelView>>> {
    Ok(Json(op::list_channels(&state, &caller).await?))
}

/// One channel (admins).
#[utoipa::path(get, path = "/api/v1/notification-channels/{name}", tag = "notifications", params(("name" = String, Path)),
    responses((status = 200, body = ChannelView), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn get_channel(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<ChannelView>> {
    Ok(Json(op::get_channel(&state, &caller, &name).await?))
}

/// Creates or replaces a channel (admins). The URL and the secret are
/// stored sealed and never returned.
#[utoipa::path(put, path = "/api/v1/notification-channels/{name}", tag = "notifications", params(("name" = String, Path)),
    request_body = PutChannel,
    responses((status = 200, body = ChannelView), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn put_channel(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<PutChannel>,
) -> ApiResult<Json<ChannelView>> {
    Ok(Json(op::put_channel(&state, &caller, &name, req).await?))
}

/// Removes a channel and its delivery log (admins); refused while a project subscribes to it.
#[utoipa::path(delete, path = "/api/v1/notification-channels/{name}", tag = "notifications", params(("name" = String, Path)),
    responses((status = 204), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn delete_channel(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    op::delete_channel(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a test message now (admins): one attempt, recorded in the delivery
/// log; the answer is that delivery (status `delivered` or `failed`, the
/// receiver's status code, the error).
#[utoipa::path(post, path = "/api/v1/notification-channels/{name}/test", tag = "notifications", params(("name" = String, Path)),
    request_body = TestMessage,
    responses((status = 200, body = Delivery), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn test_channel(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    OptionalJson(req): OptionalJson<TestMessage>,
) -> ApiResult<Json<Delivery>> {
    Ok(Json(
        op::test_channel(&state, &caller, &name, req.unwrap_or_default())
            .await?
            .to_api(),
    ))
}

/// The channel's delivery log, newest first, each delivery with its
/// attempts (admins). Errors never hold the channel's URL or secret.
#[utoipa::path(get, path = "/api/v1/notification-channels/{name}/deliveries", tag = "notifications",
    params(("name" = String, Path), DeliveryQuery),
    responses((status = 200, body = [Delivery]), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> ApiResult<Json<Vec<Delivery>>> {
    Ok(Json(op::deliveries(&state, &caller, &name, q).await?.to_api()))
}

/// A project's subscriptions (its members).
#[utoipa::path(get, path = "/api/v1/projects/{name}/subscriptions", tag = "notifications", params(("name" = String, Path)),
    responses((status = 200, body = [Subscription]), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn subscriptions(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<Subscription>>> {
    Ok(Json(op::subscriptions(&state, &caller, &name).await?.to_api()))
}

/// Subscribes a channel to the project's events, in a language (the
/// project's operators; the channel must be every project's or this one's).
#[utoipa::path(put, path = "/api/v1/projects/{name}/subscriptions/{channel}", tag = "notifications",
    params(("name" = String, Path), ("channel" = String, Path)), request_body = PutSubscription,
    responses((status = 200, body = Subscription), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn put_subscription(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, channel)): Path<(String, String)>,
    ApiJson(req): ApiJson<PutSubscription>,
) -> ApiResult<Json<Subscription>> {
    Ok(Json(
        op::put_subscription(&state, &caller, &name, &channel, req)
            .await?
            .to_api(),
    ))
}

/// Ends the project's subscription of a channel (the project's operators).
#[utoipa::path(delete, path = "/api/v1/projects/{name}/subscriptions/{channel}", tag = "notifications",
    params(("name" = String, Path), ("channel" = String, Path)),
    responses((status = 204), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn delete_subscription(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, channel)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    op::delete_subscription(&state, &caller, &name, &channel).await?;
    Ok(StatusCode::NO_CONTENT)
}
