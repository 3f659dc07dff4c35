//! The server's store of fingerprint texts: sled under `<data>/qan`, one record per
//! (service, fingerprint), capped per service and in total bytes, and pruned of texts not
//! seen for longer than the metrics engine keeps their figures.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::{QueryText, clip};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the query text store: {0}")]
    Sled(#[from] sled::Error),
    #[error("a corrupt record in the query text store: {0}")]
    Corrupt(#[from] serde_json::Error),
}

/// How much the store keeps.
#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    /// Fingerprints one service may have seen within a day ([`ACTIVE_S`]); new ones past
    /// it are counted under "other" until some have not been seen for a day.
    pub per_service: usize,
    /// Bytes of text (and examples) in all; more are refused the same way.
    pub max_bytes: u64,
    /// A text not seen for this long (seconds) is removed, as its figures are from the
    /// engine.
    pub retention_s: i64,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            per_service: 1000,
            max_bytes: 256 * 1024 * 1024,
            retention_s: 31 * 86_400,
        }
    }
}

/// One fingerprint's text as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredText {
    pub service_type: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// One text in a backup.
#[derive(Debug, Serialize, Deserialize)]
struct Exported {
    scope: String,
    id: String,
    text: StoredText,
}

/// What became of a text sent to [`Store::register`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    New,
    /// The store had it already (its example is filled in if it had none).
    Known,
    /// The service has as many fingerprints as it may.
    OverCap,
    /// The store is at its size cap.
    Full,
}

/// How often `last_seen` is written for a fingerprint seen again, seconds: often enough for
/// the retention, rarely enough that a report is not a write per fingerprint.
const TOUCH_EVERY: i64 = 3600;
/// How often the store prunes old texts (and counts each service's active ones), seconds.
const PRUNE_EVERY: i64 = 3600;
/// A fingerprint seen within this long (seconds) counts against its service's cap: the cap
/// bounds the series a service adds to the engine each day, and a service whose queries
/// change (a new release) gets room for its new ones the next day.
pub const ACTIVE_S: i64 = 86_400;

#[derive(Debug)]
pub struct Store {
    db: sled::Db,
    texts: sled::Tree,
    limits: StoreLimits,
    /// Fingerprints seen within [`ACTIVE_S`] per service scope (recounted at each prune;
    /// until the first, every stored one).
    counts: Mutex<HashMap<String, usize>>,
    bytes: AtomicU64,
    last_prune: AtomicI64,
}

fn key(scope: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(scope.len() + 1 + id.len());
    k.extend_from_slice(scope.as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

fn scope_of(key: &[u8]) -> String {
    let end = key.iter().position(|&b| b == 0).unwrap_or(key.len());
    String::from_utf8_lossy(&key[..end]).into_owned()
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path, limits: StoreLimits) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(16 * 1024 * 1024)
            .open()?;
        let texts = db.open_tree("texts")?;
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut bytes = 0u64;
        for item in texts.iter() {
            let (k, v) = item?;
            *counts.entry(scope_of(&k)).or_default() += 1;
            bytes += (k.len() + v.len()) as u64;
        }
        Ok(Self {
            db,
            texts,
            limits,
            counts: Mutex::new(counts),
            bytes: AtomicU64::new(bytes),
            last_prune: AtomicI64::new(0),
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the store has `id`'s text for the service `scope`; a fingerprint seen again
    /// has its `last_seen` moved on (at most hourly).
    pub fn seen(&self, scope: &str, id: &str, now: i64) -> Result<bool, StoreError> {
        let k = key(scope, id);
        let Some(v) = self.texts.get(&k)? else {
            return Ok(false);
        };
        let mut t: StoredText = serde_json::from_slice(&v)?;
        if now - t.last_seen >= TOUCH_EVERY {
            if now - t.last_seen >= ACTIVE_S {
                *self.counts().entry(scope.to_owned()).or_default() += 1;
            }
            t.last_seen = now;
            self.texts.insert(k, serde_json::to_vec(&t)?)?;
        }
        Ok(true)
    }

    /// Keeps `text` for the service `scope` unless it is over a cap.
    pub fn register(
        &self,
        scope: &str,
        service_type: &str,
        text: &QueryText,
        now: i64,
    ) -> Result<Registered, StoreError> {
        let k = key(scope, &text.id);
        if let Some(v) = self.texts.get(&k)? {
            let mut t: StoredText = serde_json::from_slice(&v)?;
            if t.example.is_none() && text.example.is_some() {
                t.example = text.example.as_deref().map(clip);
                t.last_seen = now;
                let new = serde_json::to_vec(&t)?;
                let grown = new.len().saturating_sub(v.len()) as u64;
                // An example is kept only within the size cap too.
                if self.bytes.load(Ordering::Relaxed) + grown <= self.limits.max_bytes {
                    self.bytes.fetch_add(grown, Ordering::Relaxed);
                    self.texts.insert(k, new)?;
                }
            }
            return Ok(Registered::Known);
        }
        let mut counts = self.counts();
        if counts.get(scope).copied().unwrap_or(0) >= self.limits.per_service {
            return Ok(Registered::OverCap);
        }
        let record = StoredText {
            service_type: service_type.to_owned(),
            text: clip(&text.text),
            example: text.example.as_deref().map(clip),
            first_seen: now,
            last_seen: now,
        };
        let value = serde_json::to_vec(&record)?;
        let size = (k.len() + value.len()) as u64;
        if self.bytes.load(Ordering::Relaxed) + size > self.limits.max_bytes {
            return Ok(Registered::Full);
        }
        self.texts.insert(k, value)?;
        self.bytes.fetch_add(size, Ordering::Relaxed);
        *counts.entry(scope.to_owned()).or_default() += 1;
        Ok(Registered::New)
    }

    /// Whether the service `scope` may have one more fingerprint.
    pub fn has_room(&self, scope: &str) -> bool {
        self.counts().get(scope).copied().unwrap_or(0) < self.limits.per_service
            && self.bytes.load(Ordering::Relaxed) < self.limits.max_bytes
    }

    /// `id`'s text for the service `scope`.
    pub fn get(&self, scope: &str, id: &str) -> Result<Option<StoredText>, StoreError> {
        match self.texts.get(key(scope, id))? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// Makes every change so far durable (before a client hears it succeeded), without
    /// holding an async worker: sled's own asynchronous flush, as the user store does.
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// The same, blocking, for the tests.
    #[cfg(test)]
    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Removes texts not seen within the retention, and counts each service's active ones
    /// again, at most once an hour; how many went.
    pub fn prune(&self, now: i64) -> Result<usize, StoreError> {
        let last = self.last_prune.load(Ordering::Relaxed);
        if now - last < PRUNE_EVERY
            || self
                .last_prune
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return Ok(0);
        }
        let cutoff = now - self.limits.retention_s;
        let mut gone = 0;
        let mut active: HashMap<String, usize> = HashMap::new();
        for item in self.texts.iter() {
            let (k, v) = item?;
            // A record that cannot be read is of no use to anyone: it goes too, and the
            // walk goes on.
            let last_seen = serde_json::from_slice::<StoredText>(&v).map(|t| t.last_seen);
            match last_seen {
                Ok(t) if t >= cutoff => {
                    if now - t < ACTIVE_S {
                        *active.entry(scope_of(&k)).or_default() += 1;
                    }
                }
                _ => {
                    if self.texts.remove(&k)?.is_some() {
                        gone += 1;
                        self.bytes
                            .fetch_sub((k.len() + v.len()) as u64, Ordering::Relaxed);
                    }
                }
            }
        }
        *self.counts() = active;
        Ok(gone)
    }

    /// Every text as JSON lines (`{"scope", "id", "text": {...}}`), for a backup.
    pub fn export(&self) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::new();
        for item in self.texts.iter() {
            let (k, v) = item?;
            let end = k.iter().position(|&b| b == 0).unwrap_or(k.len());
            let line = Exported {
                scope: String::from_utf8_lossy(&k[..end]).into_owned(),
                id: String::from_utf8_lossy(k.get(end + 1..).unwrap_or_default()).into_owned(),
                text: serde_json::from_slice(&v)?,
            };
            serde_json::to_writer(&mut out, &line)?;
            out.push(b'\n');
        }
        Ok(out)
    }

    /// Builds a store in `dir` (new or empty) from [`Store::export`]'s lines; how many texts
    /// it holds.
    pub fn import(dir: &Path, lines: &[u8]) -> Result<usize, StoreError> {
        let db = sled::Config::new().path(dir).open()?;
        let texts = db.open_tree("texts")?;
        let mut n = 0;
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let e: Exported = serde_json::from_slice(line)?;
            texts.insert(key(&e.scope, &e.id), serde_json::to_vec(&e.text)?)?;
            n += 1;
        }
        db.flush()?;
        Ok(n)
    }

    /// Texts kept, and their bytes.
    pub fn size(&self) -> (usize, u64) {
        (self.texts.len(), self.bytes.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(id: &str, t: &str) -> QueryText {
        QueryText {
            id: id.into(),
            text: t.into(),
            example: None,
        }
    }

    #[test]
    fn texts_are_kept_capped_per_service_and_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let limits = StoreLimits {
            per_service: 2,
            max_bytes: 1 << 20,
            retention_s: 100,
        };
        let store = Store::open(dir.path(), limits).unwrap();
        let (a, b) = ("1/db-1", "2/db-1");
        assert_eq!(
            store
                .register(a, "mysql", &text("q1", "SELECT ?"), 10)
                .unwrap(),
            Registered::New
        );
        assert_eq!(
            store
                .register(a, "mysql", &text("q1", "SELECT ?"), 11)
                .unwrap(),
            Registered::Known
        );
        store
            .register(a, "mysql", &text("q2", "SELECT ? , ?"), 12)
            .unwrap();
        assert_eq!(
            store.register(a, "mysql", &text("q3", "x"), 13).unwrap(),
            Registered::OverCap
        );
        assert!(!store.has_room(a) && store.has_room(b));
        // Another service has its own cap.
        assert_eq!(
            store.register(b, "mysql", &text("q3", "x"), 13).unwrap(),
            Registered::New
        );
        assert!(store.seen(a, "q1", 20).unwrap());
        assert!(!store.seen(a, "q3", 20).unwrap());
        assert_eq!(store.get(a, "q2").unwrap().unwrap().text, "SELECT ? , ?");
        store.flush().unwrap();
        drop(store);

        // Reopened, it counts what it holds; after the retention, unseen texts go.
        let store = Store::open(dir.path(), limits).unwrap();
        assert_eq!(store.size().0, 3);
        assert_eq!(
            store.register(a, "mysql", &text("q4", "x"), 30).unwrap(),
            Registered::OverCap
        );
        assert!(store.seen(a, "q1", 5000).unwrap());
        assert_eq!(store.prune(5050).unwrap(), 2);
        assert!(store.get(a, "q1").unwrap().is_some());
        assert_eq!(
            store.register(a, "mysql", &text("q4", "x"), 5060).unwrap(),
            Registered::New
        );
    }

    #[test]
    fn texts_go_into_a_backup_and_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a"), StoreLimits::default()).unwrap();
        store
            .register("3/db-1", "mysql", &text("q1", "SELECT ?"), 10)
            .unwrap();
        store
            .register("4/db-2", "postgresql", &text("q2", "SELECT $1"), 11)
            .unwrap();
        let lines = store.export().unwrap();
        assert_eq!(Store::import(&dir.path().join("b"), &lines).unwrap(), 2);
        let back = Store::open(&dir.path().join("b"), StoreLimits::default()).unwrap();
        assert_eq!(back.size().0, 2);
        assert_eq!(back.get("4/db-2", "q2").unwrap().unwrap().text, "SELECT $1");
        assert!(Store::import(&dir.path().join("c"), b"not json\n").is_err());
    }

    #[test]
    fn the_size_cap_refuses_new_texts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            StoreLimits {
                per_service: 100,
                max_bytes: 300,
                retention_s: 100,
            },
        )
        .unwrap();
        assert_eq!(
            store
                .register("s", "mysql", &text("a", &"x".repeat(100)), 1)
                .unwrap(),
            Registered::New
        );
        assert_eq!(
            store
                .register("s", "mysql", &text("b", &"y".repeat(300)), 1)
                .unwrap(),
            Registered::Full
        );
        // Nor may an example take the store past it.
        let with_example = QueryText {
            example: Some("z".repeat(300)),
            ..text("a", &"x".repeat(100))
        };
        assert_eq!(
            store.register("s", "mysql", &with_example, 2).unwrap(),
            Registered::Known
        );
        assert_eq!(store.get("s", "a").unwrap().unwrap().example, None);
        assert!(store.size().1 <= 300);
    }

    #[test]
    fn the_cap_counts_what_a_service_ran_within_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let limits = StoreLimits {
            per_service: 2,
            max_bytes: 1 << 20,
            retention_s: 30 * ACTIVE_S,
        };
        let store = Store::open(dir.path(), limits).unwrap();
        for id in ["q1", "q2"] {
            store.register("s", "mysql", &text(id, id), 100).unwrap();
        }
        assert_eq!(
            store.register("s", "mysql", &text("q3", "x"), 200).unwrap(),
            Registered::OverCap
        );
        // A day later q2 ran again and q1 did not: room for one new query, and q1's text is
        // still there for the ranges it was busy in.
        let later = 100 + ACTIVE_S + 10;
        assert!(store.seen("s", "q2", later).unwrap());
        store.prune(later).unwrap();
        assert_eq!(
            store
                .register("s", "mysql", &text("q3", "x"), later)
                .unwrap(),
            Registered::New
        );
        assert_eq!(
            store
                .register("s", "mysql", &text("q4", "y"), later)
                .unwrap(),
            Registered::OverCap
        );
        assert!(store.get("s", "q1").unwrap().is_some());
        // q1 back: known, kept, and counted again.
        assert!(store.seen("s", "q1", later + 1).unwrap());
        assert!(!store.has_room("s"));
    }

    #[test]
    fn a_corrupt_record_does_not_stop_pruning() {
        let dir = tempfile::tempdir().unwrap();
        let limits = StoreLimits {
            per_service: 10,
            max_bytes: 1 << 20,
            retention_s: 100,
        };
        let store = Store::open(dir.path(), limits).unwrap();
        store
            .texts
            .insert(key("s", "0bad"), &b"{not json"[..])
            .unwrap();
        store
            .register("s", "mysql", &text("old", "SELECT ?"), 10)
            .unwrap();
        assert_eq!(store.prune(10_000).unwrap(), 2);
        assert_eq!(store.get("s", "old").unwrap(), None);
    }
}
