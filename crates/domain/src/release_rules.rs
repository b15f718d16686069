//! Which pushes make releases: branch and tag patterns per application.
//! Pure, so the REST API's types (prism-api) and the webhook receiver
//! (prism-webhooks) share them.

use serde::{Deserialize, Serialize};

use crate::ValidationError;

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
    /// Whether a push of the branch (or tag) `name` makes a release.
    pub fn matches(&self, is_tag: bool, name: &str) -> bool {
        let patterns = if is_tag { &self.tags } else { &self.branches };
        patterns.iter().any(|p| glob_match(p, name))
    }

    pub fn validate(&self, field: &str) -> Result<(), ValidationError> {
        for (kind, list) in [("branches", &self.branches), ("tags", &self.tags)] {
            if list.len() > 50 {
                return Err(ValidationError::new(format!("{field}.{kind}"), "at most 50 patterns"));
            }
            for (i, p) in list.iter().enumerate() {
                if p.is_empty() || p.chars().count() > 200 || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(ValidationError::new(
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

    #[test]
    fn branches_and_tags_have_their_own_patterns() {
        let rules = ReleaseRules {
            branches: vec!["main".into(), "release/*".into()],
            tags: vec!["v*".into()],
            build: true,
        };
        assert!(rules.matches(false, "main"));
        assert!(rules.matches(false, "release/7"));
        assert!(!rules.matches(false, "feature/x"));
        assert!(rules.matches(true, "v1.0"));
        // A tag named like a branch pattern is not a branch.
        assert!(!rules.matches(true, "main"));
        assert!(!ReleaseRules::default().matches(false, "main"));
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
