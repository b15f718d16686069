use std::collections::BTreeMap;

use crate::ValidationError;

/// Checks a map of container environment variables: names must be C
/// identifiers (what every shell and runtime accepts), values bounded.
pub fn validate_env_vars(field: &str, vars: &BTreeMap<String, String>) -> Result<(), ValidationError> {
    if vars.len() > 200 {
        return Err(ValidationError::new(field, "at most 200 variables"));
    }
    for (k, v) in vars {
        let mut chars = k.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') || k.len() > 253 {
            return Err(ValidationError::new(
                format!("{field}.{k}"),
                "variable names must be letters, digits and '_', not starting with a digit",
            ));
        }
        if v.len() > 32 * 1024 {
            return Err(ValidationError::new(format!("{field}.{k}"), "value longer than 32 KiB"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let ok: BTreeMap<_, _> = [
            ("JAVA_OPTS".to_string(), "-Xmx1g".to_string()),
            ("_x1".into(), "".into()),
        ]
        .into();
        assert!(validate_env_vars("env", &ok).is_ok());
        for bad in ["1A", "A-B", "", "A B", "Ä"] {
            let m: BTreeMap<_, _> = [(bad.to_string(), "v".to_string())].into();
            assert_eq!(validate_env_vars("env", &m).unwrap_err().field, format!("env.{bad}"));
        }
    }
}
