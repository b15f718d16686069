use serde::{Deserialize, Serialize};

use crate::{Role, ValidationError};

/// What an environment demands before a release may run there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnvPolicy {
    /// Roles that may deploy into this environment (operators always may in
    /// formal environments; a FAT environment may also allow developers).
    pub deploy_roles: Vec<Role>,
    /// Whether a deploy waits for an operator's review before it is applied.
    pub requires_review: bool,
    /// Whether a release must have passed the previous environment first.
    pub requires_previous: bool,
}

impl EnvPolicy {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.deploy_roles.is_empty() {
            return Err(ValidationError::new(
                "policy.deploy_roles",
                "at least one role must be allowed to deploy",
            ));
        }
        Ok(())
    }

    /// A development environment: developers may deploy, no review.
    pub fn development() -> Self {
        Self {
            deploy_roles: vec![Role::Developer, Role::Operator],
            requires_review: false,
            requires_previous: false,
        }
    }

    /// A formal environment: operators only, reviewed, in order.
    pub fn formal() -> Self {
        Self {
            deploy_roles: vec![Role::Operator],
            requires_review: true,
            requires_previous: true,
        }
    }

    pub fn allows_deploy_by(&self, role: Role) -> bool {
        self.deploy_roles.contains(&role)
    }

    /// Roles as stored: a comma-separated list in a fixed order.
    pub fn roles_csv(&self) -> String {
        let mut roles = self.deploy_roles.clone();
        roles.sort();
        roles.dedup();
        roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
    }

    pub fn roles_from_csv(csv: &str) -> Result<Vec<Role>, ValidationError> {
        csv.split(',')
            .filter(|s| !s.is_empty())
            .map(|s| Role::parse("policy.deploy_roles", s))
            .collect()
    }
}

/// What a deploy into an environment may touch, and what happens when it
/// fails. Only admins change these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployRules {
    /// Allow cluster-scoped kinds (Namespace, ClusterRole, CRDs ...).
    #[serde(default)]
    pub allow_cluster_scoped: bool,
    /// Allow objects that name a namespace other than the environment's.
    #[serde(default)]
    pub allow_other_namespaces: bool,
    /// Roll back to the last successful release when a rollout fails.
    #[serde(default = "yes")]
    pub auto_rollback: bool,
}

fn yes() -> bool {
    true
}

impl Default for DeployRules {
    fn default() -> Self {
        Self {
            allow_cluster_scoped: false,
            allow_other_namespaces: false,
            auto_rollback: true,
        }
    }
}
