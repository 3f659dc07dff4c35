//! The durable store: sled under `<data>/perch/db`, with a schema version and forward
//! migrations. Every write a client is told succeeded goes through [`Store::durable`]
//! (an fsync of sled's log) first.
//!
//! Trees: `meta` (schema version, setup code), `users` (id -> user), `user_names`
//! (lower-cased name -> id), `sessions` (SHA-256 of the session id -> session), `tokens`
//! (SHA-256 of the token -> token), `audit` (big-endian sequence -> event), `nodes` (id ->
//! node), `node_names` (lower-cased name -> id), `node_tokens` (SHA-256 of the node token ->
//! node id), `enroll_tokens` (SHA-256 of the enrollment token -> token). Values are JSON.

mod migrate;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The schema this build reads and writes.
pub const SCHEMA_VERSION: u64 = 1;

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
}

/// The handles to every tree.
#[derive(Debug, Clone)]
pub struct Store {
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
    /// Counts changes to users, API tokens and nodes (see [`Store::auth_changes`]).
    auth_changes: Arc<AtomicU64>,
}

impl Store {
    /// Opens (creating if needed) the database in `dir` and brings its schema up to date.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
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
        let store = Self {
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
            auth_changes: Arc::new(AtomicU64::new(0)),
            db,
        };
        migrate::run(&store)?;
        Ok(store)
    }

    /// Makes every write so far durable (fsync). Await it before answering a client.
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
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

    /// A new unique, increasing id.
    pub fn next_id(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?)
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
