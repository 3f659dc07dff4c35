//! Fingerprints of series, for a sender's count of the series it had never sent before.
//! Keyed with a secret chosen at start, so that a sender cannot craft series that collide
//! with ones already counted and pass uncounted.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::OnceLock;

fn keys() -> &'static RandomState {
    static KEYS: OnceLock<RandomState> = OnceLock::new();
    KEYS.get_or_init(RandomState::new)
}

/// A series by its labels as the sender encoded them (the common, sorted case).
pub(crate) fn of_encoded(labels: &[u8]) -> u64 {
    keys().hash_one(labels)
}

/// A series by its labels, Perch's own two left out (they are the sender's, always).
pub(crate) fn of_labels<'a>(labels: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> u64 {
    let mut h = keys().build_hasher();
    for (name, value) in labels.filter(|(name, _)| !crate::names::is_identity_label(name)) {
        h.write_usize(name.len());
        h.write(name);
        h.write_usize(value.len());
        h.write(value);
    }
    h.finish()
}
