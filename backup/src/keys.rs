//! Who can open a backup: age recipients (`age1...`, or an SSH public key) or a passphrase
//! when one is written; age identities (an age key file or an unencrypted SSH private key)
//! or the passphrase when one is restored.

use std::io::BufReader;
use std::path::Path;
use std::str::FromStr;

use age::secrecy::SecretString;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "'{0}' is not an age recipient (age1...) nor an SSH public key (ssh-ed25519 AAAA... or ssh-rsa AAAA...)"
    )]
    NotARecipient(String),
    #[error("{0}: {1}")]
    File(String, std::io::Error),
    #[error("{0} names no recipient (one per line; # starts a comment)")]
    NoRecipients(String),
    #[error("{0} is empty: write the passphrase on its first line")]
    EmptyPassphrase(String),
    #[error(
        "{0} holds no identity: give an age identity file (AGE-SECRET-KEY-1...) or an unencrypted SSH private key"
    )]
    NoIdentity(String),
    #[error(
        "{0} is an SSH key protected by a passphrase; give an unencrypted copy (ssh-keygen -p -N '' -f COPY) or an age identity"
    )]
    ProtectedSshKey(String),
    #[error("{0} is an SSH key of a kind age cannot use (ed25519 and RSA work)")]
    UnsupportedSshKey(String),
    #[error("give one of: a recipient, or a passphrase file")]
    Nothing,
}

/// What a backup is encrypted to, checked when it is made (recipients are kept as text,
/// parsed again for each backup).
#[derive(Debug, Clone)]
pub enum Encryption {
    Recipients(Vec<String>),
    Passphrase(SecretString),
}

impl Encryption {
    /// One or more recipients, each `age1...` or an SSH public key line.
    pub fn to_recipients(list: &[String]) -> Result<Self, KeyError> {
        let list: Vec<String> = list.iter().map(|r| r.trim().to_owned()).collect();
        if list.is_empty() {
            return Err(KeyError::Nothing);
        }
        for r in &list {
            parse_recipient(r)?;
        }
        Ok(Self::Recipients(list))
    }

    /// The recipients listed in a file (as `age -R`: one per line, `#` comments).
    pub fn recipients_in(path: &Path) -> Result<Vec<String>, KeyError> {
        let text = read(path)?;
        let list: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        if list.is_empty() {
            return Err(KeyError::NoRecipients(path.display().to_string()));
        }
        Ok(list)
    }

    /// The passphrase on the first line of a file.
    pub fn passphrase_in(path: &Path) -> Result<Self, KeyError> {
        Ok(Self::Passphrase(read_passphrase(path)?))
    }

    /// The passphrase itself (sent by `perch-server backup` over the control socket).
    pub fn passphrase(passphrase: String) -> Result<Self, KeyError> {
        if passphrase.is_empty() {
            return Err(KeyError::EmptyPassphrase("the passphrase".into()));
        }
        Ok(Self::Passphrase(SecretString::from(passphrase)))
    }

    /// For logs and pages: never the secret.
    pub fn describe(&self) -> String {
        match self {
            Self::Recipients(list) if list.len() == 1 => "1 recipient".to_owned(),
            Self::Recipients(list) => format!("{} recipients", list.len()),
            Self::Passphrase(_) => "a passphrase".to_owned(),
        }
    }

    pub(crate) fn encryptor(&self) -> Result<age::Encryptor, crate::ArchiveError> {
        match self {
            Self::Passphrase(p) => Ok(age::Encryptor::with_user_passphrase(p.clone())),
            Self::Recipients(list) => {
                let parsed = list
                    .iter()
                    .map(|r| parse_recipient(r))
                    .collect::<Result<Vec<_>, _>>()?;
                age::Encryptor::with_recipients(parsed.iter().map(|r| r.as_ref() as _))
                    .map_err(|e| crate::ArchiveError::Encrypt(e.to_string()))
            }
        }
    }
}

// X25519 and SSH recipients are what people hold today, and what Debian's age reads: age
// marks them deprecated in favour of its post-quantum recipients (age1pq1...), also taken.
#[allow(deprecated)]
fn parse_recipient(s: &str) -> Result<Box<dyn age::Recipient + Send>, KeyError> {
    let not = || KeyError::NotARecipient(s.chars().take(80).collect());
    if s.starts_with("ssh-") {
        return age::ssh::Recipient::from_str(s)
            .map(|r| Box::new(r) as _)
            .map_err(|_| not());
    }
    if s.starts_with("age1pq1") {
        return age::pq::Recipient::from_str(s)
            .map(|r| Box::new(r) as _)
            .map_err(|_| not());
    }
    age::x25519::Recipient::from_str(s)
        .map(|r| Box::new(r) as _)
        .map_err(|_| not())
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|e| KeyError::File(path.display().to_string(), e))
}

fn read_passphrase(path: &Path) -> Result<SecretString, KeyError> {
    let text = read(path)?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        return Err(KeyError::EmptyPassphrase(path.display().to_string()));
    }
    Ok(SecretString::from(line.to_owned()))
}

/// What opens a backup.
pub enum Identities {
    Keys(Vec<Box<dyn age::Identity>>),
    Passphrase(SecretString),
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Keys(k) => write!(f, "Identities::Keys({})", k.len()),
            Self::Passphrase(_) => f.write_str("Identities::Passphrase"),
        }
    }
}

impl Identities {
    /// An age identity file, or an unencrypted SSH private key (ed25519 or RSA).
    pub fn key_file(path: &Path) -> Result<Self, KeyError> {
        let name = path.display().to_string();
        let text = read(path)?;
        if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----")
            || text.contains("-----BEGIN RSA PRIVATE KEY-----")
        {
            let key = age::ssh::Identity::from_buffer(
                BufReader::new(text.as_bytes()),
                Some(name.clone()),
            )
            .map_err(|_| KeyError::NoIdentity(name.clone()))?;
            return match key {
                age::ssh::Identity::Unencrypted(_) => Ok(Self::Keys(vec![Box::new(
                    key.with_callbacks(age::NoCallbacks),
                )])),
                age::ssh::Identity::Encrypted(_) => Err(KeyError::ProtectedSshKey(name)),
                age::ssh::Identity::Unsupported(_) => Err(KeyError::UnsupportedSshKey(name)),
            };
        }
        let keys = age::IdentityFile::from_buffer(BufReader::new(text.as_bytes()))
            .map_err(|_| KeyError::NoIdentity(name.clone()))?
            .into_identities()
            .map_err(|_| KeyError::NoIdentity(name.clone()))?;
        if keys.is_empty() {
            return Err(KeyError::NoIdentity(name));
        }
        Ok(Self::Keys(
            keys.into_iter()
                .map(|k| k as Box<dyn age::Identity>)
                .collect(),
        ))
    }

    /// The passphrase on the first line of a file.
    pub fn passphrase_file(path: &Path) -> Result<Self, KeyError> {
        Ok(Self::Passphrase(read_passphrase(path)?))
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&[&dyn age::Identity]) -> T) -> T {
        match self {
            Self::Keys(keys) => {
                let refs: Vec<&dyn age::Identity> = keys.iter().map(|k| k.as_ref()).collect();
                f(&refs)
            }
            Self::Passphrase(p) => {
                let identity = age::scrypt::Identity::new(p.clone());
                f(&[&identity])
            }
        }
    }
}
