use std::path::PathBuf;

/// A certificate file that could not be used, and why. Displays as one line,
/// `<path>: <fault>`, fit to be the last thing a failing start prints.
#[derive(Debug, thiserror::Error)]
#[error("{}: {fault}", path.display())]
pub struct CertError {
    /// The file (or directory) at fault.
    pub path: PathBuf,
    /// What is wrong with it.
    pub fault: Fault,
}

impl CertError {
    pub(crate) fn new(path: impl Into<PathBuf>, fault: Fault) -> Self {
        Self {
            path: path.into(),
            fault,
        }
    }
}

/// The ways a certificate file can be unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    #[error("cannot read the file: {0}")]
    Unreadable(std::io::Error),
    #[error("cannot write the file: {0}")]
    Unwritable(std::io::Error),
    #[error(
        "the file is missing while {present} is present; add it, or remove both to have Perch generate a pair"
    )]
    MissingPartner { present: &'static str },
    #[error(
        "the directory is read-only and incomplete: missing {}; mount a directory that holds them, or make it writable so Perch can generate a certificate",
        missing.join(", ")
    )]
    ReadOnlyIncomplete { missing: Vec<&'static str> },
    #[error("not PEM: no '-----BEGIN' line found")]
    NotPem,
    #[error("invalid PEM: {0}")]
    BadPem(String),
    #[error("no certificate: the file holds PEM but no CERTIFICATE section")]
    NoCertificate,
    #[error(
        "no private key: the file holds PEM but no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY section"
    )]
    NoKey,
    #[error(
        "the private key is encrypted: store it decrypted (openssl pkey -in old.key -out certificate.key) with mode 0600"
    )]
    EncryptedKey,
    #[error("unsupported private key: {0}")]
    UnsupportedKey(String),
    #[error("the certificate cannot be parsed: {0}")]
    BadCertificate(String),
    #[error("the private key does not match the certificate in certificate.crt")]
    KeyMismatch,
    #[error(
        "the certificate expired at {not_after}; install a current one, or start with --allow-expired-cert"
    )]
    Expired { not_after: String },
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
}
