//! Moves a release through its state machine: reads the release, the
//! lifecycle and the slot it concerns inside one write transaction, asks the
//! domain's `decide`, then applies the decision (compare-and-set on the
//! release's and the slot's versions) and writes the audit event. Two
//! concurrent moves into one environment cannot both win: the loser sees the
//! winner's effects (SQLite serialises writers) or fails its compare-and-set
//! (PostgreSQL), and gets 409 either way.

use crate::wire::ToApi;
use prism_domain::release::{decide, Action, Actor};
use prism_domain::ReleaseId;
use prism_domain::RoleSet;
use prism_store::audit::Origin;
use prism_store::releases::{self, BuildInfo, Release, Step};
use prism_store::{audit, environments, slots, Store, Tx};
use serde_json::json;

use crate::auth::Caller;
use crate::ops::{OpError, OpResult};

pub struct Move<'a> {
    pub action: Action,
    pub note: &'a str,
    pub build_info: Option<BuildInfo<'a>>,
}

/// Who moves a release: a signed-in user, Prism's own engine, or an
/// application's git webhook (which acts as a developer of its project).
pub enum Who<'a> {
    User(&'a Caller),
    Engine(&'static str),
    Webhook(Origin),
}

impl Who<'_> {
    pub(crate) fn origin(&self) -> Origin {
        match self {
            Who::User(c) => c.origin(),
            Who::Engine(what) => Origin::system(what),
            Who::Webhook(origin) => origin.clone(),
        }
    }
}

pub async fn transition(store: &Store, caller: &Caller, id: ReleaseId, m: Move<'_>) -> OpResult<Release> {
    let mut tx = store.begin().await?;
    crate::idempotency::claim(&mut tx, caller).await?;
    let rel = transition_in(&mut tx, &Who::User(caller), id, m).await?;
    crate::idempotency::complete(&mut tx, caller, crate::idempotency::Answer::Ok, &rel.clone().to_api()).await?;
    tx.commit().await?;
    Ok(rel)
}

/// One transition inside the caller's transaction (so a deploy record and the
/// release's move land together).
pub async fn transition_in(tx: &mut Tx, who: &Who<'_>, id: ReleaseId, m: Move<'_>) -> OpResult<Release> {
    let rel = releases::get(tx, id).await?;
    let actor = match who {
        Who::User(caller) => {
            let roles = super::access::roles_in(tx, caller, rel.project_id).await?;
            if !roles.is_member() {
                return Err(OpError::not_found("release", id));
            }
            // Admins act as Prism's engine when reporting build and deploy results
            // (a CI integration authenticates as an admin's token).
            Actor {
                roles,
                // Only an admin's API token (a CI integration), not a browser
                // session, may report results as Prism's engine.
                system: caller.is_admin()
                    && matches!(caller.credential, crate::auth::caller::Credential::ApiToken { .. }),
            }
        }
        Who::Engine(_) => Actor {
            roles: RoleSet::admin(),
            system: true,
        },
        Who::Webhook(_) => Actor {
            roles: RoleSet::of([prism_domain::Role::Developer]),
            system: false,
        },
    };
    let origin = who.origin();
    let lifecycle = environments::lifecycle(tx).await?;
    let slot_env = match m.action {
        Action::Promote { to, .. } => Some(to),
        Action::StartDeploy { env } => Some(env),
        _ => rel.parsed_state.env(),
    };
    let slot = match slot_env {
        Some(env) => Some(slots::get(tx, rel.app_id, env).await?),
        None => None,
    };
    let view = slot.as_ref().map(|s| s.view()).unwrap_or_default();
    let decision = decide(&lifecycle, &actor, rel.id, rel.parsed_state, &m.action, &view)?;
    let step = Step {
        action: m.action.name(),
        slot_version: slot.as_ref().map(|s| s.version),
        actor_id: origin.actor_id,
        actor: &origin.actor,
        note: m.note,
    };
    releases::apply(tx, &rel, &decision, &step).await?;
    if let Some(info) = m.build_info {
        releases::set_build_info(tx, id, info).await?;
    }
    let env_name = |e: Option<i64>| {
        e.and_then(|e| lifecycle.iter().find(|s| s.id == e))
            .map(|s| s.name.clone())
    };
    let detail = json!({
        "from": rel.parsed_state.kind(),
        "from_environment": env_name(rel.parsed_state.env()),
        "to": decision.next.kind(),
        "to_environment": env_name(decision.next.env()),
        "note": m.note,
        "overrode_hold": decision.overrode_hold.as_ref().map(|h| json!({"release": h.release, "holder": h.holder})),
        "override_reason": match &m.action { Action::Promote { override_reason, .. } => override_reason.clone(), _ => None },
    });
    audit::record(
        tx,
        &origin,
        &format!("release.{}", m.action.name()),
        "release",
        &id.to_string(),
        detail,
    )
    .await?;
    if decision.overrode_hold.is_some() {
        // A promotion over a tester's hold: the tester and the team hear of it.
        let (to, reason) = match &m.action {
            Action::Promote { to, override_reason } => (Some(*to), override_reason.as_deref()),
            _ => (None, None),
        };
        let env = env_name(to);
        crate::services::notices::announce(
            tx,
            crate::services::notices::Event {
                kind: prism_notify::NoticeKind::HoldOverridden,
                project_id: rel.project_id,
                application: &rel.application,
                release: id,
                environment: env.as_deref(),
                actor: &origin.actor,
                reason,
                link: format!("/releases/{id}"),
            },
        )
        .await?;
    }
    Ok(releases::get(tx, id).await?)
}
