//! Pod IPs: unique addresses from the node's pod range (default 10.244.0.0/16), kept
//! per pod UID and given back when the pod is gone. Nothing is ever sent to them.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

pub struct Ipam {
    base: u32,
    size: u32,
    next: u32,
    by_pod: HashMap<String, u32>,
    used: HashSet<u32>,
}

impl Ipam {
    /// `cidr` like `10.244.0.0/16` (prefix 8 to 24).
    pub fn new(cidr: &str) -> Result<Ipam, String> {
        let (addr, prefix) = cidr.split_once('/').ok_or_else(|| format!("bad CIDR '{cidr}'"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| format!("bad CIDR '{cidr}'"))?;
        let prefix: u32 = prefix.parse().map_err(|_| format!("bad CIDR '{cidr}'"))?;
        if !(8..=24).contains(&prefix) {
            return Err(format!("CIDR '{cidr}': prefix must be 8 to 24"));
        }
        let size = 1u32 << (32 - prefix);
        Ok(Ipam {
            base: u32::from(addr) & !(size - 1),
            size,
            next: 0,
            by_pod: HashMap::new(),
            used: HashSet::new(),
        })
    }

    /// The pod's address: the one it already reports (kept across simulator restarts), the one
    /// given to it before, or a new free one.
    pub fn assign(&mut self, uid: &str, reported: Option<&str>) -> Option<Ipv4Addr> {
        if let Some(off) = self.by_pod.get(uid) {
            return Some(Ipv4Addr::from(self.base + off));
        }
        if let Some(ip) = reported.and_then(|s| s.parse::<Ipv4Addr>().ok()) {
            let ip = u32::from(ip);
            if ip >= self.base && ip - self.base < self.size {
                let off = ip - self.base;
                self.by_pod.insert(uid.to_string(), off);
                self.used.insert(off);
                return Some(Ipv4Addr::from(ip));
            }
        }
        for _ in 0..self.size {
            let off = self.next;
            self.next = (self.next + 1) % self.size;
            // Skip .0 and .255 so every address looks like an ordinary host address.
            let last = (self.base + off) & 0xff;
            if last == 0 || last == 255 || self.used.contains(&off) {
                continue;
            }
            self.used.insert(off);
            self.by_pod.insert(uid.to_string(), off);
            return Some(Ipv4Addr::from(self.base + off));
        }
        None
    }

    /// Frees the addresses of pods that no longer exist.
    pub fn retain(&mut self, live: &HashSet<String>) {
        let used = &mut self.used;
        self.by_pod.retain(|uid, off| {
            let keep = live.contains(uid);
            if !keep {
                used.remove(off);
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assigns_unique_addresses_and_reuses_freed_ones() {
        let mut ipam = Ipam::new("10.244.0.0/24").unwrap();
        let a = ipam.assign("a", None).unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 244, 0, 1));
        assert_eq!(ipam.assign("a", None), Some(a));
        let mut seen = HashSet::from([a]);
        for i in 0..253 {
            assert!(seen.insert(ipam.assign(&format!("p{i}"), None).unwrap()));
        }
        assert_eq!(ipam.assign("full", None), None);
        ipam.retain(&HashSet::from(["a".to_string()]));
        assert!(ipam.assign("again", None).is_some());
        // An address a pod already reports is kept.
        let mut ipam = Ipam::new("10.244.0.0/16").unwrap();
        assert_eq!(ipam.assign("x", Some("10.244.7.9")), Some(Ipv4Addr::new(10, 244, 7, 9)));
        assert!(Ipam::new("10.0.0.0/30").is_err());
    }
}
