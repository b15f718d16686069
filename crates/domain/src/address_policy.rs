//! Which network addresses Prism may contact for git, registry, Jenkins,
//! cluster and notification URLs (issue 11 item 9). Checked on the resolved
//! address, not the name, so a hostname that resolves to a metadata address
//! is refused like the address itself.
//!
//! Rules are address ranges (CIDR); the most specific range that contains
//! an address decides, and a deny wins over an allow of the same length.
//! Built in: link-local (`169.254.0.0/16`, `fe80::/10`) and cloud metadata
//! addresses (`fd00:ec2::254`, `100.100.100.200`) are denied; everything else
//! is allowed. An admin adds allowed and denied ranges; an allowed range
//! more specific than a built-in deny re-opens that part of it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// An address range: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `fd00::/8`, or a single address (`127.0.0.2`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = IpAddr::from_str(addr.trim()).map_err(|_| format!("{s:?} is not an address or range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(Cidr {
            addr: canonical(addr),
            prefix,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// IPv4-mapped IPv6 (`::ffff:169.254.169.254`) is the IPv4 address: a
/// denied IPv4 range cannot be reached by writing it as IPv6.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = (prefix / 8) as usize;
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[full] & mask) == (b[full] & mask)
}

/// The built-in denied ranges.
pub fn default_denied() -> Vec<Cidr> {
    vec![
        Cidr {
            addr: IpAddr::V4(Ipv4Addr::new(169, 254, 0, 0)),
            prefix: 16,
        },
        Cidr {
            addr: IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)),
            prefix: 10,
        },
        // AWS's IPv6 instance metadata service.
        Cidr {
            addr: IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254)),
            prefix: 128,
        },
        // Alibaba Cloud's metadata service.
        Cidr {
            addr: IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
            prefix: 32,
        },
    ]
}

/// The admin's additions, as stored and shown (`allowed` and `denied` ranges).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AddressRules {
    #[serde(default)]
    pub allowed: Vec<String>,
    #[serde(default)]
    pub denied: Vec<String>,
}

/// The parsed policy: built-in denies plus the admin's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPolicy {
    allowed: Vec<Cidr>,
    denied: Vec<Cidr>,
}

impl Default for AddressPolicy {
    fn default() -> Self {
        AddressPolicy {
            allowed: Vec::new(),
            denied: default_denied(),
        }
    }
}

impl AddressPolicy {
    /// Parses the admin's rules; errors name the field and entry
    /// (`address_policy.denied[1]`).
    pub fn parse(field: &str, rules: &AddressRules) -> Result<Self, ValidationError> {
        let parse_all = |name: &str, list: &[String]| -> Result<Vec<Cidr>, ValidationError> {
            if list.len() > 256 {
                return Err(ValidationError::new(format!("{field}.{name}"), "at most 256 ranges"));
            }
            list.iter()
                .enumerate()
                .map(|(i, s)| Cidr::parse(s).map_err(|m| ValidationError::new(format!("{field}.{name}[{i}]"), m)))
                .collect()
        };
        let allowed = parse_all("allowed", &rules.allowed)?;
        let mut denied = default_denied();
        denied.extend(parse_all("denied", &rules.denied)?);
        Ok(AddressPolicy { allowed, denied })
    }

    /// Whether Prism may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let longest = |list: &[Cidr]| list.iter().filter(|c| c.contains(ip)).map(|c| c.prefix).max();
        match (longest(&self.allowed), longest(&self.denied)) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(a), Some(d)) => a > d,
        }
    }
}

/// The one message a refused, closed or filtered destination gets where a
/// non-admin may read it: it does not tell a scanner which one it was.
pub const UNREACHABLE: &str = "could not connect (refused, unreachable, or not an allowed address)";

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn rules(allowed: &[&str], denied: &[&str]) -> AddressRules {
        AddressRules {
            allowed: allowed.iter().map(|s| s.to_string()).collect(),
            denied: denied.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn default_refuses_link_local_and_metadata_only() {
        let p = AddressPolicy::default();
        for denied in [
            "169.254.169.254",
            "169.254.0.1",
            "fe80::1",
            "febf::1",
            "fd00:ec2::254",
            "100.100.100.200",
            "::ffff:169.254.169.254",
        ] {
            assert!(!p.permits(ip(denied)), "{denied} must be refused");
        }
        for allowed in [
            "127.0.0.1",
            "::1",
            "10.0.0.5",
            "192.168.1.1",
            "8.8.8.8",
            "169.255.0.1",
            "fec0::1",
            "fd00:ec2::253",
            "100.100.100.201",
        ] {
            assert!(p.permits(ip(allowed)), "{allowed} must be allowed");
        }
    }

    #[test]
    fn admin_ranges_most_specific_wins() {
        let p = AddressPolicy::parse(
            "address_policy",
            &rules(&["169.254.10.0/24", "10.1.2.3"], &["10.0.0.0/8", "127.0.0.2/32"]),
        )
        .unwrap();
        assert!(!p.permits(ip("10.9.9.9")));
        assert!(p.permits(ip("10.1.2.3")), "a more specific allow re-opens");
        assert!(p.permits(ip("169.254.10.7")), "an admin may open part of link-local");
        assert!(!p.permits(ip("169.254.169.254")));
        assert!(!p.permits(ip("127.0.0.2")));
        assert!(p.permits(ip("127.0.0.1")));
        assert!(
            !p.permits(ip("::ffff:127.0.0.2")),
            "IPv4-mapped IPv6 is the IPv4 address"
        );
        // Same length: deny wins.
        let tie = AddressPolicy::parse("p", &rules(&["10.0.0.0/8"], &["10.0.0.0/8"])).unwrap();
        assert!(!tie.permits(ip("10.0.0.1")));
    }

    #[test]
    fn bad_ranges_name_the_entry() {
        let e = AddressPolicy::parse("address_policy", &rules(&[], &["10.0.0.0/8", "10.0.0.0/33"])).unwrap_err();
        assert_eq!(e.field, "address_policy.denied[1]");
        let e = AddressPolicy::parse("address_policy", &rules(&["example.com"], &[])).unwrap_err();
        assert_eq!(e.field, "address_policy.allowed[0]");
        assert!(Cidr::parse("fd00::/129").is_err());
        assert_eq!(Cidr::parse("10.1.0.0/16").unwrap().to_string(), "10.1.0.0/16");
    }

    #[test]
    fn cidr_contains_partial_bytes() {
        let c = Cidr::parse("fe80::/10").unwrap();
        assert!(c.contains(ip("fe80::1")));
        assert!(c.contains(ip("febf:ffff::1")));
        assert!(!c.contains(ip("fec0::1")));
        assert!(!c.contains(ip("169.254.0.1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("1.2.3.4")));
    }
}
