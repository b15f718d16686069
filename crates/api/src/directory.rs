//! The rules that map the company directory's groups to Prism roles
//! (`/api/v1/directory/group-rules`).

use prism_domain::GroupRule;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupRules {
    /// In order; each grants a role in a project (`project`, `role`) or admin (`admin: true`).
    pub rules: Vec<GroupRule>,
}
