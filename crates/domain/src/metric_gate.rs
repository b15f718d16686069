//! Metric gates as a rollout's strategy configures them: a Prometheus query,
//! a condition on its result, and how many measurements decide. Only the
//! settings and their checks live here (pure, shared with the REST API's
//! types); measuring them is prism-kube's.

use serde::{Deserialize, Serialize};

use crate::ValidationError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
}

/// `result < 0.01`, parsed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    pub op: Op,
    pub threshold: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GateError(pub String);

impl Condition {
    pub fn parse(text: &str) -> Result<Self, GateError> {
        let t = text.trim();
        let rest = t
            .strip_prefix("result")
            .ok_or_else(|| GateError(format!("{t:?}: a condition reads `result <op> <number>`")))?
            .trim_start();
        let (op, num) = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .iter()
        .find_map(|(s, op)| rest.strip_prefix(s).map(|n| (*op, n.trim())))
        .ok_or_else(|| GateError(format!("{t:?}: the operator must be <, <=, >, >=, == or !=")))?;
        let threshold: f64 = num
            .parse()
            .map_err(|_| GateError(format!("{t:?}: {num:?} is not a number")))?;
        if !threshold.is_finite() {
            return Err(GateError(format!("{t:?}: the number must be finite")));
        }
        Ok(Self { op, threshold })
    }

    pub fn holds(&self, v: f64) -> bool {
        match self.op {
            Op::Lt => v < self.threshold,
            Op::Le => v <= self.threshold,
            Op::Gt => v > self.threshold,
            Op::Ge => v >= self.threshold,
            Op::Eq => v == self.threshold,
            Op::Ne => v != self.threshold,
        }
    }
}

/// A gate as configured on a rollout step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricGate {
    pub name: String,
    /// PromQL with `{{app}}`, `{{env}}`, `{{namespace}}`, `{{release}}`, `{{track}}`.
    pub query: String,
    /// `result < 0.01`
    pub condition: String,
    #[serde(default = "default_interval")]
    pub interval_seconds: u32,
    /// Measurements taken in all.
    #[serde(default = "default_count")]
    pub count: u32,
    /// Failed measurements that abort the rollout.
    #[serde(default = "one")]
    pub failure_limit: u32,
    /// Inconclusive measurements that abort it.
    #[serde(default = "default_inconclusive")]
    pub inconclusive_limit: u32,
}

fn default_interval() -> u32 {
    30
}
fn default_count() -> u32 {
    3
}
fn one() -> u32 {
    1
}
fn default_inconclusive() -> u32 {
    2
}

impl MetricGate {
    pub fn validate(&self, field: &str) -> Result<Condition, ValidationError> {
        let bad = |f: &str, m: String| ValidationError::new(format!("{field}.{f}"), m);
        if self.query.trim().is_empty() || self.query.len() > 4000 {
            return Err(bad("query", "must be 1 to 4000 characters".into()));
        }
        if !(1..=3600).contains(&self.interval_seconds) {
            return Err(bad("interval_seconds", "must be 1 to 3600".into()));
        }
        if !(1..=100).contains(&self.count) {
            return Err(bad("count", "must be 1 to 100".into()));
        }
        if self.failure_limit == 0 || self.inconclusive_limit == 0 {
            return Err(bad("failure_limit", "limits must be at least 1".into()));
        }
        Condition::parse(&self.condition).map_err(|e| bad("condition", e.0))
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
    fn conditions_parse_and_hold() {
        let c = Condition::parse("result < 0.01").unwrap();
        assert!(c.holds(0.001) && !c.holds(0.01) && !c.holds(0.5));
        assert!(Condition::parse("result>=0.95").unwrap().holds(0.95));
        assert!(Condition::parse("result != 0").unwrap().holds(1.0));
        assert!(Condition::parse("value < 1").is_err());
        assert!(Condition::parse("result ~ 1").is_err());
        assert!(Condition::parse("result < lots").is_err());
        assert!(Condition::parse("result < inf").is_err());
    }

    #[test]
    fn settings_are_checked_naming_the_field() {
        let mut g = gate(0, 1, 1);
        assert_eq!(
            g.validate("steps[1].gates[0]").unwrap_err().field,
            "steps[1].gates[0].count"
        );
        g.count = 3;
        g.condition = "result <".into();
        assert_eq!(g.validate("g").unwrap_err().field, "g.condition");
    }
}
