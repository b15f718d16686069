//! How a release reaches an environment: `rolling` (one rolling update),
//! `canary` (a second Deployment stepped through replica shares) or
//! `blue-green` (a second Deployment, then the live Service switched to it).
//! Chosen per application and environment; a deploy keeps the strategy it
//! was planned with.

use crate::ValidationError;
use serde::{Deserialize, Serialize};

use crate::metric_gate::MetricGate;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Strategy {
    Rolling,
    Canary {
        /// Replica shares in order, the last normally 100.
        steps: Vec<CanaryStep>,
    },
    BlueGreen {
        /// A `<service>-preview` Service reaching only the new version while it is checked.
        #[serde(default)]
        preview: bool,
        /// Checked on the new version before the switch (track `preview`).
        #[serde(default)]
        gates: Vec<MetricGate>,
        /// Wait for a person to promote before switching.
        #[serde(default)]
        manual: bool,
        /// How long the old version stays scaled up after the switch, so
        /// that switching back is immediate.
        #[serde(default = "default_keep")]
        scale_down_delay_seconds: u32,
    },
}

fn default_keep() -> u32 {
    300
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryStep {
    /// Percent of the replicas that run the new version (1 to 100).
    pub weight: u8,
    /// Wait this long once the step's pods are ready.
    #[serde(default)]
    pub pause_seconds: u32,
    /// Wait for a person to resume (or promote) after the step.
    #[serde(default)]
    pub manual: bool,
    /// Checked while the step runs (track `canary`).
    #[serde(default)]
    pub gates: Vec<MetricGate>,
}

impl Strategy {
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Rolling => "rolling",
            Strategy::Canary { .. } => "canary",
            Strategy::BlueGreen { .. } => "blue-green",
        }
    }

    pub fn is_progressive(&self) -> bool {
        !matches!(self, Strategy::Rolling)
    }

    pub fn has_gates(&self) -> bool {
        match self {
            Strategy::Rolling => false,
            Strategy::Canary { steps } => steps.iter().any(|s| !s.gates.is_empty()),
            Strategy::BlueGreen { gates, .. } => !gates.is_empty(),
        }
    }

    /// Checks every setting, naming the field (`steps[1].gates[0].condition`).
    pub fn validate(&self) -> Result<(), ValidationError> {
        let bad = |f: String, m: &str| Err(ValidationError::new(f, m.to_owned()));
        match self {
            Strategy::Rolling => Ok(()),
            Strategy::Canary { steps } => {
                if steps.is_empty() || steps.len() > 20 {
                    return bad("steps".into(), "a canary needs 1 to 20 steps");
                }
                let mut last = 0;
                for (i, s) in steps.iter().enumerate() {
                    if !(1..=100).contains(&s.weight) {
                        return bad(format!("steps[{i}].weight"), "must be 1 to 100 (percent)");
                    }
                    if s.weight < last {
                        return bad(format!("steps[{i}].weight"), "weights must not go down");
                    }
                    last = s.weight;
                    if s.pause_seconds > 7 * 24 * 3600 {
                        return bad(format!("steps[{i}].pause_seconds"), "must be at most a week");
                    }
                    check_gates(&s.gates, &format!("steps[{i}].gates"))?;
                }
                Ok(())
            }
            Strategy::BlueGreen {
                gates,
                scale_down_delay_seconds,
                ..
            } => {
                if *scale_down_delay_seconds > 7 * 24 * 3600 {
                    return bad("scale_down_delay_seconds".into(), "must be at most a week");
                }
                check_gates(gates, "gates")
            }
        }
    }
}

fn check_gates(gates: &[MetricGate], field: &str) -> Result<(), ValidationError> {
    if gates.len() > 10 {
        return Err(ValidationError::new(field, "at most 10 gates"));
    }
    for (i, g) in gates.iter().enumerate() {
        let f = format!("{field}[{i}]");
        if g.name.trim().is_empty() || g.name.len() > 100 {
            return Err(ValidationError::new(format!("{f}.name"), "must be 1 to 100 characters"));
        }
        g.validate(&f)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_read_and_check_naming_the_field() {
        let s: Strategy = serde_json::from_str(
            r#"{"type":"canary","steps":[{"weight":10,"manual":true},{"weight":50,"gates":[{"name":"errors","query":"sum(x)","condition":"result < 0.01"}]},{"weight":100}]}"#,
        )
        .unwrap();
        s.validate().unwrap();
        assert!(s.has_gates() && s.is_progressive());
        let bg: Strategy = serde_json::from_str(r#"{"type":"blue-green"}"#).unwrap();
        assert_eq!(
            bg,
            Strategy::BlueGreen {
                preview: false,
                gates: vec![],
                manual: false,
                scale_down_delay_seconds: 300
            }
        );
        let down: Strategy =
            serde_json::from_str(r#"{"type":"canary","steps":[{"weight":50},{"weight":20}]}"#).unwrap();
        assert_eq!(down.validate().unwrap_err().field, "steps[1].weight");
        let zero: Strategy = serde_json::from_str(r#"{"type":"canary","steps":[{"weight":0}]}"#).unwrap();
        assert_eq!(zero.validate().unwrap_err().field, "steps[0].weight");
        let gate: Strategy = serde_json::from_str(
            r#"{"type":"blue-green","gates":[{"name":"ok","query":"up","condition":"result ~ 1"}]}"#,
        )
        .unwrap();
        assert_eq!(gate.validate().unwrap_err().field, "gates[0].condition");
        assert!(serde_json::from_str::<Strategy>(r#"{"type":"canary","steps":[],"x":1}"#).is_err());
        assert!(serde_json::from_str::<Strategy>(r#"{"type":"linear"}"#).is_err());
    }
}
