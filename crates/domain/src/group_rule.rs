//! A rule mapping a directory group to a Prism role. Pure, so the REST API's
//! types (prism-api) and the directory login (prism-identity) share it.

use serde::{Deserialize, Serialize};

use crate::{Name, Role, ValidationError};

/// `group` grants `role` in `project`, or admin when `admin` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupRule {
    pub group: String,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub admin: bool,
}

impl GroupRule {
    pub fn validate(&self, field: &str) -> Result<(), ValidationError> {
        if self.group.trim().is_empty() || self.group.chars().count() > 512 {
            return Err(ValidationError::new(
                format!("{field}.group"),
                "must be 1 to 512 characters",
            ));
        }
        match (&self.project, &self.role, self.admin) {
            (Some(p), Some(_), false) => Name::parse(&format!("{field}.project"), p).map(|_| ()),
            (None, None, true) => Ok(()),
            _ => Err(ValidationError::new(
                field,
                "a rule grants either a role in a project (project and role) or admin (admin: true)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(group: &str, project: &str, role: Role) -> GroupRule {
        GroupRule {
            group: group.into(),
            project: Some(project.into()),
            role: Some(role),
            admin: false,
        }
    }

    #[test]
    fn rules_are_one_grant_each() {
        assert!(rule("g", "shop", Role::Tester).validate("rules[0]").is_ok());
        let both = GroupRule {
            admin: true,
            ..rule("g", "shop", Role::Tester)
        };
        assert_eq!(both.validate("rules[0]").unwrap_err().field, "rules[0]");
        let bad_project = rule("g", "Not A Name", Role::Tester);
        assert_eq!(bad_project.validate("rules[0]").unwrap_err().field, "rules[0].project");
    }
}
