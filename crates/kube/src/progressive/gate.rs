//! Metric gates: a Prometheus query, a condition on its result, and how many
//! measurements decide. A query that fails or returns nothing is
//! inconclusive, never a pass; inconclusive results have a limit of their own.

// The settings and their checks are prism-domain's; measuring is done here.
pub use prism_domain::metric_gate::{Condition, MetricGate};
use serde::{Deserialize, Serialize};

/// What a query is filled in with. Values are names Prism validated
/// (lowercase letters, digits, `-`), so they cannot break out of a PromQL
/// string; anything else is escaped all the same.
#[derive(Debug, Clone)]
pub struct QueryVars<'a> {
    pub app: &'a str,
    pub env: &'a str,
    pub namespace: &'a str,
    pub release: &'a str,
    pub track: &'a str,
}

pub fn render_query(template: &str, v: &QueryVars<'_>) -> String {
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    template
        .replace("{{app}}", &esc(v.app))
        .replace("{{env}}", &esc(v.env))
        .replace("{{namespace}}", &esc(v.namespace))
        .replace("{{release}}", &esc(v.release))
        .replace("{{track}}", &esc(v.track))
}

/// One measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Measurement {
    Value(f64),
    Inconclusive(String),
}

/// A gate's running tally, persisted with the rollout step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GateTally {
    pub taken: u32,
    pub passed: u32,
    pub failed: u32,
    pub inconclusive: u32,
    pub last: Option<Measurement>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum GateVerdict {
    /// More measurements to take.
    Measuring,
    Passed,
    /// Aborts the rollout: the value and the condition it broke.
    Failed {
        value: f64,
        condition: String,
    },
    Inconclusive {
        reason: String,
    },
}

impl GateTally {
    /// Records a measurement and says where the gate stands.
    pub fn record(&mut self, gate: &MetricGate, cond: &Condition, m: Measurement) -> GateVerdict {
        self.taken += 1;
        let verdict = match &m {
            Measurement::Value(v) if cond.holds(*v) => {
                self.passed += 1;
                None
            }
            Measurement::Value(v) => {
                self.failed += 1;
                (self.failed >= gate.failure_limit).then(|| GateVerdict::Failed {
                    value: *v,
                    condition: gate.condition.clone(),
                })
            }
            Measurement::Inconclusive(reason) => {
                self.inconclusive += 1;
                (self.inconclusive >= gate.inconclusive_limit)
                    .then(|| GateVerdict::Inconclusive { reason: reason.clone() })
            }
        };
        self.last = Some(m);
        verdict.unwrap_or(if self.taken >= gate.count {
            GateVerdict::Passed
        } else {
            GateVerdict::Measuring
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(count: u32, failure_limit: u32, inconclusive_limit: u32) -> MetricGate {
        MetricGate {
            name: "errors".into(),
            query: "sum(rate(http_errors{app=\"{{app}}\",track=\"{{track}}\"}[1m]))".into(),
            condition: "result < 0.01".into(),
            interval_seconds: 10,
            count,
            failure_limit,
            inconclusive_limit,
        }
    }

    #[test]
    fn a_healthy_gate_passes_after_its_count() {
        let g = gate(3, 1, 2);
        let c = g.validate("gate").unwrap();
        let mut t = GateTally::default();
        assert_eq!(t.record(&g, &c, Measurement::Value(0.001)), GateVerdict::Measuring);
        assert_eq!(t.record(&g, &c, Measurement::Value(0.002)), GateVerdict::Measuring);
        assert_eq!(t.record(&g, &c, Measurement::Value(0.0)), GateVerdict::Passed);
    }

    #[test]
    fn a_bad_value_fails_with_the_value_and_condition() {
        let g = gate(5, 1, 2);
        let c = g.validate("gate").unwrap();
        let mut t = GateTally::default();
        assert_eq!(
            t.record(&g, &c, Measurement::Value(0.2)),
            GateVerdict::Failed {
                value: 0.2,
                condition: "result < 0.01".into()
            }
        );
        // With a failure limit of 2, one bad value is tolerated.
        let g = gate(5, 2, 2);
        let mut t = GateTally::default();
        assert_eq!(t.record(&g, &c, Measurement::Value(0.2)), GateVerdict::Measuring);
        assert!(matches!(
            t.record(&g, &c, Measurement::Value(0.3)),
            GateVerdict::Failed { .. }
        ));
    }

    #[test]
    fn nothing_is_never_a_pass() {
        let g = gate(2, 1, 2);
        let c = g.validate("gate").unwrap();
        let mut t = GateTally::default();
        assert_eq!(
            t.record(&g, &c, Measurement::Inconclusive("no data".into())),
            GateVerdict::Measuring
        );
        assert_eq!(
            t.record(&g, &c, Measurement::Inconclusive("prometheus unreachable".into())),
            GateVerdict::Inconclusive {
                reason: "prometheus unreachable".into()
            }
        );
    }

    #[test]
    fn queries_are_filled_in_and_escaped() {
        let q = render_query(
            &gate(1, 1, 1).query,
            &QueryVars {
                app: "web",
                env: "prd",
                namespace: "shop-prd",
                release: "r7",
                track: "canary",
            },
        );
        assert_eq!(q, "sum(rate(http_errors{app=\"web\",track=\"canary\"}[1m]))");
        let hostile = render_query(
            "x{a=\"{{app}}\"}",
            &QueryVars {
                app: "a\"} or vector(1) #",
                env: "",
                namespace: "",
                release: "",
                track: "",
            },
        );
        assert_eq!(hostile, "x{a=\"a\\\"} or vector(1) #\"}");
    }
}
