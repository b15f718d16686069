//! The server's notion of "now" for rules that depend on the calendar
//! (deploy windows and freezes). In production it is the system clock; a
//! test pins it ([`Clock::set`]) to check what happens at 21:59 and 22:00 in
//! Shanghai without waiting for them. Only window decisions read it: leases,
//! sessions and timestamps keep the system clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

const SYSTEM: i64 = i64::MIN;

/// Shared by every clone: setting it in a test moves the running server's clock.
#[derive(Clone)]
pub struct Clock(Arc<AtomicI64>);

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pinned() {
            None => f.write_str("Clock(system)"),
            Some(ms) => write!(f, "Clock(pinned at {ms})"),
        }
    }
}

impl Clock {
    pub fn system() -> Self {
        Self(Arc::new(AtomicI64::new(SYSTEM)))
    }

    /// Pins the clock at `ms` (milliseconds since the epoch).
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }

    fn pinned(&self) -> Option<i64> {
        let v = self.0.load(Ordering::SeqCst);
        (v != SYSTEM).then_some(v)
    }

    pub fn now_ms(&self) -> i64 {
        self.pinned().unwrap_or_else(prism_store::now_ms)
    }

    /// When (system time, for the job queue) to look again at something
    /// that happens at `at_ms` on this clock. A pinned clock does not move by
    /// itself, so it is looked at again shortly; the system clock at the
    /// moment itself, but at least hourly (a schedule may have changed).
    pub fn recheck_at(&self, at_ms: i64) -> i64 {
        let real = prism_store::now_ms();
        match self.pinned() {
            Some(_) => real + 100,
            None => real + (at_ms - real).clamp(0, 3_600_000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_clock_is_shared_by_its_clones() {
        let c = Clock::system();
        let other = c.clone();
        assert!((c.now_ms() - prism_store::now_ms()).abs() < 5_000);
        c.set(42);
        assert_eq!(other.now_ms(), 42);
        let r = other.recheck_at(10_000_000_000_000);
        assert!(r - prism_store::now_ms() <= 1_000, "a pinned clock is rechecked soon");
        let sys = Clock::system();
        let far = sys.recheck_at(prism_store::now_ms() + 86_400_000);
        assert!(far - prism_store::now_ms() <= 3_600_000 + 1_000, "at least hourly");
    }
}
