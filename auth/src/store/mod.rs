//! The durable store: sled under `<data>/perch/db`, with a schema version and forward
//! migrations. Every write a client is told succeeded goes through [`Store::durable`]
//! (an fsync of sled's log) first.
//!
//! Trees: `meta` (schema version, setup code), `users` (id -> user), `user_names`
//! (lower-cased name -> id), `sessions` (SHA-256 of the session id -> session), `tokens`
//! (SHA-256 of the token -> token), `audit` (big-endian sequence -> event), `nodes` (id ->
//! node), `node_names` (lower-cased name -> id), `node_tokens` (SHA-256 of the node token ->
//! node id), `enroll_tokens` (SHA-256 of the enrollment token -> token). Values are JSON.

mod ids;
mod migrate;
mod snapshot;

pub(crate) use ids::IdKind;

pub use snapshot::{Exported, ImportError, Imported};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};

use arc_swap::ArcSwapOption;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The schema this build reads and writes.
pub const SCHEMA_VERSION: u64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the database is in use by another perch-server (stop it, or give this one another --data-dir)"
    )]
    Locked,
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    #[error("transaction aborted: {0}")]
    Conflict(String),
    #[error("corrupt record in {tree}: {error}")]
    Corrupt { tree: &'static str, error: String },
    #[error(
        "the database has schema version {found}, newer than this perch-server understands ({SCHEMA_VERSION}); run a newer release"
    )]
    TooNew { found: u64 },
    /// Closed after a write failed, until it can be opened and written again.
    #[error("the user store is unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// Why the store cannot be written, when the cause is the data directory's file system
    /// (full, read-only, failing) rather than a fault of Perch's: words for operators.
    pub fn unavailable(&self) -> Option<String> {
        let io = match self {
            Self::Unavailable(why) => return Some(why.clone()),
            Self::Sled(sled::Error::Io(io)) => io,
            _ => return None,
        };
        Some(match io_reason(io) {
            "no_space" => "the data directory is full (no space left on device)".to_owned(),
            "quota" => "the data directory is over its disk quota".to_owned(),
            "read_only" => "the data directory is on a read-only file system".to_owned(),
            _ => format!("the data directory cannot be written ({})", io.kind()),
        })
    }

    /// A short label for the metric of store errors.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Sled(sled::Error::Io(io)) => io_reason(io),
            Self::Unavailable(_) => "unavailable",
            Self::Corrupt { .. } => "corrupt",
            _ => "other",
        }
    }
}

/// Free space the store's file system must have before it is opened again.
const ROOM_TO_REOPEN: u64 = 16 * 1024 * 1024;

/// Whether the file system of `dir` has [`ROOM_TO_REOPEN`] free for this user.
fn has_room(dir: &Path) -> bool {
    nix::sys::statvfs::statvfs(dir)
        .is_ok_and(|fs| fs.blocks_available().saturating_mul(fs.fragment_size()) >= ROOM_TO_REOPEN)
}

/// What an I/O error says of the file system, as a metric label. sled may wrap the
/// operating system's error in one of its own, so the kind is read, then the inner error.
fn io_reason(io: &std::io::Error) -> &'static str {
    use std::io::ErrorKind;
    let inner = io
        .get_ref()
        .and_then(|e| e.downcast_ref::<std::io::Error>());
    let kinds = [Some(io.kind()), inner.map(std::io::Error::kind)];
    let codes = [
        io.raw_os_error(),
        inner.and_then(std::io::Error::raw_os_error),
    ];
    if kinds.contains(&Some(ErrorKind::StorageFull)) || codes.contains(&Some(28)) {
        "no_space"
    } else if kinds.contains(&Some(ErrorKind::QuotaExceeded)) || codes.contains(&Some(122)) {
        "quota"
    } else if kinds.contains(&Some(ErrorKind::ReadOnlyFilesystem)) || codes.contains(&Some(30)) {
        "read_only"
    } else {
        "io"
    }
}

/// The handles to every tree of one opened database.
#[derive(Debug)]
pub(crate) struct Trees {
    db: sled::Db,
    pub(crate) meta: sled::Tree,
    pub(crate) users: sled::Tree,
    pub(crate) user_names: sled::Tree,
    pub(crate) sessions: sled::Tree,
    pub(crate) tokens: sled::Tree,
    pub(crate) audit: sled::Tree,
    pub(crate) nodes: sled::Tree,
    pub(crate) node_names: sled::Tree,
    pub(crate) node_tokens: sled::Tree,
    pub(crate) enroll_tokens: sled::Tree,
}

impl Trees {
    fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(16 * 1024 * 1024)
            .mode(sled::Mode::LowSpace)
            .open()
            .map_err(|e| match &e {
                sled::Error::Io(io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("lock") =>
                {
                    StoreError::Locked
                }
                _ => StoreError::Sled(e),
            })?;
        Ok(Self {
            meta: db.open_tree("meta")?,
            users: db.open_tree("users")?,
            user_names: db.open_tree("user_names")?,
            sessions: db.open_tree("sessions")?,
            tokens: db.open_tree("tokens")?,
            audit: db.open_tree("audit")?,
            nodes: db.open_tree("nodes")?,
            node_names: db.open_tree("node_names")?,
            node_tokens: db.open_tree("node_tokens")?,
            enroll_tokens: db.open_tree("enroll_tokens")?,
            db,
        })
    }
}

/// The database, reopened in place after a write failure (sled refuses every operation
/// after one, until it is opened again).
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    trees: Arc<ArcSwapOption<Trees>>,
    /// Why the store is unavailable, while it is.
    fault: Arc<Mutex<Option<String>>>,
    /// Counts changes to users, API tokens and nodes (see [`Store::auth_changes`]).
    auth_changes: Arc<AtomicU64>,
    /// Held shared by every write (but to sessions) and exclusively by [`Store::export`],
    /// so that an export is the store as of one moment.
    gate: Arc<RwLock<()>>,
}

/// The open trees, with the write gate held shared: writes go through one of these.
pub(crate) struct Writer<'a> {
    _gate: RwLockReadGuard<'a, ()>,
    trees: Arc<Trees>,
}

impl std::ops::Deref for Writer<'_> {
    type Target = Trees;
    fn deref(&self) -> &Trees {
        &self.trees
    }
}

impl Store {
    /// Opens (creating if needed) the database in `dir` and brings its schema up to date.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let store = Self {
            dir: dir.to_path_buf(),
            trees: Arc::new(ArcSwapOption::new(Some(Arc::new(Trees::open(dir)?)))),
            fault: Arc::default(),
            auth_changes: Arc::new(AtomicU64::new(0)),
            gate: Arc::default(),
        };
        migrate::run(&store)?;
        Ok(store)
    }

    /// The open database for a write: held, an export waits until the write is done.
    pub(crate) fn writer(&self) -> Result<Writer<'_>, StoreError> {
        let gate = self.gate.read().unwrap_or_else(PoisonError::into_inner);
        Ok(Writer {
            _gate: gate,
            trees: self.trees()?,
        })
    }

    /// The open database, unless it is closed after a failure.
    pub(crate) fn trees(&self) -> Result<Arc<Trees>, StoreError> {
        self.trees.load_full().ok_or_else(|| {
            StoreError::Unavailable(self.fault().unwrap_or_else(|| "closed".to_owned()))
        })
    }

    /// Makes every write so far durable (fsync). Await it before answering a client. A
    /// failure marks the store unavailable until [`Store::recover`] succeeds.
    pub async fn durable(&self) -> Result<(), StoreError> {
        let flushed = self.trees()?.db.flush_async().await;
        if let Err(e) = flushed {
            let e = StoreError::Sled(e);
            self.failed(&e);
            return Err(e);
        }
        Ok(())
    }

    /// Why the store is unavailable, if it is.
    pub fn fault(&self) -> Option<String> {
        self.fault
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Notes an error met while using the store: one caused by the file system marks it
    /// unavailable (readiness says why) until [`Store::recover`] succeeds.
    pub fn failed(&self, e: &StoreError) {
        if let Some(why) = e.unavailable() {
            let mut fault = self.fault.lock().unwrap_or_else(PoisonError::into_inner);
            if fault.is_none() {
                tracing::error!(reason = %why, "the user store is unavailable");
            }
            *fault = Some(why);
        }
    }

    /// While the store is unavailable: closes it, opens it again and proves a durable write;
    /// true when it is available again. sled lets go of its lock a moment after the last
    /// handle is dropped, so this is called again until it works.
    pub async fn recover(&self) -> bool {
        if self.fault().is_none() {
            return true;
        }
        // sled writes while it opens (its recovery, a new segment): opened on a file system
        // that is still full, it can leave a log it then cannot read. Not before there is
        // room again.
        if !has_room(&self.dir) {
            return false;
        }
        if let Some(old) = self.trees.swap(None) {
            // Requests still using the old handles finish (with errors) first.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
            while Arc::strong_count(&old) > 1 && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            drop(old);
        }
        let dir = self.dir.clone();
        let opened = tokio::task::spawn_blocking(move || -> Result<Trees, StoreError> {
            let trees = Trees::open(&dir)?;
            trees
                .meta
                .insert(b"write_probe", &perch_time::unix_now().to_be_bytes())?;
            trees.db.flush()?;
            Ok(trees)
        })
        .await;
        match opened {
            Ok(Ok(trees)) => {
                self.trees.store(Some(Arc::new(trees)));
                *self.fault.lock().unwrap_or_else(PoisonError::into_inner) = None;
                tracing::info!("the user store is available again");
                true
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "the user store could not be reopened yet");
                if let Some(why) = e.unavailable() {
                    *self.fault.lock().unwrap_or_else(PoisonError::into_inner) = Some(why);
                }
                false
            }
            Err(_) => false,
        }
    }

    /// How many changes to users, API tokens and nodes were made so far (by this process;
    /// the database is never shared). What was read from those trees while this number
    /// stayed the same is still what they hold: a cache of verified tokens keys on it.
    pub fn auth_changes(&self) -> u64 {
        self.auth_changes.load(Ordering::SeqCst)
    }

    /// Called after each write to users, API tokens or nodes, once it is visible to reads.
    pub(crate) fn auth_changed(&self) {
        self.auth_changes.fetch_add(1, Ordering::SeqCst);
    }
}

/// The key of a record stored by numeric id: big-endian, so that keys sort as numbers.
pub(crate) fn id_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising plain structs of strings and numbers to JSON cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

pub(crate) fn decode<T: DeserializeOwned>(
    tree: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        tree,
        error: e.to_string(),
    })
}
