//! Certificates for Perch: PEM loading under PMM's file names, a local CA, and client trust modes.
//!
//! The server reads its certificate directory with [`CertDir`]: `certificate.crt`,
//! `certificate.key`, `ca-certs.pem` and `dhparam.pem`, PMM's names, so an operator moving
//! from PMM keeps the files they have. When the directory is empty, [`provision`] makes a
//! local CA (kept apart, in the data directory) and a server certificate signed by it.
//! Clients connect with [`trust::client_config`], either verifying against a CA file or
//! pinning the server's public key.
#![forbid(unsafe_code)]

mod bundle;
pub mod danger;
mod error;
mod local_ca;
mod pem;
pub mod trust;
mod x509;

pub use bundle::{CertDir, DirState, LoadOptions, ServingCert};
pub use error::{CertError, Fault};
pub use local_ca::{Provisioned, SanError, provision, validate_san};
pub use x509::{LeafInfo, spki_sha256, spki_sha256_hex};

/// The crypto provider every Perch TLS endpoint uses: aws-lc-rs, with rustls's defaults
/// (AEAD ECDHE suites only; X25519MLKEM768 preferred, then X25519, P-256, P-384).
pub fn crypto_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}
