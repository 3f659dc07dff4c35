//! Forward migrations, one function per version step, run in order at open.

use super::{SCHEMA_VERSION, Store, StoreError};

const KEY: &[u8] = b"schema_version";

/// Each entry upgrades from version `i` to `i + 1`.
type Step = fn(&Store) -> Result<(), StoreError>;

const STEPS: &[Step] = &[
    // 0 -> 1: the first schema; the trees are created by `Store::open`.
    |_| Ok(()),
    // 1 -> 2: ids count from 1 for each kind of record.
    super::ids::start_counters,
];

pub fn run(store: &Store) -> Result<(), StoreError> {
    let meta = store.trees()?.meta.clone();
    let found = meta
        .get(KEY)?
        .map(|v| u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])))
        .unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew { found });
    }
    for version in found..SCHEMA_VERSION {
        let step = STEPS
            .get(usize::try_from(version).unwrap_or(usize::MAX))
            .ok_or(StoreError::TooNew { found })?;
        step(store)?;
        meta.insert(KEY, &(version + 1).to_be_bytes())?;
        meta.flush()?;
        tracing::info!(from = version, to = version + 1, "database schema migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_database_gets_the_current_version_and_a_newer_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let meta = store.trees().unwrap().meta.clone();
            let v = meta.get(KEY).unwrap().unwrap();
            assert_eq!(v.as_ref(), SCHEMA_VERSION.to_be_bytes());
            meta.insert(KEY, &(SCHEMA_VERSION + 1).to_be_bytes())
                .unwrap();
            meta.flush().unwrap();
        }
        // sled lets go of its lock when its flusher thread has stopped, a moment after the
        // last handle is dropped.
        let mut err = Store::open(dir.path()).unwrap_err();
        for _ in 0..50 {
            if !matches!(err, StoreError::Locked) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            err = Store::open(dir.path()).unwrap_err();
        }
        assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
    }
}
