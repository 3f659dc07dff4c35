//! Secrets kept encrypted at rest (the second factor's TOTP secrets): AES-256-GCM with a key
//! in a file of its own, `<data-dir>/perch/second-factor.key` (0600), so that a copy of the
//! store alone does not reveal them. Each sealed value is bound to its owner (the user's id
//! as associated data): moved to another user's record, it does not open.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::secret;

/// The key file's name under `<data-dir>/perch/`.
pub const KEY_FILE: &str = "second-factor.key";

/// Why the key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "{0}: missing, and the store holds second factors sealed with it; restore the file from a backup (without it, those users need an admin to reset their second factor)"
    )]
    Missing(PathBuf),
    #[error("{0}: cannot read the second-factor key: {1}")]
    Unreadable(PathBuf, std::io::Error),
    #[error("{0}: not a second-factor key (64 hexadecimal characters expected)")]
    Malformed(PathBuf),
    #[error("{0}: cannot write a new second-factor key: {1}")]
    Unwritable(PathBuf, std::io::Error),
}

pub struct SealKey(LessSafeKey);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey")
    }
}

impl SealKey {
    /// The key in `dir`'s key file; a new one is made (0600) when there is none and
    /// `may_create` (nothing sealed with an earlier one exists).
    pub fn load(dir: &Path, may_create: bool) -> Result<Self, KeyError> {
        let path = dir.join(KEY_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && may_create => {
                return Self::create(&path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyError::Missing(path));
            }
            Err(e) => return Err(KeyError::Unreadable(path, e)),
        };
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(text.trim().as_bytes())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| KeyError::Malformed(path.clone()))?;
        Self::from_bytes(&bytes).ok_or(KeyError::Malformed(path))
    }

    fn create(path: &Path) -> Result<Self, KeyError> {
        let fail = |e| KeyError::Unwritable(path.to_path_buf(), e);
        let bytes = secret::random_bytes::<32>();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(fail)?;
        file.write_all(format!("{}\n", secret::hex(&bytes)).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(fail)?;
        Self::from_bytes(&bytes).ok_or(KeyError::Malformed(path.to_path_buf()))
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        UnboundKey::new(&AES_256_GCM, bytes)
            .ok()
            .map(|k| Self(LessSafeKey::new(k)))
    }

    /// `plain` sealed for `owner`: hex of a random nonce, the ciphertext and its tag.
    pub fn seal(&self, plain: &[u8], owner: u64) -> String {
        let nonce = secret::random_bytes::<NONCE_LEN>();
        let mut sealed = plain.to_vec();
        // Sealing fails only for inputs of gigabytes.
        if self
            .0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(owner.to_be_bytes()),
                &mut sealed,
            )
            .is_err()
        {
            return String::new();
        }
        format!("{}{}", secret::hex(&nonce), secret::hex(&sealed))
    }

    /// What `sealed` holds, if it was sealed with this key for `owner` and is intact.
    pub fn open(&self, sealed: &str, owner: u64) -> Option<Vec<u8>> {
        let bytes = data_encoding::HEXLOWER.decode(sealed.as_bytes()).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(owner.to_be_bytes()), &mut body)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn sealed_for_one_owner_with_one_key_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            SealKey::load(dir.path(), false),
            Err(KeyError::Missing(_))
        ));
        let key = SealKey::load(dir.path(), true).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = key.seal(b"a totp secret", 7);
        assert!(!sealed.contains(&secret::hex(b"a totp secret")));
        assert_eq!(key.open(&sealed, 7).as_deref(), Some(&b"a totp secret"[..]));
        assert_eq!(key.open(&sealed, 8), None, "another owner's");
        let again = SealKey::load(dir.path(), false).unwrap();
        assert!(again.open(&sealed, 7).is_some(), "the same key when loaded");
        let mut flipped = sealed.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(key.open(std::str::from_utf8(&flipped).unwrap(), 7), None);
        let other = tempfile::tempdir().unwrap();
        assert_eq!(
            SealKey::load(other.path(), true).unwrap().open(&sealed, 7),
            None
        );
        std::fs::write(dir.path().join(KEY_FILE), "not hex").unwrap();
        assert!(matches!(
            SealKey::load(dir.path(), false),
            Err(KeyError::Malformed(_))
        ));
    }
}
