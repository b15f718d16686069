//! Explicit retries of a failed deploy or build, above all of one whose job
//! was quarantined (failure kind `crashed`: the server stopped while running
//! it twice in a row, so it is never run again by itself). A retry starts a
//! fresh deploy of the same release into the same environment, or a fresh
//! build of the same release, with the same checks as starting one; only an
//! admin or whoever asked for the failed one may retry it.

use prism_api::deploys::StartDeploy;
use prism_domain::{BuildState, DeployState};
use prism_store::builds::Build;
use prism_store::deploys::Deploy;

use super::deploys::start_deploy;
use super::{access, Ctx, OpError, OpResult};
use crate::auth::Caller;
use crate::wire::ToApi;

/// Whether `caller` may retry what `requested_by` asked for (the console
/// asks this to offer the button; the operations below enforce it).
pub fn may_retry_for(caller: &Caller, requested_by: &str) -> bool {
    caller.is_admin() || caller.user.username == requested_by
}

fn may_retry(caller: &Caller, requested_by: &str, what: &str) -> OpResult<()> {
    if may_retry_for(caller, requested_by) {
        Ok(())
    } else {
        Err(OpError::forbidden(format!(
            "only an admin or {requested_by}, who asked for this {what}, may retry it"
        )))
    }
}

/// A new deploy of the failed deploy's release into the same environment
/// (role and hold checks as when starting one).
pub async fn retry_deploy(ctx: &Ctx, caller: &Caller, id: &str) -> OpResult<Deploy> {
    let (d, _) = access::deploy(&mut *ctx.store.conn().await?, caller, id).await?;
    may_retry(caller, &d.requested_by, "deploy")?;
    if d.state != DeployState::Failed {
        return Err(OpError::conflict(format!(
            "deploy {id} is {}; only a failed deploy is retried",
            d.state
        )));
    }
    let req = StartDeploy {
        environment: d.environment.clone(),
        note: format!("retry of deploy {id}"),
        break_glass_reason: None,
    };
    start_deploy(ctx, caller, d.release, req).await
}

/// A new build of the failed build's release.
pub async fn retry_build(ctx: &Ctx, caller: &Caller, id: &str) -> OpResult<Build> {
    let (b, _) = access::build(&mut *ctx.store.conn().await?, caller, id).await?;
    may_retry(caller, &b.requested_by, "build")?;
    if b.state != BuildState::Failed {
        return Err(OpError::conflict(format!(
            "build {id} is {}; only a failed build is retried",
            b.state
        )));
    }
    let mut tx = ctx.store.begin().await?;
    crate::idempotency::claim(&mut tx, caller).await?;
    let new = super::builds::start_in(&mut tx, ctx, caller, b.release).await?;
    crate::idempotency::complete(
        &mut tx,
        caller,
        crate::idempotency::Answer::Created,
        &new.clone().to_api(),
    )
    .await?;
    tx.commit().await?;
    ctx.job_wakeup.notify_one();
    Ok(new)
}
