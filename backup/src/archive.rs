//! The archive: a tar stream, encrypted with age as it is written (nothing is written in
//! the clear on the way), whose last entry is a manifest of every file with its size and
//! SHA-256. Reading checks age's authentication of every chunk, the tar structure, each
//! file against the manifest, and that the stream ends where age says it ends.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Component, Path};

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};

use crate::keys::{Encryption, Identities};

/// The manifest's name: always the last entry.
pub const MANIFEST: &str = "MANIFEST.json";
/// The archive format this build writes and reads.
pub const FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    #[error("cannot encrypt: {0}")]
    Encrypt(String),
    #[error("cannot write the backup: {0}")]
    Write(io::Error),
    #[error("cannot read {0}: {1}")]
    Source(String, io::Error),
    #[error("{0} changed size while it was copied")]
    Changed(String),
    #[error("not a backup: {0}")]
    NotAge(String),
    #[error(
        "the key does not open this backup (it was encrypted to other recipients, or with a passphrase)"
    )]
    WrongKey,
    #[error("the passphrase does not open this backup")]
    WrongPassphrase,
    #[error("the backup is damaged or was altered: {0}")]
    Damaged(String),
    #[error("the backup is incomplete (cut short): {0}")]
    Truncated(String),
    #[error("this backup was written in format {0}, newer than this perch-server reads ({FORMAT})")]
    TooNew(u32),
    #[error("cannot write {0}: {1}")]
    Extract(String, io::Error),
}

/// One file in the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// The archive's last entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// When the copy was taken (Unix seconds).
    pub created_at: i64,
    pub perch_version: String,
    /// What the archive holds, in words for `restore` (counts, whether metrics are in).
    pub about: serde_json::Value,
    pub files: Vec<FileEntry>,
}

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hash: digest::Context,
    len: u64,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hash: digest::Context::new(&digest::SHA256),
            len: 0,
        }
    }

    fn finish(self) -> (u64, String) {
        let sum = self.hash.finish();
        let hex = sum.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        (self.len, hex)
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// Writes an archive to `W` as it goes.
pub struct ArchiveWriter<W: Write> {
    tar: tar::Builder<age::stream::StreamWriter<W>>,
    files: Vec<FileEntry>,
    mtime: u64,
}

impl<W: Write> std::fmt::Debug for ArchiveWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ArchiveWriter({} files)", self.files.len())
    }
}

impl<W: Write> ArchiveWriter<W> {
    /// Starts an archive to `sink`, encrypted as `encryption` says; `mtime` stamps every
    /// entry (the moment of the copy).
    pub fn new(encryption: &Encryption, sink: W, mtime: i64) -> Result<Self, ArchiveError> {
        let stream = encryption
            .encryptor()?
            .wrap_output(sink)
            .map_err(ArchiveError::Write)?;
        let mut tar = tar::Builder::new(stream);
        tar.mode(tar::HeaderMode::Deterministic);
        Ok(Self {
            tar,
            files: Vec::new(),
            mtime: u64::try_from(mtime).unwrap_or(0),
        })
    }

    fn append(&mut self, path: &str, size: u64, data: impl Read) -> Result<(), ArchiveError> {
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o600);
        header.set_mtime(self.mtime);
        header.set_entry_type(tar::EntryType::Regular);
        let mut hashing = Hashing::new(data.take(size));
        self.tar
            .append_data(&mut header, path, &mut hashing)
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => ArchiveError::Changed(path.to_owned()),
                _ => ArchiveError::Write(e),
            })?;
        let (len, sha256) = hashing.finish();
        if len != size {
            return Err(ArchiveError::Changed(path.to_owned()));
        }
        self.files.push(FileEntry {
            path: path.to_owned(),
            size,
            sha256,
        });
        Ok(())
    }

    /// Adds `bytes` as the file `path`.
    pub fn add_bytes(&mut self, path: &str, bytes: &[u8]) -> Result<(), ArchiveError> {
        self.append(path, bytes.len() as u64, bytes)
    }

    /// Adds the file at `source` as `path`, streamed.
    pub fn add_file(&mut self, path: &str, source: &Path) -> Result<(), ArchiveError> {
        let named = |e| ArchiveError::Source(source.display().to_string(), e);
        let file = std::fs::File::open(source).map_err(named)?;
        let size = file.metadata().map_err(named)?.len();
        self.append(path, size, io::BufReader::with_capacity(256 * 1024, file))
    }

    /// Files added so far.
    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }

    /// Appends the manifest and closes the tar and age streams; returns the manifest and
    /// the sink (flushed, not synced).
    pub fn finish(
        mut self,
        created_at: i64,
        about: serde_json::Value,
    ) -> Result<(Manifest, W), ArchiveError> {
        let manifest = Manifest {
            format: FORMAT,
            created_at,
            perch_version: env!("CARGO_PKG_VERSION").to_owned(),
            about,
            files: std::mem::take(&mut self.files),
        };
        let json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
        let mut header = tar::Header::new_gnu();
        header.set_size(json.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(self.mtime);
        self.tar
            .append_data(&mut header, MANIFEST, json.as_slice())
            .map_err(ArchiveError::Write)?;
        let stream = self.tar.into_inner().map_err(ArchiveError::Write)?;
        let mut sink = stream.finish().map_err(ArchiveError::Write)?;
        sink.flush().map_err(ArchiveError::Write)?;
        Ok((manifest, sink))
    }
}

/// Reads a whole archive: `visit` is given each file (but the manifest) with its path, to
/// read or not; every file is then hashed to its end and checked against the manifest.
/// Returns the manifest once everything, age's final chunk included, has checked out.
pub fn read(
    archive: impl Read,
    identities: &Identities,
    mut visit: impl FnMut(&str, &mut dyn Read) -> Result<(), ArchiveError>,
) -> Result<Manifest, ArchiveError> {
    let decryptor = age::Decryptor::new(io::BufReader::with_capacity(256 * 1024, archive))
        .map_err(|e| decrypt_error(e, identities))?;
    let plain = identities
        .with(|ids| decryptor.decrypt(ids.iter().copied()))
        .map_err(|e| decrypt_error(e, identities))?;
    let mut tar = tar::Archive::new(plain);
    let mut seen: BTreeMap<String, FileEntry> = BTreeMap::new();
    let mut manifest: Option<Manifest> = None;
    for entry in tar.entries().map_err(stream_error)? {
        let entry = entry.map_err(stream_error)?;
        if manifest.is_some() {
            return Err(ArchiveError::Damaged(
                "a file follows the manifest".to_owned(),
            ));
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(ArchiveError::Damaged(
                "an entry that is not a plain file".to_owned(),
            ));
        }
        let path = entry.path().map_err(stream_error)?;
        let path = safe_path(&path)?;
        let mut hashing = Hashing::new(entry);
        if path == MANIFEST {
            let mut json = Vec::new();
            hashing.read_to_end(&mut json).map_err(stream_error)?;
            let m: Manifest = serde_json::from_slice(&json)
                .map_err(|e| ArchiveError::Damaged(format!("the manifest is unreadable: {e}")))?;
            if m.format > FORMAT {
                return Err(ArchiveError::TooNew(m.format));
            }
            manifest = Some(m);
            continue;
        }
        visit(&path, &mut hashing)?;
        io::copy(&mut hashing, &mut io::sink()).map_err(stream_error)?;
        let (size, sha256) = hashing.finish();
        if seen
            .insert(path.clone(), FileEntry { path, size, sha256 })
            .is_some()
        {
            return Err(ArchiveError::Damaged("a file appears twice".to_owned()));
        }
    }
    // Up to age's last chunk: a cut after the tar's end is found here.
    let mut rest = tar.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(stream_error)?;
    let manifest = manifest
        .ok_or_else(|| ArchiveError::Truncated("it ends before its manifest".to_owned()))?;
    let listed: BTreeMap<&str, &FileEntry> = manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), f))
        .collect();
    for (path, found) in &seen {
        match listed.get(path.as_str()) {
            Some(expected) if *expected == found => {}
            Some(_) => {
                return Err(ArchiveError::Damaged(format!(
                    "{path} does not match its checksum in the manifest"
                )));
            }
            None => {
                return Err(ArchiveError::Damaged(format!(
                    "{path} is not in the manifest"
                )));
            }
        }
    }
    if let Some(missing) = listed.keys().find(|p| !seen.contains_key(**p)) {
        return Err(ArchiveError::Damaged(format!(
            "{missing} is in the manifest but not in the archive"
        )));
    }
    Ok(manifest)
}

/// A path inside the archive: relative, of plain components only.
fn safe_path(path: &Path) -> Result<String, ArchiveError> {
    let plain = path.components().all(|c| matches!(c, Component::Normal(_)));
    match path.to_str() {
        Some(s) if plain && !s.is_empty() => Ok(s.to_owned()),
        _ => Err(ArchiveError::Damaged(format!(
            "an entry with an unsafe path: {}",
            path.display()
        ))),
    }
}

fn decrypt_error(e: age::DecryptError, identities: &Identities) -> ArchiveError {
    use age::DecryptError as D;
    match e {
        D::NoMatchingKeys | D::KeyDecryptionFailed | D::DecryptionFailed => match identities {
            Identities::Passphrase(_) => ArchiveError::WrongPassphrase,
            Identities::Keys(_) => ArchiveError::WrongKey,
        },
        D::InvalidMac => match identities {
            // With a passphrase a wrong one and an altered header look alike.
            Identities::Passphrase(_) => ArchiveError::WrongPassphrase,
            Identities::Keys(_) => {
                ArchiveError::Damaged("its header does not authenticate".to_owned())
            }
        },
        D::UnknownFormat | D::InvalidHeader => {
            ArchiveError::NotAge("it is not an age-encrypted file, or its header is damaged".into())
        }
        D::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            ArchiveError::Truncated("it ends inside its header".to_owned())
        }
        other => ArchiveError::Damaged(other.to_string()),
    }
}

/// An error while reading the decrypted stream: age reports a chunk that does not
/// authenticate as InvalidData, and a missing last chunk as UnexpectedEof.
fn stream_error(e: io::Error) -> ArchiveError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => ArchiveError::Truncated(e.to_string()),
        // A chunk cut in the middle does not authenticate either.
        io::ErrorKind::InvalidData => ArchiveError::Damaged(
            "a part of it does not authenticate (altered, damaged, or cut short)".to_owned(),
        ),
        _ => ArchiveError::Damaged(e.to_string()),
    }
}
