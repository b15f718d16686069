//! Builds of a release: start (the settings checked and resolved, the
//! release moved to building, the build recorded and its job queued, all or
//! nothing), read (record and log), cancel. The build itself runs as a job
//! (`jobs::build`).

use crate::wire::ToApi;
use prism_domain::release::Action;
use prism_domain::ReleaseId;
use prism_store::builds::{self, Build, LogLine};
use prism_store::{apps, audit, Tx};
use serde::Deserialize;
use serde_json::json;

use super::transitions::{transition_in, Move, Who};
use super::{access, Ctx, OpError, OpResult};
use crate::auth::Caller;
use crate::services::build_config;

/// Starts a build of release `rid` inside the caller's transaction: checks
/// the settings, moves the release to building, records the build and
/// enqueues its job (all or nothing). The caller commits and wakes the runner.
pub async fn start_in(tx: &mut Tx, ctx: &Ctx, caller: &Caller, rid: ReleaseId) -> OpResult<Build> {
    // Membership first: a non-member learns nothing of the settings (the same 404 as no release).
    let (rel, _) = access::release(tx, caller, rid).await?;
    start_as(tx, ctx, &Who::User(caller), rel.app_id, rid).await
}

/// Starts the build as `who` (whose right to build the release's state
/// machine judges); the caller checked that `who` may see the release.
pub(crate) async fn start_as(tx: &mut Tx, ctx: &Ctx, who: &Who<'_>, app_id: i64, rid: ReleaseId) -> OpResult<Build> {
    let origin = who.origin();
    let app = apps::get(tx, app_id).await?;
    let resolved = build_config::resolve(tx, &app, &ctx.settings.build.default_executor).await?;
    transition_in(
        tx,
        who,
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
            requested_by: &origin.actor,
        },
    )
    .await?;
    crate::jobs::build::enqueue(tx, b.id).await?;
    audit::record(
        tx,
        &origin,
        "build.start",
        "build",
        &b.id.to_string(),
        json!({"release": rid, "application": app.name, "executor": resolved.executor, "base_image": resolved.base_image}),
    )
    .await?;
    Ok(b)
}

/// Builds the release with its application's build settings (again, after a failed build).
pub async fn start_build(ctx: &Ctx, caller: &Caller, rid: ReleaseId) -> OpResult<Build> {
    let mut tx = ctx.store.begin().await?;
    crate::idempotency::claim(&mut tx, caller).await?;
    let b = start_in(&mut tx, ctx, caller, rid).await?;
    crate::idempotency::complete(
        &mut tx,
        caller,
        crate::idempotency::Answer::Created,
        &b.clone().to_api(),
    )
    .await?;
    tx.commit().await?;
    ctx.job_wakeup.notify_one();
    Ok(b)
}

/// Every build of a release the caller may see, newest first.
pub async fn for_release(ctx: &Ctx, caller: &Caller, rid: ReleaseId) -> OpResult<Vec<Build>> {
    let mut c = ctx.store.conn().await?;
    access::release(&mut c, caller, rid).await?;
    Ok(builds::for_release(&mut c, rid).await?)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BuildQuery {
    pub application: Option<String>,
    /// queued, checkout, building, pushing, succeeded, failed or cancelled
    pub state: Option<String>,
    /// 1 to 500, default 50.
    pub limit: Option<i64>,
}

pub async fn list(ctx: &Ctx, caller: &Caller, q: BuildQuery) -> OpResult<Vec<Build>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(OpError::invalid("limit", "must be 1 to 500"));
    }
    let state = match &q.state {
        Some(s) => Some(
            prism_domain::BuildState::parse(s)
                .ok_or_else(|| OpError::invalid("state", format!("unknown build state {s:?}")))?,
        ),
        None => None,
    };
    let mut c = ctx.store.conn().await?;
    let app = match &q.application {
        Some(name) => Some(access::application(&mut c, caller, name).await?.0.id),
        None => None,
    };
    Ok(builds::list(&mut c, access::visibility(caller), app, state, limit).await?)
}

/// A build the caller may see, with the caller's roles in its project.
pub async fn get(ctx: &Ctx, caller: &Caller, id: &str) -> OpResult<(Build, prism_domain::RoleSet)> {
    let mut c = ctx.store.conn().await?;
    let (mut b, roles) = access::build(&mut c, caller, id).await?;
    // A queued build says how many wait before it (the queue is the server's, across projects).
    if b.state == prism_domain::BuildState::Queued {
        b.queue_position = builds::queue_position(&mut c, b.id).await?;
    }
    Ok((b, roles))
}

/// Up to `limit` (1 to 10000) log lines after sequence number `after`.
pub async fn log(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    after: Option<i64>,
    limit: Option<i64>,
) -> OpResult<Vec<LogLine>> {
    let limit = limit.unwrap_or(1_000);
    if !(1..=10_000).contains(&limit) {
        return Err(OpError::invalid("limit", "must be 1 to 10000"));
    }
    let mut c = ctx.store.conn().await?;
    let (b, _) = access::build(&mut c, caller, id).await?;
    Ok(crate::services::build_log::page(&mut c, b.id, after.unwrap_or(-1), limit).await?)
}

/// The whole log as text, one line each, streamed page by page (a log of
/// any size never sits in memory at once).
pub async fn log_text(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
) -> OpResult<impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static> {
    let (b, _) = access::build(&mut *ctx.store.conn().await?, caller, id).await?;
    Ok(crate::services::build_log::text_stream(ctx.store.clone(), b.id))
}

/// Cancels a queued or running build: the job sees the request, kills the
/// running step (or stops the Jenkins build) and fails the release's build.
pub async fn cancel_build(ctx: &Ctx, caller: &Caller, id: &str) -> OpResult<Build> {
    let mut tx = ctx.store.begin().await?;
    let (b, roles) = access::build(&mut tx, caller, id).await?;
    if !access::may_cancel_build(roles) {
        return Err(OpError::forbidden(
            "cancelling a build needs the developer or operator role in the project",
        ));
    }
    if !builds::request_cancel(&mut tx, b.id).await? {
        return Err(OpError::conflict(format!(
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
    Ok(b)
}
