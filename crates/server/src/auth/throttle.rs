//! Slows down password guessing: after a few failures, an account and an
//! address each must wait, doubling with every further failure (capped).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const FREE_FAILURES: u32 = 5;
const BASE_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);

#[derive(Default)]
pub struct LoginThrottle {
    entries: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginThrottle {
    fn wait_for(entry: Option<&(u32, Instant)>, now: Instant) -> Option<Duration> {
        let &(failures, last) = entry?;
        if failures < FREE_FAILURES {
            return None;
        }
        let delay = BASE_DELAY
            .saturating_mul(1 << (failures - FREE_FAILURES).min(20))
            .min(MAX_DELAY);
        let until = last + delay;
        (until > now).then(|| until - now)
    }

    /// How long the caller must still wait, if any, for the account or the address.
    pub fn check(&self, account: &str, address: &str) -> Option<Duration> {
        let now = Instant::now();
        let map = self.entries.lock().expect("throttle lock");
        let a = Self::wait_for(map.get(&format!("user:{account}")), now);
        let b = Self::wait_for(map.get(&format!("addr:{address}")), now);
        a.max(b)
    }

    pub fn failed(&self, account: &str, address: &str) {
        let now = Instant::now();
        let mut map = self.entries.lock().expect("throttle lock");
        map.retain(|_, (_, last)| now.duration_since(*last) < FORGET_AFTER);
        for key in [format!("user:{account}"), format!("addr:{address}")] {
            let e = map.entry(key).or_insert((0, now));
            e.0 += 1;
            e.1 = now;
        }
    }

    pub fn succeeded(&self, account: &str) {
        self.entries
            .lock()
            .expect("throttle lock")
            .remove(&format!("user:{account}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_free_failures_per_account_and_address() {
        let t = LoginThrottle::default();
        for _ in 0..FREE_FAILURES - 1 {
            t.failed("alice", "1.2.3.4");
        }
        assert!(t.check("alice", "1.2.3.4").is_none());
        t.failed("alice", "1.2.3.4");
        assert!(
            t.check("alice", "9.9.9.9").is_some(),
            "account throttled from any address"
        );
        assert!(t.check("bob", "1.2.3.4").is_some(), "address throttled for any account");
        assert!(t.check("bob", "9.9.9.9").is_none());
        t.succeeded("alice");
        assert!(t.check("alice", "9.9.9.9").is_none());
    }
}
