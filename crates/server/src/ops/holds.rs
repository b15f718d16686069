//! Holds: a tester keeps an application's environment for testing the
//! release running there, so no promotion, deploy or rollback replaces it
//! until the hold is lifted (by its holder, or an operator with a reason) or
//! expires.

use prism_api::board::HoldRequest;
use prism_domain::release::{may_hold, may_release_hold, Actor};
use prism_domain::ReleaseId;
use prism_store::slots::{self, BoardCell, BoardScope};
use prism_store::{audit, environments};
use serde_json::json;

use super::{access, Ctx, OpError, OpResult};
use crate::auth::Caller;
use crate::services::notices::{announce, Event};
use prism_notify::NoticeKind;

/// Holds `env` of application `name`; returns the application's board row.
pub async fn hold(ctx: &Ctx, caller: &Caller, name: &str, env: &str, req: HoldRequest) -> OpResult<Vec<BoardCell>> {
    if req.note.len() > 2000 {
        return Err(OpError::invalid("note", "must be at most 2000 characters"));
    }
    let expires_at = match req.expires_in_minutes {
        Some(m) if !(1..=60 * 24 * 30).contains(&m) => {
            return Err(OpError::invalid(
                "expires_in_minutes",
                "must be between 1 and 43200 (30 days)",
            ))
        }
        Some(m) => Some(prism_store::now_ms() + m * 60_000),
        None => None,
    };
    let mut tx = ctx.store.begin().await?;
    let (app, roles) = access::application(&mut tx, caller, name).await?;
    may_hold(&Actor { roles, system: false })?;
    let environment = environments::by_name(&mut tx, env).await?;
    let slot = slots::get(&mut tx, app.id, environment.id).await?;
    if let Some(h) = slot.view().hold {
        return Err(OpError::conflict_as(
            "held",
            format!("{env} is already held by {} for {}", h.holder, h.release),
        )
        .field("environment"));
    }
    let current = slot.current_release_id.ok_or_else(|| {
        OpError::conflict_as(
            "nothing_deployed",
            format!("no release runs in {env} yet; there is nothing to hold"),
        )
        .field("environment")
    })?;
    slots::hold(
        &mut tx,
        app.id,
        environment.id,
        current,
        &caller.user.username,
        &req.note,
        expires_at,
    )
    .await?;
    let rid = ReleaseId::from_seq(current);
    audit::record(
        &mut tx,
        &caller.origin(),
        "environment.hold",
        "application",
        name,
        json!({"environment": env, "release": rid, "note": req.note, "expires_at": expires_at}),
    )
    .await?;
    announce(
        &mut tx,
        Event {
            kind: NoticeKind::HoldPlaced,
            project_id: app.project_id,
            application: &app.name,
            release: rid,
            environment: Some(&environment.name),
            actor: &caller.user.username,
            reason: Some(&req.note),
            link: format!("/apps/{}", app.name),
        },
    )
    .await?;
    let board = slots::board(&mut tx, None, BoardScope::Application(app.id)).await?;
    tx.commit().await?;
    Ok(board)
}

/// Lifts the hold on `env`; `reason` is required to lift someone else's.
pub async fn unhold(
    ctx: &Ctx,
    caller: &Caller,
    name: &str,
    env: &str,
    reason: Option<String>,
) -> OpResult<Vec<BoardCell>> {
    let mut tx = ctx.store.begin().await?;
    let (app, roles) = access::application(&mut tx, caller, name).await?;
    let environment = environments::by_name(&mut tx, env).await?;
    let slot = slots::get(&mut tx, app.id, environment.id).await?;
    let hold = slot
        .view()
        .hold
        .ok_or_else(|| OpError::conflict_as("not_held", format!("{env} is not held")).field("environment"))?;
    let overrode = may_release_hold(
        &Actor { roles, system: false },
        &caller.user.username,
        &hold,
        reason.as_deref(),
    )?;
    slots::release_hold(&mut tx, app.id, environment.id, hold.release.seq()).await?;
    let detail = json!({"environment": env, "release": hold.release, "holder": hold.holder, "override": overrode, "reason": reason});
    audit::record(
        &mut tx,
        &caller.origin(),
        "environment.unhold",
        "application",
        name,
        detail,
    )
    .await?;
    if overrode {
        announce(
            &mut tx,
            Event {
                kind: NoticeKind::HoldOverridden,
                project_id: app.project_id,
                application: &app.name,
                release: hold.release,
                environment: Some(&environment.name),
                actor: &caller.user.username,
                reason: reason.as_deref(),
                link: format!("/apps/{}", app.name),
            },
        )
        .await?;
    }
    let board = slots::board(&mut tx, None, BoardScope::Application(app.id)).await?;
    tx.commit().await?;
    Ok(board)
}

/// Most applications one page of the board holds, and the default.
pub const BOARD_PAGE_MAX: i64 = 500;
pub const BOARD_PAGE_DEFAULT: i64 = 100;

/// Which part of the board to read: one application's row, or a page of
/// applications by name.
#[derive(Debug, Default)]
pub struct BoardQuery {
    pub application: Option<String>,
    /// Applications whose name sorts after this one (the last of the previous page).
    pub after: Option<String>,
    pub limit: Option<i64>,
}

/// The applications x environments board the caller may see: one
/// application's row, or a page of applications (`limit` of them, default
/// 100, after `after`).
pub async fn board(ctx: &Ctx, caller: &Caller, q: &BoardQuery) -> OpResult<Vec<BoardCell>> {
    let limit = q.limit.unwrap_or(BOARD_PAGE_DEFAULT);
    if !(1..=BOARD_PAGE_MAX).contains(&limit) {
        return Err(OpError::invalid(
            "limit",
            format!("must be between 1 and {BOARD_PAGE_MAX}"),
        ));
    }
    let mut c = ctx.store.conn().await?;
    let scope = match &q.application {
        Some(a) => BoardScope::Application(access::application(&mut c, caller, a).await?.0.id),
        None => BoardScope::Page {
            after: q.after.as_deref(),
            limit,
        },
    };
    Ok(slots::board(&mut c, access::visibility(caller), scope).await?)
}
