//! Which pushes make releases: branch and tag patterns per application.

use serde::{Deserialize, Serialize};

use crate::event::PushEvent;

/// An application's rules. A pattern is a name where `*` matches any run of
/// characters (`release/*`, `v*`); no rule, no release.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRules {
    #[serde(default)]
    pub branches: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Build the release at once.
    #[serde(default = "yes")]
    pub build: bool,
}

fn yes() -> bool {
    true
}

impl ReleaseRules {
    pub fn matches(&self, e: &PushEvent) -> bool {
        let patterns = if e.is_tag { &self.tags } else { &self.branches };
        patterns.iter().any(|p| glob_match(p, e.name.as_str()))
    }

    pub fn validate(&self, field: &str) -> Result<(), prism_domain::ValidationError> {
        for (kind, list) in [("branches", &self.branches), ("tags", &self.tags)] {
            if list.len() > 50 {
                return Err(prism_domain::ValidationError::new(
                    format!("{field}.{kind}"),
                    "at most 50 patterns",
                ));
            }
            for (i, p) in list.iter().enumerate() {
                if p.is_empty() || p.chars().count() > 200 || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(prism_domain::ValidationError::new(
                        format!("{field}.{kind}[{i}]"),
                        "must be 1 to 200 characters without spaces",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `*` matches any run of characters (also none, also `/`); everything else
/// matches itself. Linear time: no backtracking blow-up on hostile patterns.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(name: &str, is_tag: bool) -> PushEvent {
        PushEvent {
            forge: crate::Forge::Github,
            delivery: None,
            full_ref: String::new(),
            name: prism_domain::GitRef::parse("ref", name).unwrap(),
            is_tag,
            commit: "0".repeat(40),
            message: String::new(),
            pusher: String::new(),
            repository_urls: vec![],
        }
    }

    #[test]
    fn branches_and_tags_have_their_own_patterns() {
        let rules = ReleaseRules {
            branches: vec!["main".into(), "release/*".into()],
            tags: vec!["v*".into()],
            build: true,
        };
        assert!(rules.matches(&push("main", false)));
        assert!(rules.matches(&push("release/7", false)));
        assert!(!rules.matches(&push("feature/x", false)));
        assert!(rules.matches(&push("v1.0", true)));
        // A tag named like a branch pattern is not a branch.
        assert!(!rules.matches(&push("main", true)));
        assert!(!ReleaseRules::default().matches(&push("main", false)));
        let bad = ReleaseRules {
            branches: vec!["ma in".into()],
            ..ReleaseRules::default()
        };
        assert_eq!(
            bad.validate("release_rules").unwrap_err().field,
            "release_rules.branches[0]"
        );
    }

    #[test]
    fn globs() {
        assert!(glob_match("main", "main"));
        assert!(!glob_match("main", "mainline"));
        assert!(glob_match("release/*", "release/2026.1"));
        assert!(!glob_match("release/*", "hotfix/1"));
        assert!(glob_match("v*", "v1.2.0"));
        assert!(glob_match("*", "anything/at/all"));
        assert!(glob_match("v*.*.*", "v1.2.3"));
        assert!(!glob_match("v*.*.*", "v1.2"));
        // Pathological patterns stay fast.
        let long = "a".repeat(5000);
        assert!(!glob_match(&format!("{}b", "*a".repeat(100)), &long));
    }
}
