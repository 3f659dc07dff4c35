//! Login throttling: failures counted per (user name, client address) and per client
//! address. From the fifth failure on, each key waits 2^(n-5) seconds after its last
//! failure, capped at 15 minutes. A throttled attempt is refused before any password work,
//! so a flood costs no argon2 time, and a user at another address is not held back by
//! someone else's failures. Counters are forgotten 15 minutes after the last failure, and a
//! successful login clears that user's counter for that address (not the address's own).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const FREE_FAILURES: u32 = 5;
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Above this many tracked keys, stale ones are swept on the next failure.
const SWEEP_AT: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    UserAt(String, IpAddr),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Failures {
    fn wait_until(&self) -> Option<Instant> {
        if self.count < FREE_FAILURES {
            return None;
        }
        let exp = (self.count - FREE_FAILURES).min(20);
        let delay = Duration::from_secs(1u64 << exp).min(MAX_DELAY);
        Some(self.last + delay)
    }
}

#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<Key, Failures>>,
}

fn user_key(name: &str, ip: IpAddr) -> Key {
    Key::UserAt(name.trim().to_lowercase(), ip.to_canonical())
}

impl Throttle {
    /// If this attempt must wait, how long.
    pub fn check(&self, name: &str, ip: IpAddr, now: Instant) -> Option<Duration> {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        [user_key(name, ip), Key::Address(ip.to_canonical())]
            .iter()
            .filter_map(|k| map.get(k)?.wait_until())
            .filter(|until| *until > now)
            .max()
            .map(|until| until - now)
    }

    /// Records a failure; true when this failure starts a throttle (for the audit trail).
    pub fn failed(&self, name: &str, ip: IpAddr, now: Instant) -> bool {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > SWEEP_AT {
            map.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER.max(MAX_DELAY));
        }
        let mut started = false;
        for key in [user_key(name, ip), Key::Address(ip.to_canonical())] {
            let entry = map.entry(key).or_insert(Failures {
                count: 0,
                last: now,
            });
            if now.duration_since(entry.last) >= FORGET_AFTER {
                entry.count = 0;
            }
            entry.count += 1;
            entry.last = now;
            started |= entry.count == FREE_FAILURES;
        }
        started
    }

    /// A successful login clears the failures of that user at that address.
    pub fn succeeded(&self, name: &str, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&user_key(name, ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn five_free_failures_then_doubling_delays_capped_at_15_minutes() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 1..=4 {
            assert!(!t.failed("admin", ip("192.0.2.1"), now), "failure {i}");
            assert_eq!(t.check("admin", ip("192.0.2.1"), now), None);
        }
        assert!(t.failed("admin", ip("192.0.2.1"), now));
        assert_eq!(
            t.check("admin", ip("192.0.2.1"), now),
            Some(Duration::from_secs(1))
        );
        t.failed("admin", ip("192.0.2.1"), now);
        assert_eq!(
            t.check("admin", ip("192.0.2.1"), now),
            Some(Duration::from_secs(2))
        );
        for _ in 0..30 {
            t.failed("admin", ip("192.0.2.1"), now);
        }
        assert_eq!(t.check("admin", ip("192.0.2.1"), now), Some(MAX_DELAY));
        assert_eq!(t.check("admin", ip("192.0.2.1"), now + MAX_DELAY), None);
    }

    #[test]
    fn another_address_is_not_blocked_and_success_clears_the_pair() {
        let t = Throttle::default();
        let now = Instant::now();
        for _ in 0..10 {
            t.failed("admin", ip("192.0.2.66"), now);
        }
        assert!(t.check("admin", ip("192.0.2.66"), now).is_some());
        assert_eq!(t.check("admin", ip("198.51.100.7"), now), None);
        // The attacker's address is held back for every user name (password spraying).
        assert!(t.check("alice", ip("192.0.2.66"), now).is_some());

        // Success clears the pair but not the address: one valid account must not let an
        // address reset its count and keep guessing other users' passwords.
        let t = Throttle::default();
        for _ in 0..4 {
            t.failed("bob", ip("192.0.2.9"), now);
        }
        t.succeeded("bob", ip("192.0.2.9"));
        assert_eq!(t.check("bob", ip("192.0.2.9"), now), None);
        t.failed("bob", ip("192.0.2.9"), now);
        assert_eq!(
            t.check("bob", ip("192.0.2.9"), now),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn failures_are_forgotten_after_quiet_time() {
        let t = Throttle::default();
        let now = Instant::now();
        for _ in 0..5 {
            t.failed("x", ip("192.0.2.1"), now);
        }
        let later = now + FORGET_AFTER;
        t.failed("x", ip("192.0.2.1"), later);
        assert_eq!(t.check("x", ip("192.0.2.1"), later), None);
    }
}
