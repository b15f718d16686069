//! The job queue as admins see it: jobs and their attempts, and the
//! self-test job that checks the runner works.

use prism_api::jobs::{JobDetail, SelfTest};
use prism_store::audit;
use prism_store::jobs::{self, Job, NewJob};
use serde_json::json;

use super::{access, Ctx, OpError, OpResult};
use crate::auth::Caller;
use crate::wire::ToApi;

pub async fn list(
    ctx: &Ctx,
    caller: &Caller,
    state: Option<&str>,
    kind: Option<&str>,
    limit: Option<i64>,
) -> OpResult<Vec<Job>> {
    access::require_admin(caller)?;
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(OpError::invalid("limit", "must be between 1 and 1000"));
    }
    Ok(jobs::list(&mut *ctx.store.conn().await?, state, kind, limit).await?)
}

/// A job and its attempts, by the id as written in the address.
pub async fn get(ctx: &Ctx, caller: &Caller, id: &str) -> OpResult<JobDetail> {
    access::require_admin(caller)?;
    let id: i64 = id
        .parse()
        .map_err(|_| OpError::invalid("id", "job id must be a number"))?;
    let mut c = ctx.store.conn().await?;
    let job = jobs::get(&mut c, id).await?;
    let attempts = jobs::attempts(&mut c, id).await?;
    Ok(JobDetail {
        job: job.to_api(),
        attempts: attempts.to_api(),
    })
}

/// Enqueues a self-test job: it works for `duration_ms` while renewing its
/// lease, so an operator can check that the runner (and, on PostgreSQL, the
/// sharing of one queue across instances) works on their installation.
pub async fn selftest(ctx: &Ctx, caller: &Caller, req: SelfTest) -> OpResult<Job> {
    access::require_admin(caller)?;
    if !(0..=600_000).contains(&req.duration_ms) {
        return Err(OpError::invalid("duration_ms", "must be between 0 and 600000"));
    }
    let mut tx = ctx.store.begin().await?;
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
    .ok_or_else(|| OpError::internal("the self-test job was not enqueued"))?;
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
    Ok(job)
}
