use std::fmt;

use serde::{Deserialize, Serialize};

/// One problem in a template or a rendered document, located as precisely as
/// the source allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The template (e.g. `deployment.yaml`) the problem is in.
    pub template: String,
    /// 1-based line in that template (or in its rendered output for YAML errors).
    pub line: Option<usize>,
    /// The field at fault in a rendered object, e.g. `metadata.namespace`.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.template)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(field) = &self.field {
            write!(f, " ({field})")?;
        }
        write!(f, ": {}", self.message)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ManifestError {
    /// A template could not be stored: bad name or too large.
    #[error("{0}")]
    BadTemplate(Problem),
    /// Rendering failed (syntax, undefined variable, fuel exhausted, bad YAML).
    #[error("{}", join(.0))]
    Render(Vec<Problem>),
    /// The rendered objects break a rule (namespace, kind, names, quantities).
    #[error("{}", join(.0))]
    Invalid(Vec<Problem>),
}

impl ManifestError {
    pub fn problems(&self) -> &[Problem] {
        match self {
            ManifestError::BadTemplate(p) => std::slice::from_ref(p),
            ManifestError::Render(ps) | ManifestError::Invalid(ps) => ps,
        }
    }
}

fn join(ps: &[Problem]) -> String {
    ps.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ")
}
