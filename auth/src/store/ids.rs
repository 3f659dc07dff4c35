//! Ids count from 1 for each kind of record: the first user, node, API token, enrollment
//! token and audit event each get 1. The next id of each kind is kept in `meta` and taken
//! with an atomic update, so concurrent creations never share one.

use super::{Store, StoreError, Trees, decode};

/// What an id numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdKind {
    User,
    Node,
    ApiToken,
    EnrollToken,
    Audit,
}

impl IdKind {
    const ALL: [IdKind; 5] = [
        IdKind::User,
        IdKind::Node,
        IdKind::ApiToken,
        IdKind::EnrollToken,
        IdKind::Audit,
    ];

    /// Its counter's key in `meta`.
    fn key(self) -> &'static [u8] {
        match self {
            IdKind::User => b"next_id:users",
            IdKind::Node => b"next_id:nodes",
            IdKind::ApiToken => b"next_id:api_tokens",
            IdKind::EnrollToken => b"next_id:enroll_tokens",
            IdKind::Audit => b"next_id:audit",
        }
    }

    /// The largest id among the records of this kind.
    fn largest(self, t: &Trees) -> Result<u64, StoreError> {
        let by_key = |tree: &sled::Tree| -> Result<u64, StoreError> {
            Ok(tree
                .last()?
                .and_then(|(k, _)| k.as_ref().try_into().ok())
                .map_or(0, u64::from_be_bytes))
        };
        let by_value = |tree: &sled::Tree, name: &'static str| -> Result<u64, StoreError> {
            #[derive(serde::Deserialize)]
            struct Id {
                id: u64,
            }
            let mut largest = 0;
            for value in tree.iter().values() {
                largest = largest.max(decode::<Id>(name, &value?)?.id);
            }
            Ok(largest)
        };
        match self {
            IdKind::User => by_key(&t.users),
            IdKind::Node => by_key(&t.nodes),
            IdKind::Audit => by_key(&t.audit),
            IdKind::ApiToken => by_value(&t.tokens, "tokens"),
            IdKind::EnrollToken => by_value(&t.enroll_tokens, "enroll_tokens"),
        }
    }
}

impl Store {
    /// A new id of `kind`: one more than the last one given.
    pub(crate) fn next_id(&self, kind: IdKind) -> Result<u64, StoreError> {
        let t = self.trees()?;
        let next = t.meta.update_and_fetch(kind.key(), |old| {
            let n = old
                .and_then(|v| v.try_into().ok())
                .map_or(1, u64::from_be_bytes);
            Some((n + 1).to_be_bytes().to_vec())
        })?;
        let next = next
            .and_then(|v| v.as_ref().try_into().ok())
            .map_or(2, u64::from_be_bytes);
        Ok(next - 1)
    }
}

/// Schema 1 -> 2: each kind's counter starts after the largest id it has (ids given by
/// sled's one counter for every kind, with gaps).
pub(super) fn start_counters(store: &Store) -> Result<(), StoreError> {
    let t = store.trees()?;
    for kind in IdKind::ALL {
        let next = kind.largest(&t)? + 1;
        t.meta.insert(kind.key(), &next.to_be_bytes())?;
    }
    Ok(())
}
