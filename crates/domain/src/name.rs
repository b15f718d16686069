use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// A name that may become a Kubernetes object name or label value: a DNS-1123
/// label (lowercase alphanumerics and '-', starting and ending alphanumeric,
/// at most 63 characters). Clusters, environments, projects and applications
/// all use it, so nothing Prism later renders can escape a namespace or a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

pub const MAX_NAME_LEN: usize = 63;

impl Name {
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        let err = |m: &str| Err(ValidationError::new(field, m));
        if raw.is_empty() {
            return err("must not be empty");
        }
        if raw.len() > MAX_NAME_LEN {
            return err(&format!(
                "must be at most {MAX_NAME_LEN} characters (got {})",
                raw.len()
            ));
        }
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if let Some(c) = raw.chars().find(|c| !ok_char(*c)) {
            return err(&format!(
                "must be a DNS-1123 label (lowercase letters, digits and '-'); found {c:?}"
            ));
        }
        if raw.starts_with('-') || raw.ends_with('-') {
            return err("must start and end with a lowercase letter or digit");
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Name {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse("name", s)
    }
}

impl TryFrom<String> for Name {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse("name", &s)
    }
}

impl From<Name> for String {
    fn from(n: Name) -> Self {
        n.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_labels() {
        for ok in ["a", "web", "order-service", "a1", "0abc", &"x".repeat(63)] {
            assert!(Name::parse("name", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_non_labels() {
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a_b",
            "a.b",
            "../etc",
            "a/b",
            "kube system",
            "é",
            &"x".repeat(64),
        ] {
            let e = Name::parse("app", bad).unwrap_err();
            assert_eq!(e.field, "app", "{bad}");
        }
    }
}
