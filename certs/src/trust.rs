//! How a Perch client decides to trust the server it connects to.
//!
//! Three modes, matching `perch-admin`'s flags:
//!
//! - [`TrustMode::Verified`]: `--server-ssl`, the full WebPKI check of chain and host name
//!   against the system's CA certificates, plus those of `--ca-file` when given.
//! - [`TrustMode::CaFile`]: the full WebPKI check of chain and host name against the CA
//!   certificates in a file (for the appliance's own local CA, its `ca-certs.pem`).
//! - [`TrustMode::Pinned`]: the chain is **not** verified. Instead the server's public key
//!   must hash to a fingerprint learned earlier (trust on first use). This is what
//!   `--server-insecure-ssl` means: a self-signed server is accepted, but only that server.
//!   Its pitfall is the first connection: a fingerprint learned over a network an attacker
//!   controls pins the attacker. Compare the printed fingerprint with the one the server
//!   shows before relying on it. The handshake signature is still checked, so a peer that
//!   merely copied the certificate, without its key, is refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};

use crate::error::{CertError, Fault};
use crate::pem;

/// How to trust the server.
#[derive(Debug, Clone)]
pub enum TrustMode {
    /// Verify chain and name against the system's roots, plus the certificates in this PEM
    /// file if given.
    Verified(Option<PathBuf>),
    /// Verify chain and name against the certificates in this PEM file.
    CaFile(PathBuf),
    /// Accept exactly the server whose SubjectPublicKeyInfo hashes (SHA-256) to this value.
    Pinned([u8; 32]),
}

/// A rustls client configuration for `mode`, with ALPN left empty for the caller to set.
pub fn client_config(mode: &TrustMode) -> Result<ClientConfig, CertError> {
    let provider = crate::crypto_provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| CertError::new("(tls)", Fault::Generate(e.to_string())))?;
    let config = match mode {
        TrustMode::Verified(extra) => {
            let mut roots = system_roots();
            if let Some(path) = extra {
                for cert in roots_from(path)?.roots {
                    roots.roots.push(cert);
                }
            }
            if roots.is_empty() {
                return Err(CertError::new(
                    "(system CA certificates)",
                    Fault::NoCertificate,
                ));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TrustMode::CaFile(path) => builder
            .with_root_certificates(roots_from(path)?)
            .with_no_client_auth(),
        TrustMode::Pinned(fingerprint) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(crate::danger::PinnedKey::expect(
                *fingerprint,
                provider,
            )))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// The operating system's CA certificates (e.g. /etc/ssl/certs, or SSL_CERT_FILE); those
/// that cannot be parsed are skipped.
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    roots
}

fn roots_from(path: &Path) -> Result<RootCertStore, CertError> {
    let bytes = std::fs::read(path).map_err(|e| CertError::new(path, Fault::Unreadable(e)))?;
    let mut roots = RootCertStore::empty();
    for cert in pem::certificates(&bytes).map_err(|f| CertError::new(path, f))? {
        roots
            .add(cert)
            .map_err(|e| CertError::new(path, Fault::BadCertificate(e.to_string())))?;
    }
    Ok(roots)
}
