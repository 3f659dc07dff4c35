//! Trust without verifying the chain: the key pinned by `--server-insecure-ssl`.
//!
//! Both verifiers here skip the WebPKI check of chain, host name and validity dates, which
//! is what makes a self-signed server usable. What stays is the handshake signature: the
//! peer must hold the private key of the certificate it presents, so a copied certificate
//! is refused. [`learn_fingerprint`] accepts any key and reports it: it is for the first
//! connection only, and its pitfall is that a first connection over a network an attacker
//! controls learns the attacker's key. Show the fingerprint to the operator, who compares
//! it with the one the server shows (its log, the Add node page), then pin it with
//! [`crate::trust::TrustMode::Pinned`].

use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use crate::error::{CertError, Fault};
use crate::x509::{spki_sha256, spki_sha256_hex};

/// A pinned connection met another key. Carried inside the handshake error
/// (`rustls::Error::InvalidCertificate(CertificateError::Other(..))`); find it with
/// [`PinMismatch::in_error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server's public key changed: pinned {}, presented {}", spki_sha256_hex(.pinned), spki_sha256_hex(.presented))]
pub struct PinMismatch {
    pub pinned: [u8; 32],
    pub presented: [u8; 32],
}

impl PinMismatch {
    /// The mismatch inside a failed handshake's error, if that is why it failed.
    pub fn in_error(e: &rustls::Error) -> Option<&PinMismatch> {
        match e {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
                other.0.downcast_ref::<PinMismatch>()
            }
            _ => None,
        }
    }
}

/// The fingerprint the first connection saw, once it has connected.
#[derive(Debug, Clone, Default)]
pub struct Learned(Arc<Mutex<Option<[u8; 32]>>>);

impl Learned {
    /// SHA-256 of the SubjectPublicKeyInfo the server presented, if a handshake got that far.
    pub fn get(&self) -> Option<[u8; 32]> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A client configuration that accepts any server key (trust on first use) and records
/// its fingerprint in the returned [`Learned`]. Never use it beyond that first connection.
pub fn learn_fingerprint() -> Result<(ClientConfig, Learned), CertError> {
    let provider = crate::crypto_provider();
    let learned = Learned::default();
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| CertError::new("(tls)", Fault::Generate(e.to_string())))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedKey {
            pin: Pin::Learn(learned.clone()),
            provider,
        }))
        .with_no_client_auth();
    Ok((config, learned))
}

#[derive(Debug)]
enum Pin {
    Expect([u8; 32]),
    Learn(Learned),
}

/// Accepts exactly the server whose public key hashes to the pinned value (or, learning,
/// any server, noting its key).
#[derive(Debug)]
pub(crate) struct PinnedKey {
    pin: Pin,
    provider: Arc<CryptoProvider>,
}

impl PinnedKey {
    pub(crate) fn expect(fingerprint: [u8; 32], provider: Arc<CryptoProvider>) -> Self {
        Self {
            pin: Pin::Expect(fingerprint),
            provider,
        }
    }
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
        match &self.pin {
            Pin::Expect(pinned) if *pinned == presented => Ok(ServerCertVerified::assertion()),
            Pin::Expect(pinned) => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(PinMismatch {
                    pinned: *pinned,
                    presented,
                }))),
            )),
            Pin::Learn(learned) => {
                *learned.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(presented);
                Ok(ServerCertVerified::assertion())
            }
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
