//! Slows down password guessing without locking anyone out.
//!
//! Every attempt is counted *before* its (slow) password check, atomically
//! under one lock, so parallel guesses cannot all slip through before the
//! first failure is recorded. Counts are kept per (account, address) and
//! per address (any account): after [`FREE_FAILURES`] attempts that did not succeed, the
//! next must wait, the wait doubling with every further one (capped at
//! [`MAX_DELAY`]). There is no account-wide lock: the right password from
//! an address that has not been failing always gets its check, so nobody
//! can keep `admin` out by guessing from elsewhere.
//!
//! ```text
//! begin(account, address) --delay due--> Err(wait)            (429, nothing checked)
//!                         --else------> Attempt (counted as in flight)
//! Attempt::succeeded()  -> the pair's count is cleared
//! Attempt::failed() / dropped -> counts as a failure (stays counted)
//! ```

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Attempts allowed without waiting, per (account, address) and per address.
pub const FREE_FAILURES: u32 = 5;
const BASE_DELAY: Duration = Duration::from_secs(1);
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Per address, across accounts (password spraying); successes do not count.
const FREE_PER_ADDRESS: u32 = FREE_FAILURES;

#[derive(Default)]
pub struct LoginThrottle {
    /// key -> (attempts not succeeded, time of the last one)
    entries: Mutex<HashMap<String, (u32, Instant)>>,
}

/// One admitted attempt, already counted as a failure; only a success
/// (reported with [`Attempt::succeeded`]) takes it back.
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    pair: String,
    addr: String,
    /// The address's entry before this attempt, and when this attempt
    /// stamped it: restored on success unless another attempt came since.
    addr_before: Option<(u32, Instant)>,
    stamped: Instant,
}

impl Attempt<'_> {
    /// The right password: the pair's count is cleared and this attempt no
    /// longer counts against the address.
    pub fn succeeded(self) {
        let mut map = self.throttle.entries.lock().expect("throttle lock");
        map.remove(&self.pair);
        self.take_back_address(&mut map);
    }

    /// Neither right nor wrong: the password could not be checked (the
    /// directory was unreachable). The attempt is taken back from both counts.
    pub fn not_counted(self) {
        let mut map = self.throttle.entries.lock().expect("throttle lock");
        if let Some(e) = map.get_mut(&self.pair) {
            e.0 = e.0.saturating_sub(1);
            if e.0 == 0 {
                map.remove(&self.pair);
            }
        }
        self.take_back_address(&mut map);
    }

    fn take_back_address(&self, map: &mut std::sync::MutexGuard<'_, HashMap<String, (u32, Instant)>>) {
        if let Some(e) = map.get_mut(&self.addr) {
            // Taken back: count and time as if this attempt had not happened
            // (other attempts since then keep theirs).
            e.0 = e.0.saturating_sub(1);
            if e.1 == self.stamped {
                if let Some((_, last)) = self.addr_before {
                    e.1 = last;
                }
            }
            if e.0 == 0 {
                map.remove(&self.addr);
            }
        }
    }

    /// A wrong password (or unknown user): it stays counted.
    pub fn failed(self) {}
}

fn wait_for(entry: Option<&(u32, Instant)>, free: u32, now: Instant) -> Option<Duration> {
    let &(attempts, last) = entry?;
    if attempts < free {
        return None;
    }
    let delay = BASE_DELAY.saturating_mul(1 << (attempts - free).min(20)).min(MAX_DELAY);
    let until = last + delay;
    (until > now).then(|| until - now)
}

impl LoginThrottle {
    /// Admits one attempt and counts it at once, or says how long to wait.
    pub fn begin(&self, account: &str, address: &str) -> Result<Attempt<'_>, Duration> {
        let now = Instant::now();
        let pair = format!("pair:{address}|{account}");
        let addr = format!("addr:{address}");
        let mut map = self.entries.lock().expect("throttle lock");
        if map.len() > 100_000 {
            map.retain(|_, (_, last)| now.duration_since(*last) < FORGET_AFTER);
        }
        let wait = wait_for(map.get(&pair), FREE_FAILURES, now).max(wait_for(map.get(&addr), FREE_PER_ADDRESS, now));
        if let Some(w) = wait {
            return Err(w);
        }
        let addr_before = map.get(&addr).copied();
        for key in [&pair, &addr] {
            let e = map.entry(key.clone()).or_insert((0, now));
            if now.duration_since(e.1) >= FORGET_AFTER {
                e.0 = 0;
            }
            e.0 += 1;
            e.1 = now;
        }
        Ok(Attempt {
            throttle: self,
            pair,
            addr,
            addr_before,
            stamped: now,
        })
    }

    /// How long an attempt from `address` for `account` must still wait, if any.
    pub fn check(&self, account: &str, address: &str) -> Option<Duration> {
        let now = Instant::now();
        let map = self.entries.lock().expect("throttle lock");
        wait_for(map.get(&format!("pair:{address}|{account}")), FREE_FAILURES, now).max(wait_for(
            map.get(&format!("addr:{address}")),
            FREE_PER_ADDRESS,
            now,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 11 item 6: attempts are counted before the check, and the
    /// account is never locked for an address that has not been failing.
    #[test]
    fn attempts_count_before_the_check_and_other_addresses_get_through() {
        let t = LoginThrottle::default();
        // Six attempts in flight at once: the sixth is refused before any result is known.
        let admitted: Vec<_> = (0..FREE_FAILURES)
            .map(|_| t.begin("alice", "1.2.3.4").unwrap())
            .collect();
        assert!(t.begin("alice", "1.2.3.4").is_err(), "counted before the check");
        drop(admitted);
        assert!(t.check("alice", "1.2.3.4").is_some());
        // The account is not locked: another address gets its check.
        t.begin("alice", "9.9.9.9").unwrap().succeeded();
        // The failing address waits for every account (password spraying).
        assert!(t.begin("bob", "1.2.3.4").is_err());
    }

    #[test]
    fn a_success_clears_the_pair_and_delays_grow() {
        let t = LoginThrottle::default();
        for _ in 0..FREE_FAILURES - 1 {
            t.begin("carol", "5.5.5.5").unwrap().failed();
        }
        t.begin("carol", "5.5.5.5").unwrap().succeeded();
        assert!(t.check("carol", "5.5.5.5").is_none());
        let now = Instant::now();
        let d = |n| wait_for(Some(&(n, now)), FREE_FAILURES, now).unwrap();
        assert!(d(FREE_FAILURES + 1) > d(FREE_FAILURES));
        assert_eq!(d(FREE_FAILURES + 40), MAX_DELAY);
    }

    /// A password that could not be checked (the directory was down) counts
    /// neither for the account nor for the address.
    #[test]
    fn an_unchecked_attempt_is_not_counted() {
        let t = LoginThrottle::default();
        for _ in 0..FREE_FAILURES * 3 {
            t.begin("dora", "6.6.6.6").unwrap().not_counted();
        }
        assert!(t.check("dora", "6.6.6.6").is_none());
        assert!(t.begin("erin", "6.6.6.6").is_ok());
    }
}
