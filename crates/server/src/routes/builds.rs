//! Builds of a release: start, follow (log, live stream), cancel. A build
//! runs as a job of the job runner (`jobs::build`); these handlers only
//! record requests and read what the job wrote.

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::Json;
use futures::Stream;
use prism_domain::release::Action;
use prism_domain::{ReleaseId, Role};
use prism_store::builds::{self, Build, LogLine};
use prism_store::{apps, audit, releases, AnyConnection, Tx};
use serde::Deserialize;
use serde_json::json;

use super::ApiQuery;
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::OptionalJson;
use crate::services::build_config;
use crate::services::transitions::{transition_in, Move, Who};

/// Starts a build of release `rid` inside the caller's transaction: checks
/// the settings, moves the release to building, records the build and
/// enqueues its job (all or nothing).
pub async fn start_in(tx: &mut Tx, caller: &Caller, state: &AppState, rid: ReleaseId) -> ApiResult<Build> {
    let rel = releases::get(tx, rid).await?;
    // Membership first: a non-member learns nothing of the settings (the same 404 as no release).
    if !caller.roles_in(tx, rel.project_id).await?.is_member() {
        return Err(ApiError::not_found("release", rid));
    }
    let app = apps::get(tx, rel.app_id).await?;
    let resolved = build_config::resolve(tx, &app, &state.settings.build.default_executor).await?;
    transition_in(
        tx,
        &Who::User(caller),
        rid,
        Move {
            action: Action::StartBuild,
            note: "",
            build_info: None,
        },
    )
    .await?;
    let base = prism_store::base_images::by_name(tx, &resolved.base_image).await?;
    let settings = serde_json::to_value(&resolved).expect("resolved settings serialise");
    let b = builds::create(
        tx,
        builds::NewBuild {
            release: rid,
            app_id: app.id,
            executor: &resolved.executor,
            settings: &settings,
            base_image_id: Some(base.id),
            requested_by: &caller.user.username,
        },
    )
    .await?;
    crate::jobs::build::enqueue(tx, b.id).await?;
    audit::record(
        tx,
        &caller.origin(),
        "build.start",
        "build",
        &b.id.to_string(),
        json!({"release": rid, "application": app.name, "executor": resolved.executor, "base_image": resolved.base_image}),
    )
    .await?;
    Ok(b)
}

async fn visible_build(c: &mut AnyConnection, caller: &Caller, id: &str) -> ApiResult<(Build, prism_domain::RoleSet)> {
    let n: i64 = id.parse().map_err(|_| ApiError::not_found("build", id))?;
    let b = builds::get(c, n).await?;
    let roles = caller.roles_in(c, b.project_id).await?;
    if !roles.is_member() {
        return Err(ApiError::not_found("build", id));
    }
    Ok((b, roles))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBuild {}

/// Builds the release with its application's build settings (again, after a failed build).
#[utoipa::path(post, path = "/api/v1/releases/{id}/builds", tag = "builds", params(("id" = String, Path)),
    responses((status = 201, body = Build), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(_body): OptionalJson<StartBuild>,
) -> ApiResult<(StatusCode, Json<Build>)> {
    let rid = ReleaseId::parse("id", &id).map_err(|_| ApiError::not_found("release", &id))?;
    let mut tx = state.store.begin().await?;
    let b = start_in(&mut tx, &caller, &state, rid).await?;
    tx.commit().await?;
    state.job_wakeup.notify_one();
    Ok((StatusCode::CREATED, Json(b)))
}

#[utoipa::path(get, path = "/api/v1/releases/{id}/builds", tag = "builds", params(("id" = String, Path)), responses((status = 200, body = [Build])))]
pub async fn for_release(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Build>>> {
    let rid = ReleaseId::parse("id", &id).map_err(|_| ApiError::not_found("release", &id))?;
    let mut c = state.store.conn().await?;
    let rel = releases::get(&mut c, rid).await?;
    if !caller.roles_in(&mut c, rel.project_id).await?.is_member() {
        return Err(ApiError::not_found("release", rid));
    }
    Ok(Json(builds::for_release(&mut c, rid).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BuildQuery {
    pub application: Option<String>,
    /// queued, checkout, building, pushing, succeeded, failed or cancelled
    pub state: Option<String>,
    /// 1 to 500, default 50.
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/builds", tag = "builds", params(BuildQuery), responses((status = 200, body = [Build])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<BuildQuery>,
) -> ApiResult<Json<Vec<Build>>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit", "must be 1 to 500"));
    }
    if let Some(s) = &q.state {
        if !builds::ACTIVE.contains(&s.as_str()) && !builds::is_final(s) {
            return Err(ApiError::bad_request("state", format!("unknown build state {s:?}")));
        }
    }
    let mut c = state.store.conn().await?;
    let app = match &q.application {
        Some(name) => Some(super::applications::visible(&mut c, &caller, name).await?.0.id),
        None => None,
    };
    Ok(Json(
        builds::list(&mut c, caller.visibility(), app, q.state.as_deref(), limit).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/builds/{id}", tag = "builds", params(("id" = i64, Path)), responses((status = 200, body = Build)))]
pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Build>> {
    Ok(Json(
        visible_build(&mut *state.store.conn().await?, &caller, &id).await?.0,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
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
    let limit = q.limit.unwrap_or(1_000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::bad_request("limit", "must be 1 to 10000"));
    }
    let mut c = state.store.conn().await?;
    let (b, _) = visible_build(&mut c, &caller, &id).await?;
    Ok(Json(
        crate::services::build_log::page(&mut c, b.id, q.after.unwrap_or(-1), limit).await?,
    ))
}

/// The whole log as plain text: the build's permanent log address.
#[utoipa::path(get, path = "/api/v1/builds/{id}/log.txt", tag = "builds", params(("id" = i64, Path)), responses((status = 200, content_type = "text/plain")))]
pub async fn log_text(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let mut c = state.store.conn().await?;
    let (b, _) = visible_build(&mut c, &caller, &id).await?;
    drop(c);
    let text = crate::services::build_log::text_stream(state.store.clone(), b.id);
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text))
}

/// Server-sent events: `line` for every log line from the start (a finished
/// build replays), `state` when the stage changes, then `end` with the result.
#[utoipa::path(get, path = "/api/v1/builds/{id}/stream", tag = "builds", params(("id" = i64, Path)), responses((status = 200, content_type = "text/event-stream")))]
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let (b, _) = visible_build(&mut *state.store.conn().await?, &caller, &id).await?;
    let permit = crate::live_events::admit(&caller)?;
    let events = crate::live_events::build_events(state.store.clone(), caller, b, permit);
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
    let mut tx = state.store.begin().await?;
    let (b, roles) = visible_build(&mut tx, &caller, &id).await?;
    if !roles.has(Role::Developer) && !roles.has(Role::Operator) {
        return Err(ApiError::forbidden(
            "cancelling a build needs the developer or operator role in the project",
        ));
    }
    if !builds::request_cancel(&mut tx, b.id).await? {
        return Err(ApiError::conflict(format!(
            "build {} has already ended ({})",
            b.id, b.state
        )));
    }
    audit::record(
        &mut tx,
        &caller.origin(),
        "build.cancel",
        "build",
        &b.id.to_string(),
        json!({"release": b.release}),
    )
    .await?;
    let b = builds::get(&mut tx, b.id).await?;
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(b)))
}
