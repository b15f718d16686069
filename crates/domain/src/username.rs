use crate::ValidationError;

/// Checks a login name: 1-64 characters of lowercase letters, digits, '.', '_'
/// and '-', starting with a letter or digit.
pub fn validate_username(field: &str, raw: &str) -> Result<(), ValidationError> {
    let ok_first = raw
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok_rest = raw
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(c));
    if raw.is_empty() || raw.len() > 64 || !ok_first || !ok_rest {
        return Err(ValidationError::new(
            field,
            "must be 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn usernames() {
        for ok in ["admin", "john.doe", "a_b-c", "1ops"] {
            assert!(super::validate_username("u", ok).is_ok(), "{ok}");
        }
        for bad in ["", "John", ".x", "a b", "a/b", "../x", &"a".repeat(65)] {
            assert!(super::validate_username("u", bad).is_err(), "{bad}");
        }
    }
}
