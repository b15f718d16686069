//! Groups to roles.

use std::collections::{BTreeMap, BTreeSet};

pub use prism_domain::GroupRule;
use prism_domain::Role;

/// What a user's groups grant: exactly this, replacing what an earlier
/// login granted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    pub admin: bool,
    pub projects: BTreeMap<String, BTreeSet<Role>>,
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
}
