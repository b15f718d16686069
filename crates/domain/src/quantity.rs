//! Kubernetes resource quantities (`250m`, `1.5`, `512Mi`, `1G`, `2e3`), parsed
//! into exact integers: CPU in millicores, memory in bytes. Exactness matters
//! because Prism compares limits with requests and renders them back.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// Parses a quantity into an exact count of `1/scale_den` units, refusing
/// anything that is not a whole number of those units.
fn parse_quantity(field: &str, raw: &str, unit_den: u128) -> Result<u128, ValidationError> {
    let err = |m: String| ValidationError::new(field, m);
    let s = raw.trim();
    if s.is_empty() {
        return Err(err("must not be empty".into()));
    }
    if s != raw {
        return Err(err(format!("{raw:?} has surrounding spaces")));
    }
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return Err(err(format!("{raw:?} is not a Kubernetes quantity")));
    }
    // (multiplier numerator, multiplier denominator)
    let (mul, den): (u128, u128) = match suffix {
        "" => (1, 1),
        "m" => (1, 1000),
        "k" => (1000, 1),
        "M" => (1000u128.pow(2), 1),
        "G" => (1000u128.pow(3), 1),
        "T" => (1000u128.pow(4), 1),
        "P" => (1000u128.pow(5), 1),
        "E" => (1000u128.pow(6), 1),
        "Ki" => (1 << 10, 1),
        "Mi" => (1 << 20, 1),
        "Gi" => (1 << 30, 1),
        "Ti" => (1 << 40, 1),
        "Pi" => (1 << 50, 1),
        "Ei" => (1 << 60, 1),
        s if s.starts_with(['e', 'E']) && s.len() > 1 => {
            let exp: u32 = s[1..]
                .parse()
                .map_err(|_| err(format!("{raw:?} has an invalid exponent")))?;
            if exp > 18 {
                return Err(err(format!("{raw:?} is too large")));
            }
            (10u128.pow(exp), 1)
        }
        other => {
            return Err(err(format!(
                "{raw:?} has an unknown suffix {other:?} (use m, k, M, G, T, Ki, Mi, Gi, Ti ...)"
            )))
        }
    };
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if frac_part.len() > 9 {
        return Err(err(format!("{raw:?} has too many decimal places")));
    }
    let digits = format!("{int_part}{frac_part}");
    let whole: u128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| err(format!("{raw:?} is too large")))?
    };
    let frac_den = 10u128.pow(frac_part.len() as u32);
    // value in units = whole / frac_den * mul / den * unit_den
    let num = whole
        .checked_mul(mul)
        .and_then(|v| v.checked_mul(unit_den))
        .ok_or_else(|| err(format!("{raw:?} is too large")))?;
    let den = frac_den * den;
    if num % den != 0 {
        return Err(err(format!("{raw:?} is finer than the smallest unit")));
    }
    let v = num / den;
    if v > i64::MAX as u128 {
        return Err(err(format!("{raw:?} is too large")));
    }
    Ok(v)
}

/// CPU in millicores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cpu(u64);

impl Cpu {
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        let v = parse_quantity(field, raw, 1000)?;
        if v == 0 {
            return Err(ValidationError::new(field, "must be greater than zero"));
        }
        Ok(Self(v as u64))
    }
    pub fn millicores(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Cpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(1000) {
            write!(f, "{}", self.0 / 1000)
        } else {
            write!(f, "{}m", self.0)
        }
    }
}

impl TryFrom<String> for Cpu {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse("cpu", &s)
    }
}
impl From<Cpu> for String {
    fn from(c: Cpu) -> Self {
        c.to_string()
    }
}

/// Memory in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Memory(u64);

impl Memory {
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        let v = parse_quantity(field, raw, 1)?;
        if v == 0 {
            return Err(ValidationError::new(field, "must be greater than zero"));
        }
        Ok(Self(v as u64))
    }
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 4] = [("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)];
        for (suffix, size) in UNITS {
            if self.0.is_multiple_of(size) {
                return write!(f, "{}{suffix}", self.0 / size);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl TryFrom<String> for Memory {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse("memory", &s)
    }
}
impl From<Memory> for String {
    fn from(m: Memory) -> Self {
        m.to_string()
    }
}

/// Requests and limits for one container, with limit >= request guaranteed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Resources {
    pub cpu_request: Cpu,
    pub cpu_limit: Cpu,
    pub memory_request: Memory,
    pub memory_limit: Memory,
}

impl Resources {
    pub fn new(
        cpu_request: Cpu,
        cpu_limit: Cpu,
        memory_request: Memory,
        memory_limit: Memory,
    ) -> Result<Self, ValidationError> {
        if cpu_limit < cpu_request {
            return Err(ValidationError::new(
                "cpu_limit",
                format!("limit {cpu_limit} is below the request {cpu_request}"),
            ));
        }
        if memory_limit < memory_request {
            return Err(ValidationError::new(
                "memory_limit",
                format!("limit {memory_limit} is below the request {memory_request}"),
            ));
        }
        Ok(Self {
            cpu_request,
            cpu_limit,
            memory_request,
            memory_limit,
        })
    }

    /// Parses the four quantities as they come from a form or JSON body.
    pub fn parse(
        cpu_request: &str,
        cpu_limit: &str,
        memory_request: &str,
        memory_limit: &str,
    ) -> Result<Self, ValidationError> {
        Self::new(
            Cpu::parse("cpu_request", cpu_request)?,
            Cpu::parse("cpu_limit", cpu_limit)?,
            Memory::parse("memory_request", memory_request)?,
            Memory::parse("memory_limit", memory_limit)?,
        )
    }
}

impl Default for Resources {
    fn default() -> Self {
        Self {
            cpu_request: Cpu(100),
            cpu_limit: Cpu(500),
            memory_request: Memory(128 << 20),
            memory_limit: Memory(512 << 20),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_forms() {
        let cases = [
            ("250m", 250),
            ("1", 1000),
            ("1.5", 1500),
            ("0.1", 100),
            ("2k", 2_000_000),
            ("1e3", 1_000_000),
        ];
        for (raw, milli) in cases {
            assert_eq!(Cpu::parse("cpu", raw).unwrap().millicores(), milli, "{raw}");
        }
        assert_eq!(Cpu::parse("c", "1500m").unwrap().to_string(), "1500m");
        assert_eq!(Cpu::parse("c", "2").unwrap().to_string(), "2");
    }

    #[test]
    fn memory_forms() {
        let cases = [
            ("512Mi", 512u64 << 20),
            ("1Gi", 1 << 30),
            ("1G", 1_000_000_000),
            ("128974848", 128974848),
            ("1.5Gi", 3 << 29),
            ("129e6", 129_000_000),
        ];
        for (raw, bytes) in cases {
            assert_eq!(Memory::parse("m", raw).unwrap().bytes(), bytes, "{raw}");
        }
        assert_eq!(Memory::parse("m", "1024Mi").unwrap().to_string(), "1Gi");
    }

    #[test]
    fn refuses_bad_quantities() {
        for bad in [
            "",
            "abc",
            "1.2.3",
            "-1",
            "1mi",
            "1 Gi",
            " 1",
            "0",
            "0.0001",
            "1e99",
            "1.5m",
            "99999999999999999999999Ei",
            ".",
        ] {
            assert!(Cpu::parse("cpu_request", bad).is_err(), "cpu {bad:?}");
        }
        for bad in ["", "1.5", "1m", "12XB", "1Gb", "0Mi"] {
            let e = Memory::parse("memory_limit", bad).unwrap_err();
            assert_eq!(e.field, "memory_limit", "{bad:?}");
        }
    }

    #[test]
    fn limit_must_cover_request() {
        let e = Resources::parse("500m", "250m", "1Gi", "1Gi").unwrap_err();
        assert_eq!(e.field, "cpu_limit");
        let e = Resources::parse("250m", "500m", "1Gi", "512Mi").unwrap_err();
        assert_eq!(e.field, "memory_limit");
        assert!(Resources::parse("250m", "250m", "1Gi", "1Gi").is_ok());
    }
}
