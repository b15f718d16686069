//! A progressive rollout's persisted progress: written by the deploy job
//! before each step's work starts, so a restarted server resumes at the same
//! step (re-applying the same split, never jumping to all-new). What people
//! ask for (promote, pause, resume, abort) is kept apart ([`Command`]) and
//! only the job folds it in here.

use serde::{Deserialize, Serialize};

use super::gate::GateTally;
use super::strategy::Strategy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Canary: the current step's split is being applied and its pods come up.
    /// Blue-green: the new version comes up beside the live one.
    Starting,
    /// The step runs: pause, gates, or a person's word.
    Checking,
    /// Blue-green: switched; the old version is kept for the delay.
    Keeping,
    /// Canary: the stable Deployment takes the new version; the canary goes.
    Finishing,
    Done,
    /// Sending traffic back to the version that ran before (written before
    /// any of that work, so a restart finishes it).
    Aborting,
    /// Traffic went back to the version that ran before.
    Aborted,
}

/// What a person asked a running rollout to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Skip the remaining steps (blue-green: switch now, or end the delay).
    Promote,
    Pause,
    Resume,
    /// Send traffic back to the version that ran before and fail the deploy.
    Abort,
}

impl Command {
    pub fn parse(s: &str) -> Option<Command> {
        Some(match s {
            "promote" => Command::Promote,
            "pause" => Command::Pause,
            "resume" => Command::Resume,
            "abort" => Command::Abort,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Promote => "promote",
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Abort => "abort",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub strategy: Strategy,
    /// The replicas the release asks for.
    pub replicas: i32,
    pub phase: Phase,
    /// Canary: the step running (0-based).
    #[serde(default)]
    pub step: usize,
    /// Pods asked of the version that ran before and of the new one now.
    #[serde(default)]
    pub stable_replicas: i32,
    #[serde(default)]
    pub new_replicas: i32,
    /// When the step's timed pause ends (ms since the epoch).
    #[serde(default)]
    pub pause_until: Option<i64>,
    /// When the next gate measurement is due.
    #[serde(default)]
    pub next_measure_at: Option<i64>,
    /// The current step's gates, in order.
    #[serde(default)]
    pub tallies: Vec<GateTally>,
    /// A person paused the rollout: nothing advances until resumed.
    #[serde(default)]
    pub paused: bool,
    /// A person resumed a step that waits for one (cleared as each step starts checking).
    #[serde(default)]
    pub resumed: bool,
    /// Blue-green: a person promoted; it switches as soon as the new version is ready.
    #[serde(default)]
    pub promoted: bool,
    /// The last command folded in (`abort@1796...`), so that one taken
    /// again after a restart is not applied twice.
    #[serde(default)]
    pub last_command: Option<String>,
    /// Why it is aborting: the failure kind's word and the reason.
    #[serde(default)]
    pub abort: Option<(String, String)>,
    /// Blue-green: the release the live Service served before the switch.
    #[serde(default)]
    pub previous_release: Option<String>,
    #[serde(default)]
    pub switched_at: Option<i64>,
    /// The current step's objects were applied.
    #[serde(default)]
    pub applied: bool,
    /// Canary: the stable Deployment was given the new version.
    #[serde(default)]
    pub finishing_applied: bool,
    /// Canary: the stable Deployment was changed (scaled or given the new
    /// version), so an abort puts it back as it ran.
    #[serde(default)]
    pub stable_touched: bool,
    /// No version ran before: the release rolled out directly.
    #[serde(default)]
    pub direct: bool,
    /// Why it ended early.
    #[serde(default)]
    pub outcome: Option<String>,
}

impl Progress {
    pub fn new(strategy: Strategy, replicas: i32) -> Self {
        Progress {
            strategy,
            replicas: replicas.max(1),
            phase: Phase::Starting,
            step: 0,
            stable_replicas: 0,
            new_replicas: 0,
            pause_until: None,
            next_measure_at: None,
            tallies: vec![],
            paused: false,
            resumed: false,
            promoted: false,
            last_command: None,
            abort: None,
            previous_release: None,
            switched_at: None,
            applied: false,
            finishing_applied: false,
            stable_touched: false,
            direct: false,
            outcome: None,
        }
    }

    /// Canary: the step that runs now, if any.
    pub fn canary_step(&self) -> Option<&super::strategy::CanaryStep> {
        match &self.strategy {
            Strategy::Canary { steps } => steps.get(self.step),
            _ => None,
        }
    }

    /// The gates of the running step (blue-green: its one check).
    pub fn gates(&self) -> &[super::gate::MetricGate] {
        match &self.strategy {
            Strategy::Canary { steps } => steps.get(self.step).map(|s| s.gates.as_slice()).unwrap_or(&[]),
            Strategy::BlueGreen { gates, .. } => gates,
            Strategy::Rolling => &[],
        }
    }

    /// Whether the running step waits for a person.
    pub fn waits_for_person(&self) -> bool {
        match &self.strategy {
            Strategy::Canary { steps } => steps.get(self.step).is_some_and(|s| s.manual),
            Strategy::BlueGreen { manual, .. } => *manual,
            Strategy::Rolling => false,
        }
    }

    /// Canary: move to the next step, or to finishing after the last.
    pub fn next_step(&mut self) {
        let steps = match &self.strategy {
            Strategy::Canary { steps } => steps.len(),
            _ => 0,
        };
        self.step += 1;
        self.tallies.clear();
        self.pause_until = None;
        self.next_measure_at = None;
        self.resumed = false;
        self.applied = false;
        self.phase = if self.step >= steps {
            Phase::Finishing
        } else {
            Phase::Starting
        };
    }

    /// Folds a person's command in (pure: the job then saves it before it
    /// acts on it, and takes the command off the deploy only after).
    pub fn apply(&mut self, cmd: Command) {
        match cmd {
            Command::Pause => self.paused = true,
            Command::Resume => {
                self.paused = false;
                if self.phase == Phase::Checking {
                    self.resumed = true;
                }
            }
            Command::Promote => {
                self.paused = false;
                match (self.phase, &self.strategy) {
                    // A canary skips its remaining steps: the stable Deployment
                    // takes the new version in a rolling update.
                    (Phase::Starting | Phase::Checking, Strategy::Canary { .. }) => {
                        self.phase = Phase::Finishing;
                        self.tallies.clear();
                    }
                    // Blue-green switches once the new version is ready, never before.
                    (Phase::Starting | Phase::Checking, _) => self.promoted = true,
                    // Switched: the old version goes now.
                    (Phase::Keeping, _) => self.switched_at = Some(i64::MIN / 2),
                    _ => {}
                }
            }
            Command::Abort => {
                if !matches!(self.phase, Phase::Done | Phase::Aborted | Phase::Aborting) {
                    self.begin_abort("aborted", "aborted by a person");
                }
            }
        }
    }

    /// Marks the rollout aborting (before any of the work of sending
    /// traffic back), with the failure kind's word and the reason.
    pub fn begin_abort(&mut self, kind: &str, why: &str) {
        self.phase = Phase::Aborting;
        self.paused = false;
        self.abort = Some((kind.to_owned(), why.to_owned()));
    }

    /// Enters a step's checking: its pause, gates and a person's word start now.
    pub fn start_checking(&mut self, now: i64, pause_seconds: u32, gates: usize) {
        self.phase = Phase::Checking;
        self.pause_until = (pause_seconds > 0).then(|| now + i64::from(pause_seconds) * 1000);
        self.tallies = vec![GateTally::default(); gates];
        self.next_measure_at = Some(now);
        self.resumed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progressive::strategy::CanaryStep;

    fn canary() -> Progress {
        let step = |weight, manual| CanaryStep {
            weight,
            pause_seconds: 0,
            manual,
            gates: vec![],
        };
        Progress::new(
            Strategy::Canary {
                steps: vec![step(25, true), step(100, false)],
            },
            4,
        )
    }

    #[test]
    fn steps_advance_to_finishing_and_survive_a_round_trip() {
        let mut p = canary();
        assert!(p.waits_for_person());
        p.next_step();
        assert_eq!((p.step, p.phase), (1, Phase::Starting));
        assert!(!p.waits_for_person());
        p.next_step();
        assert_eq!(p.phase, Phase::Finishing);
        let back: Progress = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn commands_fold_in() {
        let mut p = canary();
        // A resume while the step's pods come up does not pre-approve its wait.
        p.apply(Command::Resume);
        assert!(!p.resumed);
        p.start_checking(0, 0, 0);
        p.apply(Command::Pause);
        assert!(p.paused);
        p.apply(Command::Resume);
        assert!(!p.paused && p.resumed);
        p.apply(Command::Promote);
        assert_eq!(p.phase, Phase::Finishing);
        p.apply(Command::Abort);
        assert_eq!(p.phase, Phase::Aborting);
        assert_eq!(p.abort.as_ref().map(|a| a.0.as_str()), Some("aborted"));
        assert_eq!(Command::parse("promote"), Some(Command::Promote));
        // Blue-green: a promote before the new version is ready waits for it.
        let mut bg = Progress::new(
            Strategy::BlueGreen {
                preview: false,
                gates: vec![],
                manual: true,
                scale_down_delay_seconds: 60,
            },
            2,
        );
        bg.apply(Command::Promote);
        assert_eq!((bg.phase, bg.promoted), (Phase::Starting, true));
        assert_eq!(Command::parse("rm -rf"), None);
    }
}
