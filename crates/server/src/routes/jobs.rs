use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_store::audit;
use prism_store::jobs::{self, Job, JobAttempt, NewJob};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ApiQuery;
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;

#[derive(Deserialize, utoipa::IntoParams)]
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
    caller.require_admin()?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit", "must be between 1 and 1000"));
    }
    Ok(Json(
        jobs::list(
            &mut *state.store.conn().await?,
            q.state.as_deref(),
            q.kind.as_deref(),
            limit,
        )
        .await?,
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JobDetail {
    pub job: Job,
    pub attempts: Vec<JobAttempt>,
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = i64, Path)), responses((status = 200, body = JobDetail)))]
pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<JobDetail>> {
    caller.require_admin()?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request("id", "job id must be a number"))?;
    let mut c = state.store.conn().await?;
    let job = jobs::get(&mut c, id).await?;
    let attempts = jobs::attempts(&mut c, id).await?;
    Ok(Json(JobDetail { job, attempts }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelfTest {
    /// How long the job works, holding its lease (0 to 600000 ms).
    pub duration_ms: i64,
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
    caller.require_admin()?;
    if !(0..=600_000).contains(&req.duration_ms) {
        return Err(ApiError::bad_request("duration_ms", "must be between 0 and 600000"));
    }
    let mut tx = state.store.begin().await?;
    let id = jobs::enqueue(
        &mut tx,
        NewJob {
            kind: crate::jobs::SELFTEST,
            payload: json!({"duration_ms": req.duration_ms}),
            dedup_key: None,
            run_at: None,
            max_attempts: 3,
        },
    )
    .await?
    .ok_or_else(ApiError::internal)?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "job.selftest",
        "job",
        &id.to_string(),
        json!({"duration_ms": req.duration_ms}),
    )
    .await?;
    let job = jobs::get(&mut tx, id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(job)))
}
