//! Application secrets (issue 19): the words and names they are made of, and
//! which of several same-named secrets an application gets in an environment.
//! Values never pass through here: they are sealed by the server and opened
//! only to build the Kubernetes Secret.

use std::collections::BTreeMap;

use crate::words;
use crate::ValidationError;

words! {
    /// Where a secret's value comes from.
    pub enum SecretSource {
        /// A value typed into Prism, sealed with Prism's key.
        Value => "value",
        /// A key of a Secret that already exists in the namespace (Vault,
        /// External Secrets, Sealed Secrets): Prism only references it.
        Reference => "reference",
    }
}

words! {
    /// How the container receives a secret.
    pub enum SecretDelivery {
        /// An environment variable (`valueFrom.secretKeyRef`).
        Env => "env",
        /// A file named like the secret in the secrets directory.
        File => "file",
    }
}

/// A secret's name: what the container sees as its variable or file name,
/// so a C identifier (letters, digits, `_`, not starting with a digit) of at
/// most 253 characters; it can neither escape a directory nor a Secret key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretName(String);

impl SecretName {
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        let mut chars = raw.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') || raw.len() > 253 {
            return Err(ValidationError::new(
                field,
                "must be letters, digits and '_', not starting with a digit, at most 253 characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SecretName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of an existing Kubernetes Secret (a DNS-1123 subdomain) and one
/// of its keys (`[-._a-zA-Z0-9]+`), as a reference names them.
pub fn parse_secret_reference(field: &str, secret: &str, key: &str) -> Result<(), ValidationError> {
    let subdomain = !secret.is_empty()
        && secret.len() <= 253
        && secret
            .split('.')
            .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'))
        && secret
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !subdomain {
        return Err(ValidationError::new(
            format!("{field}.secret"),
            "must be a Kubernetes object name (lowercase letters, digits, '-' and '.')",
        ));
    }
    let key_ok = !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !key_ok {
        return Err(ValidationError::new(
            format!("{field}.key"),
            "must be a Secret key (letters, digits, '-', '_' and '.')",
        ));
    }
    Ok(())
}

/// Where a secret applies: the most specific wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SecretScope {
    /// Every application of the project, every environment.
    Project,
    /// Every application of the project, one environment.
    ProjectEnvironment,
    /// One application, every environment.
    Application,
    /// One application, one environment.
    ApplicationEnvironment,
}

impl SecretScope {
    pub fn of(application: bool, environment: bool) -> Self {
        match (application, environment) {
            (false, false) => Self::Project,
            (false, true) => Self::ProjectEnvironment,
            (true, false) => Self::Application,
            (true, true) => Self::ApplicationEnvironment,
        }
    }
}

/// Of the secrets in scope for one application and environment, the one
/// per name with the most specific scope.
pub fn effective<T: Clone>(candidates: &[(SecretScope, String, T)]) -> BTreeMap<String, T> {
    let mut best: BTreeMap<String, (SecretScope, T)> = BTreeMap::new();
    for (scope, name, item) in candidates {
        match best.get(name) {
            Some((s, _)) if s >= scope => {}
            _ => {
                best.insert(name.clone(), (*scope, item.clone()));
            }
        }
    }
    best.into_iter().map(|(k, (_, v))| (k, v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_identifiers_that_cannot_escape_a_directory() {
        assert!(SecretName::parse("name", "DB_PASSWORD").is_ok());
        assert!(SecretName::parse("name", "_x1").is_ok());
        for bad in ["", "1A", "A-B", "../x", "a/b", ".", "A B", "Ä", &"A".repeat(254)] {
            assert_eq!(SecretName::parse("name", bad).unwrap_err().field, "name", "{bad:?}");
        }
    }

    #[test]
    fn references_name_a_secret_and_a_key() {
        assert!(parse_secret_reference("existing", "vault-db", "password").is_ok());
        assert!(parse_secret_reference("existing", "db.creds", "tls.crt").is_ok());
        assert_eq!(
            parse_secret_reference("existing", "Vault", "k").unwrap_err().field,
            "existing.secret"
        );
        assert_eq!(
            parse_secret_reference("existing", "a..b", "k").unwrap_err().field,
            "existing.secret"
        );
        for bad in ["", "..", "a/b", "a b"] {
            assert_eq!(
                parse_secret_reference("existing", "db", bad).unwrap_err().field,
                "existing.key",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_most_specific_scope_wins_whatever_the_order() {
        use SecretScope::*;
        let all = vec![
            (ApplicationEnvironment, "A".to_string(), "app+env"),
            (Project, "A".to_string(), "project"),
            (Application, "A".to_string(), "app"),
            (ProjectEnvironment, "A".to_string(), "project+env"),
            (Project, "B".to_string(), "project B"),
            (ProjectEnvironment, "C".to_string(), "project+env C"),
            (Application, "C".to_string(), "app C"),
        ];
        for rotate in 0..all.len() {
            let mut c = all.clone();
            c.rotate_left(rotate);
            let e = effective(&c);
            assert_eq!(e["A"], "app+env");
            assert_eq!(e["B"], "project B");
            assert_eq!(e["C"], "app C");
        }
    }
}
