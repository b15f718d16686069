//! Deploy windows, freezes and break-glass: each environment's schedule
//! (set by admins), the gate a ready deploy passes before it applies (open:
//! apply; closed: wait for the next opening, which the deploy job watches),
//! and the admission of a new deploy while deploying is closed (queued,
//! refused, or started by breaking glass with a reason).
//!
//! "Now" is the server's [`crate::clock::Clock`], so tests pin it.

use prism_api::governance::{Openness, ScheduleView};
use prism_domain::window::{ClosedBy, Schedule, Verdict, WhenClosed};
use prism_domain::RoleSet;
use prism_store::deploys::Deploy;
use prism_store::environments::{self, Environment};
use prism_store::{audit, governance, AnyConnection, Tx};
use serde_json::json;

use super::governance_events::{emit, GovernanceEvent};
use super::{access, Ctx, OpError, OpResult};
use crate::auth::caller::Credential;
use crate::auth::Caller;
use crate::clock::Clock;

/// What people read for why deploying is closed.
pub fn closed_text(by: &ClosedBy) -> String {
    match by {
        ClosedBy::OutsideAllowWindows => "outside its deploy windows".into(),
        ClosedBy::DenyWindow { label } if label.is_empty() => "in a deny window".into(),
        ClosedBy::DenyWindow { label } => format!("in the deny window \"{label}\""),
        ClosedBy::Freeze { reason, .. } => format!("frozen: {reason}"),
    }
}

/// Whether deploying is open under `v`, and if not why and until when.
pub fn openness(v: &Verdict) -> Openness {
    match v {
        Verdict::Open => Openness {
            open: true,
            closed_by: None,
            opens_at: None,
            opens_local: None,
        },
        Verdict::Closed { by, next_open } => Openness {
            open: false,
            closed_by: Some(closed_text(by)),
            opens_at: next_open.as_ref().map(|n| n.at_ms),
            opens_local: next_open.as_ref().map(|n| n.local.clone()),
        },
    }
}

/// [`Openness`] in words, for messages (it is an API type, so the words
/// are a server-local trait).
pub trait Describe {
    fn describe(&self) -> String;
}

impl Describe for Openness {
    /// "closed (frozen: ...); deploys at 2026-12-08 22:00 Asia/Shanghai"
    fn describe(&self) -> String {
        if self.open {
            return "open".into();
        }
        let why = self.closed_by.as_deref().unwrap_or("closed");
        match &self.opens_local {
            Some(at) => format!("closed ({why}); deploys at {at}"),
            None => format!("closed ({why}); no opening within a year"),
        }
    }
}

/// The verdict for an environment at the clock's now.
pub async fn verdict(c: &mut AnyConnection, clock: &Clock, env_id: i64) -> OpResult<(Schedule, Verdict)> {
    let s = governance::schedule(c, env_id).await?;
    let v = s.verdict(clock.now_ms());
    Ok((s, v))
}

/// Anyone signed in may read a schedule (it is shown on the board).
pub async fn get_schedule(ctx: &Ctx, _caller: &Caller, env: &str) -> OpResult<ScheduleView> {
    let mut c = ctx.store.conn().await?;
    let e = environments::by_name(&mut c, env).await?;
    let (schedule, v) = verdict(&mut c, &ctx.clock, e.id).await?;
    Ok(ScheduleView {
        environment: e.name,
        schedule,
        now: openness(&v),
    })
}

/// Replaces an environment's schedule (admins). Deploys waiting there are
/// looked at again at once (a freeze lifted early lets them go).
pub async fn put_schedule(ctx: &Ctx, caller: &Caller, env: &str, schedule: Schedule) -> OpResult<ScheduleView> {
    access::require_admin(caller)?;
    schedule.validate("schedule")?;
    let mut tx = ctx.store.begin().await?;
    let e = environments::by_name(&mut tx, env).await?;
    governance::set_schedule(&mut tx, e.id, &schedule, &caller.user.username).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "environment.schedule",
        "environment",
        &e.name,
        serde_json::to_value(&schedule).expect("schedules serialise"),
    )
    .await?;
    for id in governance::waiting(&mut tx, e.id).await? {
        crate::jobs::deploy::enqueue_wait(&mut tx, id, prism_store::now_ms()).await?;
    }
    tx.commit().await?;
    ctx.job_wakeup.notify_one();
    get_schedule(ctx, caller, env).await
}

/// The next opening of every environment that is closed now (for the
/// board and the release page).
pub async fn closed_environments(ctx: &Ctx) -> OpResult<Vec<(String, Openness)>> {
    let mut c = ctx.store.conn().await?;
    let mut out = vec![];
    for e in environments::list(&mut c).await? {
        let (_, v) = verdict(&mut c, &ctx.clock, e.id).await?;
        if !matches!(v, Verdict::Open) {
            out.push((e.name, openness(&v)));
        }
    }
    Ok(out)
}

/// How a deploy requested now is admitted.
pub enum Admission {
    Open,
    /// Closed; it will wait for the next opening after its approvals.
    Queued(Openness),
    /// Closed; the caller broke glass with this reason.
    BreakGlass {
        reason: String,
        closed_by: String,
    },
}

/// A deploy refused admission; a refused break-glass attempt carries what
/// to audit (written by [`audit_refusal`] after the caller's transaction
/// is dropped: on SQLite a second transaction would wait for the first).
pub struct Refused {
    pub error: OpError,
    pub audit: Option<serde_json::Value>,
}

impl From<OpError> for Refused {
    fn from(error: OpError) -> Self {
        Refused { error, audit: None }
    }
}

impl From<prism_store::StoreError> for Refused {
    fn from(e: prism_store::StoreError) -> Self {
        OpError::from(e).into()
    }
}

/// Decides whether a deploy into `env` may be requested now by `caller`
/// (holding `roles`), with an optional break-glass reason.
pub async fn admit(
    ctx: &Ctx,
    tx: &mut Tx,
    caller: &Caller,
    roles: RoleSet,
    env: &Environment,
    break_glass_reason: Option<&str>,
) -> Result<Admission, Refused> {
    let (schedule, v) = verdict(tx, &ctx.clock, env.id).await?;
    let Verdict::Closed { by, .. } = &v else {
        return Ok(Admission::Open);
    };
    let open = openness(&v);
    let Some(reason) = break_glass_reason else {
        return match schedule.when_closed {
            WhenClosed::Queue => Ok(Admission::Queued(open)),
            WhenClosed::Refuse => Err(OpError::conflict_as(
                "closed",
                format!(
                    "deploying to {} is {}; this environment refuses deploys while closed",
                    env.name,
                    open.describe()
                ),
            )
            .field("environment")
            .into()),
        };
    };
    let reason = reason.trim();
    if reason.is_empty() || reason.len() > 1000 {
        return Err(OpError::invalid(
            "break_glass_reason",
            "say why deploying cannot wait (1 to 1000 characters)",
        )
        .into());
    }
    let via_token = matches!(caller.credential, Credential::ApiToken { .. });
    if !schedule.may_break_glass(roles, via_token) {
        let why = if via_token {
            "API tokens never break glass; sign in as a person to deploy during a freeze".to_owned()
        } else if schedule.break_glass_roles.is_empty() {
            format!("nobody but an admin may break glass in {}", env.name)
        } else {
            let names: Vec<&str> = schedule.break_glass_roles.iter().map(|r| r.as_str()).collect();
            format!("breaking glass in {} needs the role {}", env.name, names.join(" or "))
        };
        let audit = json!({"environment": env.name, "reason": reason, "why": why, "closed_by": closed_text(by), "via_token": via_token});
        return Err(Refused {
            error: OpError::forbidden(why),
            audit: Some(audit),
        });
    }
    Ok(Admission::BreakGlass {
        reason: reason.to_owned(),
        closed_by: closed_text(by),
    })
}

/// Audits a refused break-glass attempt (in a transaction of its own).
pub async fn audit_refusal(ctx: &Ctx, caller: &Caller, detail: serde_json::Value) -> OpResult<()> {
    let env = detail["environment"].as_str().unwrap_or_default().to_owned();
    let mut tx = ctx.store.begin().await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "deploy.break_glass_refused",
        "environment",
        &env,
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Marks a new deploy as started by breaking glass, audited and announced.
pub async fn record_break_glass(
    tx: &mut Tx,
    caller: &Caller,
    d: &Deploy,
    reason: &str,
    closed_by: &str,
) -> OpResult<()> {
    let by = &caller.user.username;
    governance::set_break_glass(tx, d.id, by, reason).await?;
    prism_store::deploys::event(
        tx,
        d.id,
        "break_glass",
        &format!(
            "{by} broke glass: deploying to {} is {closed_by}; reason: {reason}",
            d.environment
        ),
        json!({"reason": reason, "closed_by": closed_by}),
    )
    .await?;
    audit::record(
        tx,
        &caller.origin(),
        "deploy.break_glass",
        "deploy",
        &d.id.to_string(),
        json!({"environment": d.environment, "reason": reason, "closed_by": closed_by}),
    )
    .await?;
    emit(
        tx,
        &caller.origin(),
        GovernanceEvent::FreezeBroken {
            deploy: d.id,
            environment: &d.environment,
            by,
            reason,
            closed_by,
        },
    )
    .await?;
    Ok(())
}

/// Where a deploy that is ready to apply goes: to applying when deploying
/// is open (or glass was broken), else it waits for the next opening.
pub enum Gate {
    Apply,
    Wait(Openness),
}

pub async fn gate(c: &mut AnyConnection, clock: &Clock, d: &Deploy) -> OpResult<Gate> {
    if d.break_glass_by.is_some() {
        return Ok(Gate::Apply);
    }
    let (_, v) = verdict(c, clock, d.env_id).await?;
    Ok(match v {
        Verdict::Open => Gate::Apply,
        closed => Gate::Wait(openness(&closed)),
    })
}

/// Records that `d` now waits for its window (its state already moved):
/// when it opens, the event, the announcement and the job that looks again.
pub async fn park(tx: &mut Tx, clock: &Clock, d: &Deploy, open: &Openness) -> prism_store::Result<()> {
    let opens = open.opens_at.zip(open.opens_local.as_deref());
    governance::set_opens(tx, d.id, opens).await?;
    prism_store::deploys::event(
        tx,
        d.id,
        "window",
        &format!("deploying to {} is {}", d.environment, open.describe()),
        json!({"opens_at": open.opens_at, "opens_local": open.opens_local}),
    )
    .await?;
    emit(
        tx,
        &prism_store::audit::Origin::system("windows"),
        GovernanceEvent::DeployWaitingForWindow {
            deploy: d.id,
            environment: &d.environment,
            opens: open.opens_local.as_deref(),
        },
    )
    .await?;
    // No opening within a year: look again hourly (the schedule may change).
    let at = open.opens_at.unwrap_or(clock.now_ms() + 3_600_000);
    crate::jobs::deploy::enqueue_wait(tx, d.id, clock.recheck_at(at)).await
}
