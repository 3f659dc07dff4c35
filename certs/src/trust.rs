//! How a Perch client decides to trust the server it connects to.
//!
//! Two modes, matching `perch-admin`'s flags:
//!
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

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{CertError, Fault};
use crate::pem;
use crate::x509::{spki_sha256, spki_sha256_hex};

/// How to trust the server.
#[derive(Debug, Clone)]
pub enum TrustMode {
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
        TrustMode::CaFile(path) => builder
            .with_root_certificates(roots_from(path)?)
            .with_no_client_auth(),
        TrustMode::Pinned(fingerprint) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedKey {
                fingerprint: *fingerprint,
                provider,
            }))
            .with_no_client_auth(),
    };
    Ok(config)
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

#[derive(Debug)]
struct PinnedKey {
    fingerprint: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedKey {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = spki_sha256(end_entity)
            .map_err(|f| rustls::Error::General(format!("server certificate: {f}")))?;
        if presented == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the server's public key changed: pinned {}, presented {}",
                spki_sha256_hex(&self.fingerprint),
                spki_sha256_hex(&presented)
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
