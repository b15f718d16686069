use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// A git branch, tag or commit as typed by a developer, checked with the
/// rules of `git check-ref-format` so that it can be passed to git safely
/// (it can never look like an option, contain a revision range, or a space).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GitRef(String);

impl GitRef {
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        let err = |m: String| Err(ValidationError::new(field, m));
        if raw.is_empty() {
            return err("must not be empty".into());
        }
        if raw.len() > 255 {
            return err("must be at most 255 characters".into());
        }
        if raw.starts_with('-') {
            return err(format!("{raw:?} must not start with '-'"));
        }
        if raw == "@" || raw.contains("@{") {
            return err(format!("{raw:?} must not contain '@{{'"));
        }
        if raw.contains("..") || raw.contains("//") {
            return err(format!("{raw:?} must not contain '..' or '//'"));
        }
        if let Some(c) = raw
            .chars()
            .find(|c| c.is_ascii_control() || c.is_whitespace() || "~^:?*[\\".contains(*c))
        {
            return err(format!("{raw:?} contains the forbidden character {c:?}"));
        }
        if raw.ends_with('/') || raw.ends_with('.') || raw.ends_with(".lock") || raw.starts_with('/') {
            return err(format!("{raw:?} is not a valid git ref name"));
        }
        if raw
            .split('/')
            .any(|part| part.starts_with('.') || part.ends_with(".lock"))
        {
            return err(format!(
                "{raw:?} has a component starting with '.' or ending with '.lock'"
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl TryFrom<String> for GitRef {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse("git_ref", &s)
    }
}
impl From<GitRef> for String {
    fn from(g: GitRef) -> Self {
        g.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_usual_refs() {
        for ok in [
            "main",
            "release/1.2",
            "v1.2.3",
            "feature/ABC-12_x",
            "0123456789abcdef0123456789abcdef01234567",
            "refs/tags/v1",
        ] {
            assert!(GitRef::parse("ref", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_dangerous_refs() {
        for bad in [
            "",
            "-x",
            "--upload-pack=evil",
            "a..b",
            "a b",
            "a~1",
            "a^",
            "a:b",
            "a?",
            "a*",
            "a[",
            "a\\b",
            "a/",
            "/a",
            "a.",
            "a.lock",
            "a/.b",
            "@",
            "x@{1}",
            "a//b",
            "a\tb",
        ] {
            assert_eq!(GitRef::parse("git_ref", bad).unwrap_err().field, "git_ref", "{bad:?}");
        }
    }
}
