//! A deploy's state machine: one release into one application x environment.
//!
//! ```text
//! planning --Planned{review}--> awaiting_review --Approve--> applying
//!          --Planned{no review}-------------------------->  applying --Applied--> watching --RolledOut--> succeeded
//! awaiting_review --Reject--> rejected
//! planning | awaiting_review --Cancel--> cancelled
//! planning | applying | watching --Fail(kind)--> failed
//! planning | awaiting_review --Wait--> waiting_window --WindowOpened--> applying
//! waiting_window --Cancel--> cancelled, --Fail(kind)--> failed
//! ```
//!
//! `Wait` is taken instead of `Planned{no review}` or `Approve` when the
//! environment's schedule (windows, freezes) says deploying is closed: the
//! deploy is planned and approved, and applies when deploying opens.
//!
//! [`DeployState::next`] is the one place a transition is judged. A
//! rollback is a deploy of kind [`DeployKind::Rollback`]; it never waits
//! for review (it restores what was reviewed before).

use crate::words;

words! {
    /// Where a deploy is.
    pub enum DeployState {
        Planning => "planning",
        AwaitingReview => "awaiting_review",
        /// Planned and approved; deploying into its environment is closed
        /// (outside its windows, a deny window, a freeze) until a known time.
        WaitingWindow => "waiting_window",
        Applying => "applying",
        Watching => "watching",
        Succeeded => "succeeded",
        Failed => "failed",
        Rejected => "rejected",
        Cancelled => "cancelled",
    }
}

words! {
    /// A deploy of a release, or a rollback to an earlier one.
    pub enum DeployKind {
        Deploy => "deploy",
        Rollback => "rollback",
    }
}

words! {
    /// Why a deploy failed: shown to people, counted in the failure metric.
    pub enum DeployFailure {
        /// The manifests did not render or validate.
        Render => "render",
        /// The cluster refused the objects (dry run or apply).
        Apply => "apply",
        /// The rollout did not complete (progress deadline, pods failing).
        Rollout => "rollout",
        /// The cluster could not be reached after every attempt.
        Unreachable => "unreachable",
        /// The deploy lost its runner and had no attempt left.
        Interrupted => "interrupted",
        /// The server stopped during it repeatedly; quarantined.
        Crashed => "crashed",
        /// Prism itself failed (store).
        Internal => "internal",
        /// A canary's or blue-green check's metric gate failed (or stayed inconclusive).
        Gate => "gate",
        /// A person aborted a canary or blue-green rollout.
        Aborted => "aborted",
    }
}

words! {
    /// What happens to a deploy.
    pub enum DeployStep {
        Planned => "planned",
        Approve => "approve",
        Reject => "reject",
        Applied => "applied",
        RolledOut => "rolled_out",
        Fail => "fail",
        Cancel => "cancel",
        Wait => "wait",
        WindowOpened => "window_opened",
    }
}

/// An event with its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployEvent {
    /// Rendered, validated and diffed; `review` when a person must confirm.
    Planned {
        review: bool,
    },
    Approve,
    Reject,
    Applied,
    RolledOut,
    Fail(DeployFailure),
    Cancel,
    /// Ready to apply, but deploying is closed: wait for the window.
    Wait,
    /// Deploying opened (or glass was broken): apply.
    WindowOpened,
}

impl DeployEvent {
    pub fn step(self) -> DeployStep {
        match self {
            Self::Planned { .. } => DeployStep::Planned,
            Self::Approve => DeployStep::Approve,
            Self::Reject => DeployStep::Reject,
            Self::Applied => DeployStep::Applied,
            Self::RolledOut => DeployStep::RolledOut,
            Self::Fail(_) => DeployStep::Fail,
            Self::Cancel => DeployStep::Cancel,
            Self::Wait => DeployStep::Wait,
            Self::WindowOpened => DeployStep::WindowOpened,
        }
    }
}

/// A transition the machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step {step:?} is not allowed when the deploy is {from}")]
pub struct DeployTransitionError {
    pub from: DeployState,
    pub step: DeployStep,
}

impl DeployState {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Rejected | Self::Cancelled)
    }

    /// States in which the deploy job has work to do (not waiting for a person).
    pub fn is_running(self) -> bool {
        matches!(self, Self::Planning | Self::Applying | Self::Watching)
    }

    /// Whether objects may already have reached the cluster (so a failure
    /// from here on may call for a rollback).
    pub fn has_applied(self) -> bool {
        matches!(self, Self::Applying | Self::Watching)
    }

    /// The state after `event`, or why it cannot happen.
    pub fn next(self, event: DeployEvent) -> Result<DeployState, DeployTransitionError> {
        use DeployState::*;
        let next = match (self, event) {
            (Planning, DeployEvent::Planned { review: true }) => AwaitingReview,
            (Planning, DeployEvent::Planned { review: false }) => Applying,
            (AwaitingReview, DeployEvent::Approve) => Applying,
            (AwaitingReview, DeployEvent::Reject) => Rejected,
            (Applying, DeployEvent::Applied) => Watching,
            (Watching, DeployEvent::RolledOut) => Succeeded,
            (Planning | AwaitingReview, DeployEvent::Wait) => WaitingWindow,
            (WaitingWindow, DeployEvent::WindowOpened) => Applying,
            (Planning | AwaitingReview | WaitingWindow, DeployEvent::Cancel) => Cancelled,
            (Planning | AwaitingReview | WaitingWindow | Applying | Watching, DeployEvent::Fail(_)) => Failed,
            (from, event) => {
                return Err(DeployTransitionError {
                    from,
                    step: event.step(),
                })
            }
        };
        Ok(next)
    }
}

impl DeployKind {
    /// Whether a deploy of this kind waits for a person where the
    /// environment asks for review. A rollback restores what was reviewed.
    pub fn needs_review(self, environment_requires_review: bool) -> bool {
        environment_requires_review && self == DeployKind::Deploy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> Vec<DeployEvent> {
        let mut v = vec![
            DeployEvent::Planned { review: true },
            DeployEvent::Planned { review: false },
            DeployEvent::Approve,
            DeployEvent::Reject,
            DeployEvent::Applied,
            DeployEvent::RolledOut,
            DeployEvent::Cancel,
            DeployEvent::Wait,
            DeployEvent::WindowOpened,
        ];
        v.extend(DeployFailure::ALL.iter().map(|f| DeployEvent::Fail(*f)));
        v
    }

    #[test]
    fn reviewed_and_unreviewed_paths_end_succeeded() {
        let reviewed = [
            DeployEvent::Planned { review: true },
            DeployEvent::Approve,
            DeployEvent::Applied,
            DeployEvent::RolledOut,
        ];
        let direct = [
            DeployEvent::Planned { review: false },
            DeployEvent::Applied,
            DeployEvent::RolledOut,
        ];
        for path in [&reviewed[..], &direct[..]] {
            let end = path.iter().try_fold(DeployState::Planning, |s, e| s.next(*e));
            assert_eq!(end, Ok(DeployState::Succeeded));
        }
    }

    #[test]
    fn every_state_and_event_pair_is_judged() {
        use DeployState::*;
        for &s in DeployState::ALL {
            for e in events() {
                let want = match (s, e) {
                    (Planning, DeployEvent::Planned { review: true }) => Some(AwaitingReview),
                    (Planning, DeployEvent::Planned { review: false }) => Some(Applying),
                    (AwaitingReview, DeployEvent::Approve) => Some(Applying),
                    (AwaitingReview, DeployEvent::Reject) => Some(Rejected),
                    (Applying, DeployEvent::Applied) => Some(Watching),
                    (Watching, DeployEvent::RolledOut) => Some(Succeeded),
                    (Planning | AwaitingReview, DeployEvent::Wait) => Some(WaitingWindow),
                    (WaitingWindow, DeployEvent::WindowOpened) => Some(Applying),
                    (Planning | AwaitingReview | WaitingWindow, DeployEvent::Cancel) => Some(Cancelled),
                    (s, DeployEvent::Fail(_)) if !s.is_final() => Some(Failed),
                    _ => None,
                };
                match want {
                    Some(w) => assert_eq!(s.next(e), Ok(w), "{s} + {e:?}"),
                    None => assert_eq!(
                        s.next(e),
                        Err(DeployTransitionError {
                            from: s,
                            step: e.step()
                        }),
                        "{s} + {e:?}"
                    ),
                }
            }
        }
    }

    #[test]
    fn a_closed_window_parks_a_ready_deploy_until_it_opens() {
        let path = [
            DeployEvent::Planned { review: true },
            DeployEvent::Wait,
            DeployEvent::WindowOpened,
            DeployEvent::Applied,
            DeployEvent::RolledOut,
        ];
        let end = path.iter().try_fold(DeployState::Planning, |s, e| s.next(*e));
        assert_eq!(end, Ok(DeployState::Succeeded));
        assert_eq!(
            DeployState::Planning.next(DeployEvent::Wait),
            Ok(DeployState::WaitingWindow)
        );
        // Waiting is not work for the job's resume sweep, and nothing is applied yet.
        assert!(!DeployState::WaitingWindow.is_running());
        assert!(!DeployState::WaitingWindow.has_applied());
        assert!(DeployState::Applying.next(DeployEvent::Wait).is_err());
    }

    #[test]
    fn nothing_leaves_a_final_state() {
        for &s in DeployState::ALL.iter().filter(|s| s.is_final()) {
            for e in events() {
                assert!(s.next(e).is_err(), "{s} + {e:?}");
            }
        }
    }

    #[test]
    fn applied_objects_cannot_be_cancelled_only_failed() {
        for s in [DeployState::Applying, DeployState::Watching] {
            assert!(s.next(DeployEvent::Cancel).is_err());
            assert!(s.has_applied());
            assert_eq!(
                s.next(DeployEvent::Fail(DeployFailure::Rollout)),
                Ok(DeployState::Failed)
            );
        }
        assert!(!DeployState::AwaitingReview.has_applied());
    }

    #[test]
    fn a_rollback_never_waits_for_review() {
        assert!(DeployKind::Deploy.needs_review(true));
        assert!(!DeployKind::Deploy.needs_review(false));
        assert!(!DeployKind::Rollback.needs_review(true));
    }

    #[test]
    fn running_states_are_those_the_job_advances() {
        let running: Vec<_> = DeployState::ALL
            .iter()
            .filter(|s| s.is_running())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(running, ["planning", "applying", "watching"]);
    }

    #[test]
    fn words_round_trip() {
        for s in DeployState::ALL {
            assert_eq!(s.as_str().parse::<DeployState>(), Ok(*s));
        }
        for k in DeployKind::ALL {
            assert_eq!(DeployKind::parse(k.as_str()), Some(*k));
        }
        for f in DeployFailure::ALL {
            assert_eq!(DeployFailure::parse(f.as_str()), Some(*f));
        }
        let err = "paused".parse::<DeployState>().unwrap_err();
        assert_eq!(err.to_string(), "\"paused\" is not a DeployState");
    }
}
