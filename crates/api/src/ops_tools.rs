//! Operations tools (Prometheus, Grafana, dashboards ...) on the ops front.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OpsTool {
    pub cluster: String,
    pub name: String,
    pub kind: String,
    pub upstream: String,
    pub strip_prefix: bool,
    pub description: String,
    pub updated_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutTool {
    /// prometheus, grafana, dashboard, headlamp or other.
    pub kind: String,
    /// Where nginx sends the requests, e.g. `http://prometheus.monitoring:9090`.
    pub upstream: String,
    /// Remove `/tools/CLUSTER/NAME` before passing requests on (for tools
    /// that cannot be told their sub-path); default false.
    #[serde(default)]
    pub strip_prefix: bool,
    /// The project roles (developer, tester, operator) whose holders, in any
    /// project, may open it; admins always may.
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub description: String,
}

/// A tool as listed: where to open it and who may.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ToolView {
    #[serde(flatten)]
    pub tool: OpsTool,
    pub roles: Vec<String>,
    /// The tool's path on the front (`/tools/CLUSTER/NAME/`).
    pub path: String,
}
