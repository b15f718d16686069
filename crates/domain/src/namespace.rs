//! Where an environment puts each project's objects: one fixed namespace
//! (every project shares it, as before), or a pattern such as
//! `{project}-{environment}` giving each project its own namespace.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::name::MAX_NAME_LEN;
use crate::{Name, ValidationError};

pub const PROJECT: &str = "{project}";
pub const ENVIRONMENT: &str = "{environment}";

/// A namespace pattern: lowercase letters, digits, '-' and the placeholders
/// `{project}` and `{environment}`. Without `{project}` every project shares
/// the namespace; with it each project gets its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NamespacePattern(String);

impl NamespacePattern {
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        if !raw.contains('{') && !raw.contains('}') {
            return Name::parse(field, raw).map(|n| Self(n.as_str().to_owned()));
        }
        let literal = raw.replace(PROJECT, "").replace(ENVIRONMENT, "");
        if literal.contains('{') || literal.contains('}') {
            return Err(ValidationError::new(
                field,
                "the only placeholders are {project} and {environment}",
            ));
        }
        // Any names filled in must give a DNS-1123 label: check with the
        // shortest names ("a"), so only the literal parts can be at fault.
        let sample = raw.replace(PROJECT, "a").replace(ENVIRONMENT, "a");
        Name::parse(field, &sample).map_err(|e| {
            ValidationError::new(
                field,
                format!("{raw:?} must give a DNS-1123 label once filled in: {}", e.message),
            )
        })?;
        if raw.contains("--") || sample.contains("--") {
            return Err(ValidationError::new(field, "must not contain \"--\""));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Whether each project gets its own namespace.
    pub fn per_project(&self) -> bool {
        self.0.contains(PROJECT)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The namespace of `project` in `environment`; refused (naming the
    /// result) when the names make it longer than a label may be.
    pub fn resolve(&self, project: &str, environment: &str) -> Result<Name, ValidationError> {
        let ns = self.0.replace(PROJECT, project).replace(ENVIRONMENT, environment);
        if ns.len() > MAX_NAME_LEN {
            return Err(ValidationError::new(
                "namespace",
                format!(
                    "{:?} gives namespace {ns:?} for project {project}, longer than {MAX_NAME_LEN} characters; bind a namespace for the project instead",
                    self.0
                ),
            ));
        }
        Name::parse("namespace", &ns)
    }
}

impl fmt::Display for NamespacePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for NamespacePattern {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse("namespace", &s)
    }
}

impl From<NamespacePattern> for String {
    fn from(p: NamespacePattern) -> String {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_names_and_patterns() {
        let fixed = NamespacePattern::parse("namespace", "shared").unwrap();
        assert!(!fixed.per_project());
        assert_eq!(fixed.resolve("shop", "prd").unwrap().as_str(), "shared");
        let p = NamespacePattern::parse("namespace", "{project}-{environment}").unwrap();
        assert!(p.per_project());
        assert_eq!(p.resolve("shop", "prd").unwrap().as_str(), "shop-prd");
        let q = NamespacePattern::parse("namespace", "prism-{project}").unwrap();
        assert_eq!(q.resolve("blog", "fat").unwrap().as_str(), "prism-blog");
    }

    #[test]
    fn bad_patterns_name_the_field() {
        for bad in [
            "",
            "{project}_{environment}",
            "{team}-{environment}",
            "-{project}",
            "{project}-",
            "{project",
            "Shop-{project}",
            "{project}--{environment}",
        ] {
            let e = NamespacePattern::parse("namespace", bad).unwrap_err();
            assert_eq!(e.field, "namespace", "{bad}");
        }
    }

    #[test]
    fn too_long_results_are_refused_naming_the_namespace() {
        let p = NamespacePattern::parse("namespace", "{project}-{environment}").unwrap();
        let long = "p".repeat(60);
        let e = p.resolve(&long, "prd").unwrap_err();
        assert!(e.message.contains(&format!("{long}-prd")), "{e}");
    }
}
