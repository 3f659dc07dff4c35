//! Login throttling: attempts counted per (user name, client address), per client address,
//! and per account across all addresses (OWASP's device-cookie pattern): a browser that
//! has logged in as the user before (its signed device cookie, see `device`) is counted on
//! its own instead, so that an attacker spread over many addresses exhausts the account's
//! budget for unknown devices without locking the owner's known browser out. From the
//! fifth failure on (the twentieth for an account), each key waits 2^(n-free) seconds
//! after its last failure, capped at 15 minutes. A throttled attempt is refused before any password work,
//! so a flood costs no argon2 time, and a user at another address is not held back by
//! someone else's failures. IPv6 clients are counted per /64, the block one host gets.
//!
//! An attempt is counted when it starts, not when its password check ends: otherwise a
//! client could send hundreds of guesses at once (h2 streams) that all pass the check while
//! the first ones still wait for argon2. A success takes its count back. Counters are
//! forgotten an hour after the last failure; a success clears that user's counter for
//! that address (not the address's own, so one valid account cannot reset an address that
//! guesses other users' passwords).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const FREE_FAILURES: u32 = 5;
/// Failures from unknown devices, all addresses together, before an account is throttled.
const ACCOUNT_FREE_FAILURES: u32 = 20;
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Above this many tracked keys, stale ones are swept on the next attempt.
const SWEEP_AT: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    UserAt(String, IpAddr),
    Address(IpAddr),
    /// Every unknown device's attempts at one account.
    Account(String),
    /// One known device's attempts at its account (by the device cookie's nonce).
    Device(String, String),
}

impl Key {
    fn free_failures(&self) -> u32 {
        match self {
            Key::Account(_) => ACCOUNT_FREE_FAILURES,
            _ => FREE_FAILURES,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Failures {
    fn wait_until(&self, free: u32) -> Option<Instant> {
        if self.count < free {
            return None;
        }
        let exp = (self.count - free).min(20);
        let delay = Duration::from_secs(1u64 << exp).min(MAX_DELAY);
        Some(self.last + delay)
    }
}

#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<Key, Failures>>,
}

/// The address as counted: IPv4 as is, IPv6 by its /64.
fn client(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
        }
        v4 => v4,
    }
}

/// What an attempt counts against: a known device its own key; anyone else the pair, the
/// address and the account.
fn keys(name: &str, ip: IpAddr, device: Option<&str>) -> Vec<Key> {
    let name = name.trim().to_lowercase();
    match device {
        Some(nonce) => vec![Key::Device(name, nonce.to_owned())],
        None => {
            let ip = client(ip);
            vec![
                Key::UserAt(name.clone(), ip),
                Key::Address(ip),
                Key::Account(name),
            ]
        }
    }
}

/// What [`Throttle::attempt`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead; `starts_throttle` when this attempt, if it fails, is the fifth.
    Proceed { starts_throttle: bool },
    /// Refuse without checking the password; retry after this long.
    Wait(Duration),
}

impl Throttle {
    /// Decides whether an attempt may proceed and, if so, counts it (as a failure until
    /// [`Throttle::succeeded`] says otherwise).
    pub fn attempt(&self, name: &str, ip: IpAddr, now: Instant) -> Verdict {
        self.attempt_from(name, ip, None, now)
    }

    /// [`Throttle::attempt`] from a known device (its device cookie's nonce), or not.
    pub fn attempt_from(
        &self,
        name: &str,
        ip: IpAddr,
        device: Option<&str>,
        now: Instant,
    ) -> Verdict {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let keys = keys(name, ip, device);
        let wait = keys
            .iter()
            .filter_map(|k| map.get(k)?.wait_until(k.free_failures()))
            .filter(|until| *until > now)
            .max();
        if let Some(until) = wait {
            return Verdict::Wait(until - now);
        }
        if map.len() > SWEEP_AT {
            map.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER.max(MAX_DELAY));
        }
        let mut starts_throttle = false;
        for key in keys {
            let free = key.free_failures();
            let entry = map.entry(key).or_insert(Failures {
                count: 0,
                last: now,
            });
            if now.duration_since(entry.last) >= FORGET_AFTER {
                entry.count = 0;
            }
            entry.count += 1;
            entry.last = now;
            starts_throttle |= entry.count == free;
        }
        Verdict::Proceed { starts_throttle }
    }

    /// The attempt succeeded: its count is taken back and the user's counter at that
    /// address cleared.
    pub fn succeeded(&self, name: &str, ip: IpAddr) {
        self.succeeded_from(name, ip, None);
    }

    /// [`Throttle::succeeded`] from a known device, or not: the pair's or the device's
    /// counter is cleared; the address's and the account's take back this attempt only.
    pub fn succeeded_from(&self, name: &str, ip: IpAddr, device: Option<&str>) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys(name, ip, device) {
            match key {
                Key::UserAt(..) | Key::Device(..) => {
                    map.remove(&key);
                }
                Key::Address(_) | Key::Account(_) => {
                    if let Some(f) = map.get_mut(&key) {
                        f.count = f.count.saturating_sub(1);
                    }
                }
            }
        }
    }

    /// The attempt did not get to a verdict (the store or the hasher failed): its count is
    /// taken back on every key, and nothing else changes.
    pub fn abandoned(&self, name: &str, ip: IpAddr, device: Option<&str>) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys(name, ip, device) {
            if let Some(f) = map.get_mut(&key) {
                f.count = f.count.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn fail(t: &Throttle, name: &str, addr: &str, now: Instant) -> Verdict {
        t.attempt(name, ip(addr), now)
    }

    fn wait(t: &Throttle, name: &str, addr: &str, now: Instant) -> Option<Duration> {
        match t.attempt(name, ip(addr), now) {
            Verdict::Wait(d) => Some(d),
            Verdict::Proceed { .. } => {
                t.succeeded(name, ip(addr)); // a probe, not an attempt
                None
            }
        }
    }

    #[test]
    fn five_free_failures_then_doubling_delays_capped_at_15_minutes() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 1..=4 {
            assert_eq!(
                fail(&t, "admin", "192.0.2.1", now),
                Verdict::Proceed {
                    starts_throttle: false
                },
                "{i}"
            );
        }
        assert_eq!(
            fail(&t, "admin", "192.0.2.1", now),
            Verdict::Proceed {
                starts_throttle: true
            }
        );
        assert_eq!(
            fail(&t, "admin", "192.0.2.1", now),
            Verdict::Wait(Duration::from_secs(1))
        );
        let later = now + Duration::from_secs(1);
        assert!(matches!(
            fail(&t, "admin", "192.0.2.1", later),
            Verdict::Proceed { .. }
        ));
        assert_eq!(
            fail(&t, "admin", "192.0.2.1", later),
            Verdict::Wait(Duration::from_secs(2))
        );
        let mut at = later;
        for _ in 0..30 {
            at += MAX_DELAY;
            fail(&t, "admin", "192.0.2.1", at);
        }
        assert_eq!(fail(&t, "admin", "192.0.2.1", at), Verdict::Wait(MAX_DELAY));
    }

    #[test]
    fn attempts_in_flight_count_so_a_burst_cannot_slip_through() {
        let t = Throttle::default();
        let now = Instant::now();
        // 100 guesses sent at once: only five get to the password check.
        let proceeding = (0..100)
            .filter(|_| matches!(fail(&t, "admin", "192.0.2.5", now), Verdict::Proceed { .. }))
            .count();
        assert_eq!(proceeding, 5);
    }

    #[test]
    fn another_address_is_not_blocked_and_success_clears_the_pair() {
        let t = Throttle::default();
        let now = Instant::now();
        for _ in 0..10 {
            fail(&t, "admin", "192.0.2.66", now);
        }
        assert!(wait(&t, "admin", "192.0.2.66", now).is_some());
        assert_eq!(wait(&t, "admin", "198.51.100.7", now), None);
        // The attacker's address is held back for every user name (password spraying).
        assert!(wait(&t, "alice", "192.0.2.66", now).is_some());

        // A success clears the pair and takes back its own count, not the others.
        let t = Throttle::default();
        for _ in 0..4 {
            fail(&t, "bob", "192.0.2.9", now);
        }
        assert!(matches!(
            fail(&t, "bob", "192.0.2.9", now),
            Verdict::Proceed { .. }
        ));
        t.succeeded("bob", ip("192.0.2.9"));
        assert_eq!(wait(&t, "bob", "192.0.2.9", now), None);
        assert!(matches!(
            fail(&t, "bob", "192.0.2.9", now),
            Verdict::Proceed {
                starts_throttle: true
            }
        ));
        assert_eq!(
            wait(&t, "bob", "192.0.2.9", now),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn many_addresses_exhaust_the_account_for_unknown_devices_but_not_a_known_one() {
        let t = Throttle::default();
        let now = Instant::now();
        let mut refused = None;
        for i in 0..400 {
            let addr = ip(&format!("10.0.{}.{}", i / 250, i % 250));
            if let Verdict::Wait(_) = t.attempt("admin", addr, now) {
                refused = Some(i);
                break;
            }
        }
        assert_eq!(refused, Some(ACCOUNT_FREE_FAILURES as usize));
        // A new address with no cookie shares the budget; the owner's known browser does not.
        assert!(wait(&t, "admin", "192.0.2.200", now).is_some());
        let known = t.attempt_from("admin", ip("10.0.0.1"), Some("nonce-1"), now);
        assert!(matches!(known, Verdict::Proceed { .. }));
        t.succeeded_from("admin", ip("10.0.0.1"), Some("nonce-1"));
        // Other accounts are not touched.
        assert_eq!(wait(&t, "alice", "192.0.2.201", now), None);
    }

    #[test]
    fn abandoned_attempts_count_for_nothing() {
        let t = Throttle::default();
        let now = Instant::now();
        for _ in 0..10 {
            assert!(matches!(
                fail(&t, "admin", "192.0.2.3", now),
                Verdict::Proceed { .. }
            ));
            t.abandoned("admin", ip("192.0.2.3"), None);
        }
        assert_eq!(wait(&t, "admin", "192.0.2.3", now), None);
    }

    #[test]
    fn ipv6_is_counted_per_64() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..5 {
            fail(&t, "admin", &format!("2001:db8:1:2::{i}"), now);
        }
        assert!(wait(&t, "admin", "2001:db8:1:2::ffff", now).is_some());
        assert_eq!(wait(&t, "admin", "2001:db8:1:3::1", now), None);
    }

    #[test]
    fn failures_are_forgotten_after_quiet_time() {
        let t = Throttle::default();
        let now = Instant::now();
        for _ in 0..5 {
            fail(&t, "x", "192.0.2.1", now);
        }
        let later = now + FORGET_AFTER;
        assert!(matches!(
            fail(&t, "x", "192.0.2.1", later),
            Verdict::Proceed {
                starts_throttle: false
            }
        ));
    }
}
