use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{ManifestError, Problem};

/// The built-in templates, used for any name the project does not override.
const BUILTIN: &[(&str, &str)] = &[
    ("deployment.yaml", include_str!("builtin/deployment.yaml")),
    ("service.yaml", include_str!("builtin/service.yaml")),
    ("ingress.yaml", include_str!("builtin/ingress.yaml")),
    ("configmap.yaml", include_str!("builtin/configmap.yaml")),
    ("hpa.yaml", include_str!("builtin/hpa.yaml")),
];

pub const BUILTIN_NAMES: [&str; 5] = [
    "deployment.yaml",
    "service.yaml",
    "ingress.yaml",
    "configmap.yaml",
    "hpa.yaml",
];

pub const MAX_TEMPLATE_BYTES: usize = 256 * 1024;
pub const MAX_TEMPLATES: usize = 100;

/// A project's templates over the built-in defaults. Names starting with `_`
/// are partials (macros, includes) and are not rendered on their own.
/// (De)serialisable as the plain name -> body map, for rendering in a
/// sandboxed process; names are checked where sets are built from input.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TemplateSet {
    files: BTreeMap<String, String>,
}

impl TemplateSet {
    /// Only the built-in templates.
    pub fn builtin() -> Self {
        Self {
            files: BUILTIN.iter().map(|(n, b)| (n.to_string(), b.to_string())).collect(),
        }
    }

    /// The built-ins with the project's templates on top. An empty body
    /// removes a built-in (e.g. an application that wants no Service).
    pub fn with_overrides(overrides: &BTreeMap<String, String>) -> Result<Self, ManifestError> {
        if overrides.len() > MAX_TEMPLATES {
            return Err(ManifestError::BadTemplate(Problem {
                template: "*".into(),
                line: None,
                field: None,
                message: format!("at most {MAX_TEMPLATES} templates per project"),
            }));
        }
        let mut set = Self::builtin();
        for (name, body) in overrides {
            check_name(name)?;
            if body.len() > MAX_TEMPLATE_BYTES {
                return Err(ManifestError::BadTemplate(Problem {
                    template: name.clone(),
                    line: None,
                    field: None,
                    message: format!("larger than {MAX_TEMPLATE_BYTES} bytes"),
                }));
            }
            if body.trim().is_empty() {
                set.files.remove(name);
            } else {
                set.files.insert(name.clone(), body.clone());
            }
        }
        Ok(set)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.files.get(name).map(String::as_str)
    }

    /// Every template, partials included.
    pub fn all_names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// Templates rendered into objects, in name order.
    pub fn entry_points(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str).filter(|n| !n.starts_with('_'))
    }
}

/// A template name is one path segment of safe characters: it can never
/// point outside the project's own set.
pub fn check_name(name: &str) -> Result<(), ManifestError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !name.starts_with('.')
        && (name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".j2") || name.starts_with('_'));
    if ok {
        Ok(())
    } else {
        Err(ManifestError::BadTemplate(Problem {
            template: name.to_owned(),
            line: None,
            field: Some("name".into()),
            message: "template names are one segment of letters, digits, '.', '_' and '-', ending in .yaml, .yml or .j2 (partials start with '_')".into(),
        }))
    }
}
