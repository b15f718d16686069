//! Builds of a release: start, follow (log, live stream), cancel. A build
//! runs as a job of the job runner (`jobs::build`); these handlers only
//! record requests and read what the job wrote.

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::Json;
use futures::Stream;
use prism_api::builds::{Build, LogLine, StartBuild};
use prism_domain::ReleaseId;
use serde::Deserialize;

use super::ApiQuery;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::OptionalJson;
use crate::live_events::ResumeQuery;
use crate::ops::builds::{self as op, BuildQuery};
use crate::state::AppState;
use crate::wire::ToApi;

fn release_of(id: &str) -> ApiResult<ReleaseId> {
    ReleaseId::parse("id", id).map_err(|_| ApiError::not_found("release", id))
}

/// Builds the release with its application's build settings (again, after a failed build).
#[utoipa::path(post, path = "/api/v1/releases/{id}/builds", tag = "builds", params(("id" = String, Path)),
    responses((status = 201, body = Build), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(_body): OptionalJson<StartBuild>,
) -> ApiResult<(StatusCode, Json<Build>)> {
    let rid = release_of(&id)?;
    Ok((
        StatusCode::CREATED,
        Json(op::start_build(&state, &caller, rid).await?.to_api()),
    ))
}

#[utoipa::path(get, path = "/api/v1/releases/{id}/builds", tag = "builds", params(("id" = String, Path)), responses((status = 200, body = [Build])))]
pub async fn for_release(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Build>>> {
    Ok(Json(op::for_release(&state, &caller, release_of(&id)?).await?.to_api()))
}

#[utoipa::path(get, path = "/api/v1/builds", tag = "builds", params(BuildQuery), responses((status = 200, body = [Build])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<BuildQuery>,
) -> ApiResult<Json<Vec<Build>>> {
    Ok(Json(op::list(&state, &caller, q).await?.to_api()))
}

#[utoipa::path(get, path = "/api/v1/builds/{id}", tag = "builds", params(("id" = i64, Path)), responses((status = 200, body = Build)))]
pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Build>> {
    Ok(Json(op::get(&state, &caller, &id).await?.0.to_api()))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Lines after this sequence number (default: from the start).
    pub after: Option<i64>,
    /// 1 to 10000 lines, default 1000. A page also ends after 4 MiB of log
    /// text (continue with `after` = the last `seq` received).
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/builds/{id}/log", tag = "builds", params(("id" = i64, Path), LogQuery), responses((status = 200, body = [LogLine])))]
pub async fn log(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> ApiResult<Json<Vec<LogLine>>> {
    Ok(Json(op::log(&state, &caller, &id, q.after, q.limit).await?.to_api()))
}

/// The whole log as plain text: the build's permanent log address.
#[utoipa::path(get, path = "/api/v1/builds/{id}/log.txt", tag = "builds", params(("id" = i64, Path)), responses((status = 200, content_type = "text/plain")))]
pub async fn log_text(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let text = axum::body::Body::from_stream(op::log_text(&state, &caller, &id).await?);
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text))
}

/// Server-sent events: `line` (id: its `seq`) for every log line from the
/// start (a finished build replays), `state` first and when the stage
/// changes, then `end` with the result. A client reconnecting with
/// `Last-Event-ID` (or `?last_event_id=`) gets only the lines after it.
#[utoipa::path(get, path = "/api/v1/builds/{id}/stream", tag = "builds",
    params(("id" = i64, Path), ResumeQuery, ("Last-Event-ID" = Option<i64>, Header, description = "only lines after this seq")),
    responses((status = 200, content_type = "text/event-stream"), (status = 400, body = crate::error::ErrorBody)))]
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiQuery(resume): ApiQuery<ResumeQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let resume = crate::live_events::resume_after(&headers, &resume)?;
    let (b, _) = op::get(&state, &caller, &id).await?;
    let permit = crate::live_events::admit(&caller)?;
    let events = crate::live_events::build_events(state.store.clone(), caller, b, resume, permit);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// Cancels a queued or running build: the running step's process group is
/// killed (or the Jenkins build stopped) and the release moves to build_failed.
#[utoipa::path(post, path = "/api/v1/builds/{id}/cancel", tag = "builds", params(("id" = i64, Path)), responses((status = 202, body = Build), (status = 409, body = crate::error::ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Build>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(op::cancel_build(&state, &caller, &id).await?.to_api()),
    ))
}
