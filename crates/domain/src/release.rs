//! The release order's state machine.
//!
//! ```text
//! created -> building -> built | build_failed (-> building again)
//! built -> promoted(E) -> deploying(E) -> deployed(E) | deploy_failed(E)
//! deployed(E) -> passed(E) -> promoted(next E) -> ...
//! any non-final state -> closed | abandoned
//! ```
//!
//! [`decide`] is the single place where a transition is judged: the caller's
//! roles against the environment's policy, the lifecycle order, and the hold
//! and in-flight release on the target environment. It returns the next state
//! and the effects on the application x environment slots; the store applies
//! both atomically (and refuses if either changed since they were read).

use std::fmt;

use serde::Serialize;

use crate::{EnvPolicy, ReleaseId, Role, RoleSet, ValidationError};

pub type EnvId = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "env", rename_all = "snake_case")]
pub enum ReleaseState {
    Created,
    Building,
    Built,
    BuildFailed,
    Promoted(EnvId),
    Deploying(EnvId),
    Deployed(EnvId),
    DeployFailed(EnvId),
    Passed(EnvId),
    Closed,
    Abandoned,
}

impl ReleaseState {
    pub const KINDS: [&'static str; 11] = [
        "created",
        "building",
        "built",
        "build_failed",
        "promoted",
        "deploying",
        "deployed",
        "deploy_failed",
        "passed",
        "closed",
        "abandoned",
    ];

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Building => "building",
            Self::Built => "built",
            Self::BuildFailed => "build_failed",
            Self::Promoted(_) => "promoted",
            Self::Deploying(_) => "deploying",
            Self::Deployed(_) => "deployed",
            Self::DeployFailed(_) => "deploy_failed",
            Self::Passed(_) => "passed",
            Self::Closed => "closed",
            Self::Abandoned => "abandoned",
        }
    }

    pub fn env(&self) -> Option<EnvId> {
        match *self {
            Self::Promoted(e) | Self::Deploying(e) | Self::Deployed(e) | Self::DeployFailed(e) | Self::Passed(e) => {
                Some(e)
            }
            _ => None,
        }
    }

    /// Rebuilds a state from its stored parts; `None` if they do not fit.
    pub fn from_parts(kind: &str, env: Option<EnvId>) -> Option<Self> {
        Some(match (kind, env) {
            ("created", None) => Self::Created,
            ("building", None) => Self::Building,
            ("built", None) => Self::Built,
            ("build_failed", None) => Self::BuildFailed,
            ("promoted", Some(e)) => Self::Promoted(e),
            ("deploying", Some(e)) => Self::Deploying(e),
            ("deployed", Some(e)) => Self::Deployed(e),
            ("deploy_failed", Some(e)) => Self::DeployFailed(e),
            ("passed", Some(e)) => Self::Passed(e),
            ("closed", None) => Self::Closed,
            ("abandoned", None) => Self::Abandoned,
            _ => return None,
        })
    }

    pub fn is_final(&self) -> bool {
        matches!(self, Self::Closed | Self::Abandoned)
    }

    /// A release that occupies its environment: promoted there or deploying.
    /// Only one release per application may occupy an environment at a time.
    pub fn occupies(&self, env: EnvId) -> bool {
        matches!(*self, Self::Promoted(e) | Self::Deploying(e) if e == env)
    }
}

impl fmt::Display for ReleaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.env() {
            Some(e) => write!(f, "{}(env {e})", self.kind()),
            None => f.write_str(self.kind()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    StartBuild,
    BuildSucceeded,
    BuildFailed,
    Promote { to: EnvId, override_reason: Option<String> },
    StartDeploy { env: EnvId },
    DeploySucceeded,
    DeployFailed,
    Pass,
    Close,
    Abandon,
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::StartBuild => "start_build",
            Action::BuildSucceeded => "build_succeeded",
            Action::BuildFailed => "build_failed",
            Action::Promote { .. } => "promote",
            Action::StartDeploy { .. } => "deploy",
            Action::DeploySucceeded => "deploy_succeeded",
            Action::DeployFailed => "deploy_failed",
            Action::Pass => "pass",
            Action::Close => "close",
            Action::Abandon => "abandon",
        }
    }
}

/// One environment of the lifecycle, in order.
#[derive(Debug, Clone)]
pub struct EnvStep {
    pub id: EnvId,
    pub name: String,
    pub position: i64,
    pub policy: EnvPolicy,
}

/// Who is acting: their roles in the release's project, and whether this is
/// Prism's own engine (or an admin's CI integration) reporting a result.
#[derive(Debug, Clone, Copy)]
pub struct Actor {
    pub roles: RoleSet,
    pub system: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub release: ReleaseId,
    pub holder: String,
}

/// What the store knows of the application x environment slot the action
/// concerns (the target of a promotion or deploy, else the current one).
#[derive(Debug, Clone, Default)]
pub struct SlotView {
    pub hold: Option<Hold>,
    /// The release currently promoted into or deploying in that environment.
    pub incoming: Option<(ReleaseId, ReleaseState)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotEffect {
    /// The release now occupies this environment.
    SetIncoming(EnvId),
    /// The release no longer occupies this environment (if it did).
    ClearIncoming(EnvId),
    /// The release is what runs in this environment now.
    SetCurrent(EnvId),
    /// The hold on this environment ends.
    ClearHold(EnvId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub next: ReleaseState,
    pub effects: Vec<SlotEffect>,
    /// Set when an operator overrode another release's hold; audited.
    pub overrode_hold: Option<Hold>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The caller lacks the role this step needs.
    #[error("{action} needs the role {needed}")]
    Forbidden { action: &'static str, needed: String },
    /// The step does not apply to the release's current state.
    #[error("cannot {action} a release that is {from}")]
    NotAllowed { action: &'static str, from: &'static str },
    /// The target environment is out of lifecycle order.
    #[error("{0}")]
    OutOfOrder(String),
    /// The target environment is held for testing of another release.
    #[error("environment {env} is held for testing of {} by {}", hold.release, hold.holder)]
    Held { env: String, hold: Hold },
    /// Another release is already promoted into or deploying in the environment.
    #[error("environment {env} is busy with {release}, which is {state}")]
    Busy {
        env: String,
        release: ReleaseId,
        state: &'static str,
    },
    /// The environment is not part of the lifecycle.
    #[error("unknown environment {0}")]
    UnknownEnv(EnvId),
    /// Invalid input, such as an empty override reason.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

fn require(actor: &Actor, action: &'static str, roles: &[Role]) -> Result<(), TransitionError> {
    if actor.roles.has_any(roles) {
        Ok(())
    } else {
        Err(TransitionError::Forbidden {
            action,
            needed: roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(" or "),
        })
    }
}

fn require_system(actor: &Actor, action: &'static str) -> Result<(), TransitionError> {
    if actor.system {
        Ok(())
    } else {
        Err(TransitionError::Forbidden {
            action,
            needed: "admin (build and deploy results come from Prism's engine or an admin's integration)".into(),
        })
    }
}

fn step(lifecycle: &[EnvStep], id: EnvId) -> Result<&EnvStep, TransitionError> {
    lifecycle
        .iter()
        .find(|e| e.id == id)
        .ok_or(TransitionError::UnknownEnv(id))
}

/// The roles that may move a release into `target`: testers and operators
/// always, developers where the environment lets them deploy.
fn promoter_roles(target: &EnvStep) -> Vec<Role> {
    let mut roles = vec![Role::Tester, Role::Operator];
    if target.policy.allows_deploy_by(Role::Developer) {
        roles.push(Role::Developer);
    }
    roles
}

/// Judges one transition. Pure: everything it needs is in its arguments.
pub fn decide(
    lifecycle: &[EnvStep],
    actor: &Actor,
    release: ReleaseId,
    state: ReleaseState,
    action: &Action,
    slot: &SlotView,
) -> Result<Decision, TransitionError> {
    use ReleaseState as S;
    let name = action.name();
    let not_allowed = || TransitionError::NotAllowed {
        action: name,
        from: state.kind(),
    };
    let plain = |next| {
        Ok(Decision {
            next,
            effects: vec![],
            overrode_hold: None,
        })
    };
    match action {
        Action::StartBuild => {
            if !actor.system {
                require(actor, name, &[Role::Developer])?;
            }
            match state {
                S::Created | S::BuildFailed => plain(S::Building),
                _ => Err(not_allowed()),
            }
        }
        Action::BuildSucceeded | Action::BuildFailed => {
            require_system(actor, name)?;
            match state {
                S::Building if *action == Action::BuildSucceeded => plain(S::Built),
                S::Building => plain(S::BuildFailed),
                _ => Err(not_allowed()),
            }
        }
        Action::Promote { to, override_reason } => {
            let target = step(lifecycle, *to)?;
            require(actor, name, &promoter_roles(target))?;
            let from_env = match state {
                S::Built => None,
                S::Promoted(e) | S::Deployed(e) | S::DeployFailed(e) | S::Passed(e) => Some(step(lifecycle, e)?),
                _ => return Err(not_allowed()),
            };
            check_order(lifecycle, state, from_env, target)?;
            let overrode_hold = check_slot(actor, release, target, slot, override_reason.as_deref())?;
            let mut effects = vec![SlotEffect::SetIncoming(target.id)];
            if let Some(from) = from_env {
                effects.push(SlotEffect::ClearIncoming(from.id));
            }
            if overrode_hold.is_some() {
                effects.push(SlotEffect::ClearHold(target.id));
            }
            Ok(Decision {
                next: S::Promoted(target.id),
                effects,
                overrode_hold,
            })
        }
        Action::StartDeploy { env } => {
            let target = step(lifecycle, *env)?;
            require(actor, name, &target.policy.deploy_roles)?;
            match state {
                S::Promoted(e) | S::DeployFailed(e) | S::Deployed(e) if e == target.id => {}
                _ => return Err(not_allowed()),
            }
            check_slot(actor, release, target, slot, None)?;
            Ok(Decision {
                next: S::Deploying(target.id),
                effects: vec![SlotEffect::SetIncoming(target.id)],
                overrode_hold: None,
            })
        }
        Action::DeploySucceeded | Action::DeployFailed => {
            require_system(actor, name)?;
            match state {
                S::Deploying(e) if *action == Action::DeploySucceeded => Ok(Decision {
                    next: S::Deployed(e),
                    effects: vec![SlotEffect::SetCurrent(e)],
                    overrode_hold: None,
                }),
                S::Deploying(e) => Ok(Decision {
                    next: S::DeployFailed(e),
                    effects: vec![SlotEffect::ClearIncoming(e)],
                    overrode_hold: None,
                }),
                _ => Err(not_allowed()),
            }
        }
        Action::Pass => {
            require(actor, name, &[Role::Tester, Role::Operator])?;
            match state {
                S::Deployed(e) => {
                    let mut effects = vec![];
                    if slot.hold.as_ref().is_some_and(|h| h.release == release) {
                        effects.push(SlotEffect::ClearHold(e));
                    }
                    Ok(Decision {
                        next: S::Passed(e),
                        effects,
                        overrode_hold: None,
                    })
                }
                _ => Err(not_allowed()),
            }
        }
        Action::Close | Action::Abandon => {
            require(actor, name, &Role::ALL)?;
            if state.is_final() {
                return Err(not_allowed());
            }
            let mut effects = vec![];
            if let Some(e) = state.env() {
                effects.push(SlotEffect::ClearIncoming(e));
                if slot.hold.as_ref().is_some_and(|h| h.release == release) {
                    effects.push(SlotEffect::ClearHold(e));
                }
            }
            let next = if *action == Action::Close {
                S::Closed
            } else {
                S::Abandoned
            };
            Ok(Decision {
                next,
                effects,
                overrode_hold: None,
            })
        }
    }
}

fn check_order(
    lifecycle: &[EnvStep],
    state: ReleaseState,
    from: Option<&EnvStep>,
    target: &EnvStep,
) -> Result<(), TransitionError> {
    let previous = lifecycle
        .iter()
        .filter(|e| e.position < target.position)
        .max_by_key(|e| e.position);
    match from {
        None => {
            if let Some(prev) = previous {
                if target.policy.requires_previous {
                    return Err(TransitionError::OutOfOrder(format!(
                        "{} requires the release to pass {} first",
                        target.name, prev.name
                    )));
                }
            }
        }
        Some(from) => {
            if target.position <= from.position {
                return Err(TransitionError::OutOfOrder(format!(
                    "{} does not come after {} in the lifecycle",
                    target.name, from.name
                )));
            }
            if target.policy.requires_previous {
                let prev = previous.expect("a target after `from` has a predecessor");
                let passed_prev = matches!(state, ReleaseState::Passed(e) if e == prev.id);
                if !passed_prev {
                    return Err(TransitionError::OutOfOrder(format!(
                        "{} requires the release to pass {} first",
                        target.name, prev.name
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Refuses a move into an environment that another release holds or occupies.
/// An operator may override a hold, with a reason; the hold then ends.
fn check_slot(
    actor: &Actor,
    release: ReleaseId,
    target: &EnvStep,
    slot: &SlotView,
    override_reason: Option<&str>,
) -> Result<Option<Hold>, TransitionError> {
    if let Some((other, other_state)) = slot.incoming {
        if other != release && other_state.occupies(target.id) {
            return Err(TransitionError::Busy {
                env: target.name.clone(),
                release: other,
                state: other_state.kind(),
            });
        }
    }
    let Some(hold) = slot.hold.as_ref().filter(|h| h.release != release) else {
        if override_reason.is_some() {
            return Err(ValidationError::new("override_reason", "there is no hold to override").into());
        }
        return Ok(None);
    };
    match override_reason {
        None => Err(TransitionError::Held {
            env: target.name.clone(),
            hold: hold.clone(),
        }),
        Some(reason) => {
            if reason.trim().is_empty() {
                return Err(ValidationError::new("override_reason", "an override needs a reason").into());
            }
            require(actor, "override a hold", &[Role::Operator])?;
            Ok(Some(hold.clone()))
        }
    }
}

/// Who may place or lift a hold on an environment.
pub fn may_hold(actor: &Actor) -> Result<(), TransitionError> {
    require(actor, "hold", &[Role::Tester, Role::Operator])
}

/// The holder lifts their own hold; anyone else needs the operator role and a reason.
pub fn may_release_hold(
    actor: &Actor,
    caller: &str,
    hold: &Hold,
    reason: Option<&str>,
) -> Result<bool, TransitionError> {
    require(actor, "release a hold", &[Role::Tester, Role::Operator])?;
    if hold.holder == caller {
        return Ok(false);
    }
    match reason {
        Some(r) if !r.trim().is_empty() => {
            require(actor, "release another user's hold", &[Role::Operator])?;
            Ok(true)
        }
        _ => Err(ValidationError::new(
            "reason",
            format!("the hold belongs to {}; releasing it needs a reason", hold.holder),
        )
        .into()),
    }
}

#[cfg(test)]
mod tests;
