use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_api::jobs::{Job, JobDetail, SelfTest};
use serde::Deserialize;

use super::ApiQuery;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::ops::jobs as op;
use crate::state::AppState;
use crate::wire::ToApi;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct JobQuery {
    pub state: Option<String>,
    pub kind: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobQuery), responses((status = 200, body = [Job])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<JobQuery>,
) -> ApiResult<Json<Vec<Job>>> {
    Ok(Json(
        op::list(&state, &caller, q.state.as_deref(), q.kind.as_deref(), q.limit)
            .await?
            .to_api(),
    ))
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = i64, Path)), responses((status = 200, body = JobDetail)))]
pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<JobDetail>> {
    Ok(Json(op::get(&state, &caller, &id).await?))
}

/// Enqueues a self-test job: it works for `duration_ms` while renewing its
/// lease, so an operator can check that the runner (and, on PostgreSQL, the
/// sharing of one queue across instances) works on their installation.
#[utoipa::path(post, path = "/api/v1/jobs/selftest", tag = "jobs", request_body = SelfTest, responses((status = 201, body = Job)))]
pub async fn selftest(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<SelfTest>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    Ok((
        StatusCode::CREATED,
        Json(op::selftest(&state, &caller, req).await?.to_api()),
    ))
}
