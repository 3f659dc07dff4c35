//! The store as one stream of records, for backups: [`Store::export`] copies every tree but
//! the sessions as of one moment (writes wait meanwhile); [`Store::import`] builds a new
//! database from such a copy.
//!
//! Format: `perch-store 1\n`, then records of tree name (u8 length, then the name), key and
//! value (each u32 length, then the bytes), and a zero name length at the end. The counters
//! of ids are in `meta`, copied with the rest.

use std::path::Path;
use std::sync::PoisonError;

use super::{SCHEMA_VERSION, Store, StoreError, Trees};

const MAGIC: &[u8] = b"perch-store 1\n";
/// Meta keys that belong to one database, not to what it holds.
const LOCAL_META: &[&[u8]] = &[b"write_probe"];
/// Sessions are not copied: after a restore everyone signs in again.
const NOT_COPIED: &[&str] = &["sessions"];

/// A copy of the store, and what it holds.
#[derive(Debug)]
pub struct Exported {
    pub records: Vec<u8>,
    pub users: usize,
    pub nodes: usize,
    pub api_tokens: usize,
}

/// What an import wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    pub users: usize,
    pub nodes: usize,
    pub api_tokens: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0} already holds a user store; restore into an empty directory")]
    NotEmpty(String),
    #[error("the store copy is damaged: {0}")]
    Damaged(&'static str),
    #[error("the store copy names a tree this perch-server does not know: {0}")]
    UnknownTree(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Trees {
    fn named(&self) -> [(&'static str, &sled::Tree); 10] {
        [
            ("meta", &self.meta),
            ("users", &self.users),
            ("user_names", &self.user_names),
            ("sessions", &self.sessions),
            ("tokens", &self.tokens),
            ("audit", &self.audit),
            ("nodes", &self.nodes),
            ("node_names", &self.node_names),
            ("node_tokens", &self.node_tokens),
            ("enroll_tokens", &self.enroll_tokens),
        ]
    }
}

impl Store {
    /// Every tree but the sessions, as of one moment: writes wait until the copy is made
    /// (milliseconds for thousands of records). Blocking: call it off the async workers.
    pub fn export(&self) -> Result<Exported, StoreError> {
        let _exclusive = self.gate.write().unwrap_or_else(PoisonError::into_inner);
        let trees = self.trees()?;
        let mut out = Exported {
            records: MAGIC.to_vec(),
            users: trees.users.len(),
            nodes: trees.nodes.len(),
            api_tokens: trees.tokens.len(),
        };
        for (name, tree) in trees.named() {
            if NOT_COPIED.contains(&name) {
                continue;
            }
            for entry in tree.iter() {
                let (key, value) = entry?;
                if name == "meta" && LOCAL_META.contains(&key.as_ref()) {
                    continue;
                }
                out.records.push(name.len() as u8);
                out.records.extend(name.as_bytes());
                for part in [key.as_ref(), value.as_ref()] {
                    let len = u32::try_from(part.len()).map_err(|_| StoreError::Corrupt {
                        tree: name,
                        error: "a record over 4 GiB".into(),
                    })?;
                    out.records.extend(len.to_be_bytes());
                    out.records.extend(part);
                }
            }
        }
        out.records.push(0);
        Ok(out)
    }

    /// Builds a new database in `dir` (absent or empty) from an [`Store::export`] copy, made
    /// durable. Ids given later follow every id in the copy (their counters are in it).
    pub fn import(dir: &Path, records: &[u8]) -> Result<Imported, ImportError> {
        if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
            return Err(ImportError::NotEmpty(dir.display().to_string()));
        }
        let mut input = Input(records);
        if input.take(MAGIC.len())? != MAGIC {
            return Err(ImportError::Damaged(
                "it does not start as a store copy does",
            ));
        }
        let trees = Trees::open(dir)?;
        let named = trees.named();
        loop {
            let name_len = usize::from(input.take(1)?[0]);
            if name_len == 0 {
                break;
            }
            let name = input.take(name_len)?;
            let tree = named
                .iter()
                .find(|(n, _)| n.as_bytes() == name && !NOT_COPIED.contains(n))
                .map(|(_, t)| *t)
                .ok_or_else(|| {
                    ImportError::UnknownTree(String::from_utf8_lossy(name).into_owned())
                })?;
            let key = input.part()?;
            let value = input.part()?;
            if name == b"meta" && key == b"schema_version" {
                let found = value.try_into().map_or(u64::MAX, u64::from_be_bytes);
                if found > SCHEMA_VERSION {
                    return Err(StoreError::TooNew { found }.into());
                }
            }
            tree.insert(key, value).map_err(StoreError::from)?;
        }
        if !input.0.is_empty() {
            return Err(ImportError::Damaged("bytes follow its end"));
        }
        trees.db.flush().map_err(StoreError::from)?;
        Ok(Imported {
            users: trees.users.len(),
            nodes: trees.nodes.len(),
            api_tokens: trees.tokens.len(),
        })
    }
}

/// What is left of a copy being read.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ImportError> {
        if self.0.len() < n {
            return Err(ImportError::Damaged("it ends in the middle of a record"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn part(&mut self) -> Result<&'a [u8], ImportError> {
        let len = self.take(4)?;
        let len = u32::from_be_bytes(len.try_into().unwrap_or_default());
        self.take(len as usize)
    }
}
