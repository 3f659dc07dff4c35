//! Bearer tokens (API and node tokens) verified lately, so that a busy agent or script does
//! not cost a database read and a record decode on every request. An entry holds only while
//! the auth trees are unchanged since it was read ([`Store::auth_changes`]): revoking a
//! token, deleting a node or a user, or changing a role empties it at once. It also expires
//! at the token's own expiry and when the token is due for its `last_used` update, and after
//! a minute at most. Keys are the tokens' SHA-256 digests, as stored; only tokens that
//! verified are kept, so unknown tokens cannot fill it.
//!
//! [`Store::auth_changes`]: crate::store::Store::auth_changes

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::Principal;

/// Entries kept at most; the whole cache is emptied when it is full.
const MAX_ENTRIES: usize = 4096;
/// The longest an entry is used, seconds.
const MAX_AGE: i64 = 60;

#[derive(Debug)]
struct Entry {
    changes: u64,
    /// Unix seconds after which the entry is not used.
    until: i64,
    principal: Principal,
}

#[derive(Debug, Default)]
pub(super) struct Verified {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

impl Verified {
    /// The principal verified for `key` when the auth trees have seen `changes` changes,
    /// if it is still good at `now`.
    pub(super) fn get(&self, key: &[u8; 32], changes: u64, now: i64) -> Option<Principal> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .filter(|e| e.changes == changes && now < e.until)
            .map(|e| e.principal.clone())
    }

    /// Keeps `principal`, verified for `key` from what the trees held after `changes`
    /// changes (read before the lookup), until `until` (unix seconds; a minute from `now`
    /// at most).
    pub(super) fn put(
        &self,
        key: [u8; 32],
        changes: u64,
        now: i64,
        until: i64,
        principal: &Principal,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                changes,
                until: until.min(now.saturating_add(MAX_AGE)),
                principal: principal.clone(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Gate, Role, Via};
    use super::*;

    fn principal() -> Principal {
        Principal {
            gate: Gate::Open,
            user_id: None,
            name: "ci".into(),
            role: Role::Viewer,
            must_change_password: false,
            via: Via::Token { id: 7 },
            time_zone: None,
        }
    }

    #[test]
    fn entries_hold_while_nothing_changed_and_time_allows() {
        let v = Verified::default();
        let key = [1; 32];
        assert!(v.get(&key, 0, 100).is_none());
        v.put(key, 3, 100, 130, &principal());
        assert_eq!(v.get(&key, 3, 129).map(|p| p.name), Some("ci".into()));
        // A change to the trees, or the entry's time up: not used.
        assert!(v.get(&key, 4, 101).is_none());
        assert!(v.get(&key, 3, 130).is_none());
        assert!(v.get(&[2; 32], 3, 101).is_none());
        // A minute at most.
        v.put(key, 3, 100, i64::MAX, &principal());
        assert!(v.get(&key, 3, 159).is_some());
        assert!(v.get(&key, 3, 160).is_none());
    }

    #[test]
    fn a_full_cache_starts_over() {
        let v = Verified::default();
        for i in 0..MAX_ENTRIES + 1 {
            let mut key = [0; 32];
            key[..8].copy_from_slice(&(i as u64).to_be_bytes());
            v.put(key, 0, 0, 10, &principal());
        }
        assert_eq!(v.entries.lock().unwrap().len(), 1);
    }
}
