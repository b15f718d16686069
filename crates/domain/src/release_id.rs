use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// A release order's id: `r` followed by a monotonic sequence number. It is
/// short, sorts with its number and is a valid image tag, so the image built
/// for the release is tagged with it directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ReleaseId(i64);

impl ReleaseId {
    pub fn from_seq(seq: i64) -> Self {
        Self(seq)
    }
    pub fn seq(self) -> i64 {
        self.0
    }
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        let digits = raw
            .strip_prefix('r')
            .ok_or_else(|| ValidationError::new(field, format!("{raw:?} is not a release id (like r42)")))?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
            return Err(ValidationError::new(
                field,
                format!("{raw:?} is not a release id (like r42)"),
            ));
        }
        let n: i64 = digits
            .parse()
            .map_err(|_| ValidationError::new(field, format!("{raw:?} is out of range")))?;
        Ok(Self(n))
    }
}

impl fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

impl FromStr for ReleaseId {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse("release", s)
    }
}
impl TryFrom<String> for ReleaseId {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse("release", &s)
    }
}
impl From<ReleaseId> for String {
    fn from(r: ReleaseId) -> Self {
        r.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses() {
        assert_eq!(ReleaseId::parse("id", "r42").unwrap().seq(), 42);
        assert_eq!(ReleaseId::from_seq(7).to_string(), "r7");
        for bad in ["42", "r", "r-1", "r01", "R1", "r1a", "r99999999999999999999"] {
            assert!(ReleaseId::parse("id", bad).is_err(), "{bad}");
        }
    }
}
