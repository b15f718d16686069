//! A build's state machine: one attempt to turn a release into an image.
//!
//! ```text
//! queued -> checkout -> building -> pushing -> succeeded
//!    \          \            \          \
//!     +----------+------------+----------+--> failed (a FailureKind)
//!                                          --> cancelled
//! checkout | building | pushing --Restart--> queued   (the server died: run again from a fresh workspace)
//! ```
//!
//! [`BuildState::next`] is the one place a transition is judged; the build job
//! and the store's conditional update both follow it.

use crate::words;

words! {
    /// Where a base image's build is (a base registered as it is starts
    /// `succeeded`; one with a recipe `never` until its first build).
    pub enum BaseBuildState {
        Never => "never",
        Queued => "queued",
        Building => "building",
        Succeeded => "succeeded",
        Failed => "failed",
    }
}

words! {
    /// Where a build is.
    pub enum BuildState {
        Queued => "queued",
        Checkout => "checkout",
        Building => "building",
        Pushing => "pushing",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
    }
}

words! {
    /// Why a build failed: shown to people, counted in the failure metric.
    pub enum BuildFailure {
        /// The git ref does not exist in the repository.
        RefNotFound => "ref_not_found",
        /// The git server refused the credential.
        AuthRefused => "auth_refused",
        /// Checkout failed otherwise (network, repository missing).
        Checkout => "checkout",
        /// The build command exited non-zero or was killed.
        Build => "build",
        /// The build ran past its timeout.
        Timeout => "timeout",
        /// A person cancelled it.
        Cancelled => "cancelled",
        /// The artifacts could not be collected (missing, outside the workspace).
        Artifact => "artifact",
        /// The base image is not in its registry.
        BaseNotFound => "base_not_found",
        /// The registry refused the push.
        Push => "push",
        /// The build's settings or references are wrong.
        Config => "config",
        /// Prism itself failed (store, workspace).
        Internal => "internal",
        /// The build lost its runner and had no attempt left.
        Interrupted => "interrupted",
        /// The server stopped during it repeatedly; quarantined.
        Crashed => "crashed",
    }
}

words! {
    /// What happens to a build.
    pub enum BuildStep {
        /// The runner starts work: checkout begins.
        Start => "start",
        /// The commit is checked out: the build command runs.
        CheckedOut => "checked_out",
        /// The command finished: the image is assembled and pushed.
        Built => "built",
        /// The image is in the registry.
        Pushed => "pushed",
        /// The server died mid-build: start again from a fresh workspace.
        Restart => "restart",
        /// The build failed (see [`BuildEvent::Fail`]).
        Fail => "fail",
        /// A person cancelled it.
        Cancel => "cancel",
    }
}

/// An event with its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildEvent {
    Start,
    CheckedOut,
    Built,
    Pushed,
    Restart,
    Fail(BuildFailure),
    Cancel,
}

impl BuildEvent {
    pub fn step(self) -> BuildStep {
        match self {
            Self::Start => BuildStep::Start,
            Self::CheckedOut => BuildStep::CheckedOut,
            Self::Built => BuildStep::Built,
            Self::Pushed => BuildStep::Pushed,
            Self::Restart => BuildStep::Restart,
            Self::Fail(_) => BuildStep::Fail,
            Self::Cancel => BuildStep::Cancel,
        }
    }
}

/// A transition the machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step {step:?} is not allowed when the build is {from}")]
pub struct BuildTransitionError {
    pub from: BuildState,
    pub step: BuildStep,
}

impl BuildState {
    /// States in which the build still has work ahead of it.
    pub const ACTIVE: [BuildState; 4] = [Self::Queued, Self::Checkout, Self::Building, Self::Pushing];

    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    pub fn is_active(self) -> bool {
        !self.is_final()
    }

    /// The state after `event`, or why it cannot happen.
    pub fn next(self, event: BuildEvent) -> Result<BuildState, BuildTransitionError> {
        use BuildState::*;
        let next = match (self, event) {
            (Queued, BuildEvent::Start) => Checkout,
            (Checkout, BuildEvent::CheckedOut) => Building,
            (Building, BuildEvent::Built) => Pushing,
            (Pushing, BuildEvent::Pushed) => Succeeded,
            (Checkout | Building | Pushing, BuildEvent::Restart) => Queued,
            // A cancellation that reaches the pipeline as a failure ends as cancelled.
            (s, BuildEvent::Fail(BuildFailure::Cancelled)) | (s, BuildEvent::Cancel) if s.is_active() => Cancelled,
            (s, BuildEvent::Fail(_)) if s.is_active() => Failed,
            (from, event) => {
                return Err(BuildTransitionError {
                    from,
                    step: event.step(),
                })
            }
        };
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> Vec<BuildEvent> {
        let mut v = vec![
            BuildEvent::Start,
            BuildEvent::CheckedOut,
            BuildEvent::Built,
            BuildEvent::Pushed,
            BuildEvent::Restart,
            BuildEvent::Cancel,
        ];
        v.extend(BuildFailure::ALL.iter().map(|f| BuildEvent::Fail(*f)));
        v
    }

    #[test]
    fn the_happy_path_ends_succeeded() {
        let mut s = BuildState::Queued;
        for e in [
            BuildEvent::Start,
            BuildEvent::CheckedOut,
            BuildEvent::Built,
            BuildEvent::Pushed,
        ] {
            s = s.next(e).unwrap();
        }
        assert_eq!(s, BuildState::Succeeded);
    }

    #[test]
    fn every_state_and_event_pair_is_judged() {
        // The full table: what each (state, event) gives.
        for &s in BuildState::ALL {
            for e in events() {
                let got = s.next(e);
                let want = match (s, e) {
                    (BuildState::Queued, BuildEvent::Start) => Some(BuildState::Checkout),
                    (BuildState::Checkout, BuildEvent::CheckedOut) => Some(BuildState::Building),
                    (BuildState::Building, BuildEvent::Built) => Some(BuildState::Pushing),
                    (BuildState::Pushing, BuildEvent::Pushed) => Some(BuildState::Succeeded),
                    (BuildState::Checkout | BuildState::Building | BuildState::Pushing, BuildEvent::Restart) => {
                        Some(BuildState::Queued)
                    }
                    (s, BuildEvent::Cancel | BuildEvent::Fail(BuildFailure::Cancelled)) if !s.is_final() => {
                        Some(BuildState::Cancelled)
                    }
                    (s, BuildEvent::Fail(_)) if !s.is_final() => Some(BuildState::Failed),
                    _ => None,
                };
                match want {
                    Some(w) => assert_eq!(got, Ok(w), "{s} + {e:?}"),
                    None => assert_eq!(
                        got,
                        Err(BuildTransitionError {
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
    fn final_states_accept_nothing() {
        for s in [BuildState::Succeeded, BuildState::Failed, BuildState::Cancelled] {
            for e in events() {
                assert!(s.next(e).is_err(), "{s} + {e:?}");
            }
        }
    }

    #[test]
    fn a_queued_build_cannot_restart_or_skip_ahead() {
        assert!(BuildState::Queued.next(BuildEvent::Restart).is_err());
        assert!(BuildState::Queued.next(BuildEvent::Pushed).is_err());
        assert_eq!(
            BuildState::Queued.next(BuildEvent::Built).unwrap_err().to_string(),
            "step Built is not allowed when the build is queued"
        );
    }

    #[test]
    fn words_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for s in BuildState::ALL {
            assert_eq!(BuildState::parse(s.as_str()), Some(*s));
            assert!(seen.insert(s.as_str()));
        }
        for f in BuildFailure::ALL {
            assert_eq!(f.as_str().parse::<BuildFailure>(), Ok(*f));
        }
        assert!("Succeeded".parse::<BuildState>().is_err());
        assert_eq!(
            serde_json::to_string(&BuildFailure::BaseNotFound).unwrap(),
            "\"base_not_found\""
        );
        assert_eq!(
            serde_json::from_str::<BuildState>("\"pushing\"").unwrap(),
            BuildState::Pushing
        );
        assert!(serde_json::from_str::<BuildState>("\"nope\"").is_err());
    }

    #[test]
    fn active_is_the_complement_of_final() {
        for s in BuildState::ALL {
            assert_eq!(BuildState::ACTIVE.contains(s), !s.is_final());
        }
    }
}
