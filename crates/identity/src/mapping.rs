//! Groups to roles.

use std::collections::{BTreeMap, BTreeSet};

use prism_domain::Role;
use serde::{Deserialize, Serialize};

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

/// What a user's groups grant: exactly this, replacing what an earlier
/// login granted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    pub admin: bool,
    pub projects: BTreeMap<String, BTreeSet<Role>>,
}

impl GroupRule {
    pub fn validate(&self, field: &str) -> Result<(), prism_domain::ValidationError> {
        if self.group.trim().is_empty() || self.group.chars().count() > 512 {
            return Err(prism_domain::ValidationError::new(
                format!("{field}.group"),
                "must be 1 to 512 characters",
            ));
        }
        match (&self.project, &self.role, self.admin) {
            (Some(p), Some(_), false) => prism_domain::Name::parse(&format!("{field}.project"), p).map(|_| ()),
            (None, None, true) => Ok(()),
            _ => Err(prism_domain::ValidationError::new(
                field,
                "a rule grants either a role in a project (project and role) or admin (admin: true)",
            )),
        }
    }
}

/// Group names compare without regard to case, as directories do.
pub fn grants(groups: &[String], rules: &[GroupRule]) -> Grants {
    let have: BTreeSet<String> = groups.iter().map(|g| g.to_lowercase()).collect();
    let mut g = Grants::default();
    for r in rules.iter().filter(|r| have.contains(&r.group.to_lowercase())) {
        if r.admin {
            g.admin = true;
        }
        if let (Some(p), Some(role)) = (&r.project, r.role) {
            g.projects.entry(p.clone()).or_default().insert(role);
        }
    }
    g
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
    fn groups_grant_what_the_rules_say_and_nothing_else() {
        let rules = vec![
            rule("shop-ops", "shop", Role::Operator),
            rule("shop-dev", "shop", Role::Developer),
            rule("blog-qa", "blog", Role::Tester),
            GroupRule {
                group: "prism-admins".into(),
                project: None,
                role: None,
                admin: true,
            },
        ];
        let g = grants(&["Shop-Ops".into(), "shop-dev".into(), "unrelated".into()], &rules);
        assert!(!g.admin);
        assert_eq!(g.projects["shop"], BTreeSet::from([Role::Developer, Role::Operator]));
        assert!(!g.projects.contains_key("blog"));
        assert!(grants(&["prism-admins".into()], &rules).admin);
        assert_eq!(grants(&[], &rules), Grants::default());
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
