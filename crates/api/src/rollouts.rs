//! Progressive rollouts (canary, blue-green): an application's strategy per
//! environment, steering a running one, and a cluster's Prometheus for their
//! metric gates.

use prism_domain::rollout_strategy::Strategy;
use serde::{Deserialize, Serialize};

/// An application's strategy in one environment (rolling unless chosen).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolloutSetting {
    pub application: String,
    pub environment: String,
    pub strategy: Strategy,
    /// Whether the environment's cluster has a Prometheus for metric gates.
    pub prometheus: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutCommandRequest {
    /// Why (kept in the audit log and on the deploy's events).
    #[serde(default)]
    pub reason: String,
}

#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusRequest {
    /// The Prometheus server's base URL (`http://prometheus.monitoring:9090`).
    pub url: String,
    /// Basic auth (with `password`), or a bearer `token`; stored sealed.
    pub username: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PrometheusSetting {
    pub cluster: String,
    pub url: Option<String>,
    /// none, basic or bearer (the secret itself is never returned).
    pub auth: String,
}
