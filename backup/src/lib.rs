//! Perch's backups: one archive of the appliance's state, streamed through age encryption
//! to one or more recipients or a passphrase, with a manifest of every file's SHA-256;
//! read back only after the whole archive checks out. What goes in is the server's
//! business: this crate writes, reads and schedules archives.
#![forbid(unsafe_code)]

mod archive;
mod keys;
mod schedule;

use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

pub use age::secrecy::{ExposeSecret, SecretString};
pub use archive::{ArchiveError, ArchiveWriter, FORMAT, FileEntry, MANIFEST, Manifest, read};
pub use keys::{Encryption, Identities, KeyError};
pub use schedule::Schedule;

/// Reads the whole archive at `file` and checks it, writing nothing.
pub fn verify(file: &Path, identities: &Identities) -> Result<Manifest, ArchiveError> {
    read(open(file)?, identities, |_, _| Ok(()))
}

/// Checks the whole archive first, then reads it again and writes each file under `into`
/// (folders 0700, files 0600), checking it again as it goes: a failure leaves what was
/// written for the caller to remove.
pub fn extract(
    file: &Path,
    identities: &Identities,
    into: &Path,
) -> Result<Manifest, ArchiveError> {
    verify(file, identities)?;
    read(open(file)?, identities, |path, data| {
        let target = into.join(path);
        let named = |e| ArchiveError::Extract(target.display().to_string(), e);
        if let Some(parent) = target.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(named)?;
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&target)
            .map_err(named)?;
        io::copy(data, &mut out).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => ArchiveError::Truncated(e.to_string()),
            io::ErrorKind::InvalidData => ArchiveError::Damaged(e.to_string()),
            _ => named(e),
        })?;
        out.sync_all().map_err(named)
    })
}

fn open(file: &Path) -> Result<std::fs::File, ArchiveError> {
    std::fs::File::open(file).map_err(|e| ArchiveError::Source(file.display().to_string(), e))
}

#[cfg(test)]
mod tests;
