//! Explicit retries of a failed deploy or build, above all of one whose job
//! was quarantined (failure kind `crashed`: the server stopped while running
//! it twice in a row, so it is never run again by itself). A retry starts a
//! fresh deploy of the same release into the same environment, or a fresh
//! build of the same release, with the same checks as starting one; only an
//! admin or whoever asked for the failed one may retry it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_store::builds::{self, Build};
use prism_store::deploys::{self, Deploy};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;

/// The stored state of a failed deploy or build (`prism_store`'s mapping).
const FAILED: &str = "failed";

fn may_retry(caller: &Caller, requested_by: &str, what: &str) -> ApiResult<()> {
    if caller.is_admin() || caller.user.username == requested_by {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "only an admin or {requested_by}, who asked for this {what}, may retry it"
        )))
    }
}

/// Retries a failed deploy: a new deploy of the same release into the same
/// environment (role and hold checks as when starting one).
#[utoipa::path(post, path = "/api/v1/deploys/{id}/retry", tag = "deploys", params(("id" = i64, Path)),
    responses((status = 201, body = Deploy, description = "the new deploy"),
        (status = 403, body = crate::error::ErrorBody, description = "neither an admin nor the one who asked for the deploy"),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody, description = "the deploy has not failed"),
        (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn deploy(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Deploy>)> {
    let n: i64 = id.parse().map_err(|_| ApiError::not_found("deploy", &id))?;
    let d = {
        let mut c = state.store.conn().await?;
        let d = deploys::get(&mut c, n).await?;
        if !caller.roles_in(&mut c, d.project_id).await?.is_member() {
            return Err(ApiError::not_found("deploy", &id));
        }
        d
    };
    may_retry(&caller, &d.requested_by, "deploy")?;
    if d.state != FAILED {
        return Err(ApiError::conflict(format!(
            "deploy {id} is {}; only a failed deploy is retried",
            d.state
        )));
    }
    let req = super::deploys::StartDeploy {
        environment: d.environment.clone(),
        note: format!("retry of deploy {id}"),
    };
    super::deploys::start(State(state), caller, Path(d.release.to_string()), ApiJson(req)).await
}

/// Retries a failed build: a new build of the same release.
#[utoipa::path(post, path = "/api/v1/builds/{id}/retry", tag = "builds", params(("id" = i64, Path)),
    responses((status = 201, body = Build, description = "the new build"),
        (status = 403, body = crate::error::ErrorBody, description = "neither an admin nor the one who asked for the build"),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody, description = "the build has not failed"),
        (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn build(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Build>)> {
    let n: i64 = id.parse().map_err(|_| ApiError::not_found("build", &id))?;
    let b = {
        let mut c = state.store.conn().await?;
        let b = builds::get(&mut c, n).await?;
        if !caller.roles_in(&mut c, b.project_id).await?.is_member() {
            return Err(ApiError::not_found("build", &id));
        }
        b
    };
    may_retry(&caller, &b.requested_by, "build")?;
    if b.state != FAILED {
        return Err(ApiError::conflict(format!(
            "build {id} is {}; only a failed build is retried",
            b.state
        )));
    }
    let mut tx = state.store.begin().await?;
    let new = super::builds::start_in(&mut tx, &caller, &state, b.release).await?;
    tx.commit().await?;
    state.job_wakeup.notify_one();
    Ok((StatusCode::CREATED, Json(new)))
}
