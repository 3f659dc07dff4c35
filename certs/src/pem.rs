//! Reading PEM files into DER, with faults that say what the file holds instead.

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::Fault;

const BEGIN: &[u8] = b"-----BEGIN ";

fn has_pem(bytes: &[u8]) -> bool {
    bytes.windows(BEGIN.len()).any(|w| w == BEGIN)
}

fn bad_pem(e: pem::Error) -> Fault {
    Fault::BadPem(e.to_string())
}

/// Every CERTIFICATE section in `bytes`, in file order; at least one.
pub(crate) fn certificates(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, Fault> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad_pem)?;
    match certs.is_empty() {
        false => Ok(certs),
        true if has_pem(bytes) => Err(Fault::NoCertificate),
        true => Err(Fault::NotPem),
    }
}

/// Every CERTIFICATE section in `bytes`; none is fine (an empty `ca-certs.pem`).
pub(crate) fn certificates_or_none(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, Fault> {
    match certificates(bytes) {
        Err(Fault::NoCertificate) => Ok(Vec::new()),
        Err(Fault::NotPem) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Vec::new()),
        other => other,
    }
}

/// The first private key in `bytes`: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
pub(crate) fn private_key(bytes: &[u8]) -> Result<PrivateKeyDer<'static>, Fault> {
    match PrivateKeyDer::from_pem_slice(bytes) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) if contains(bytes, b"ENCRYPTED PRIVATE KEY") => {
            Err(Fault::EncryptedKey)
        }
        Err(pem::Error::NoItemsFound) if has_pem(bytes) => Err(Fault::NoKey),
        Err(pem::Error::NoItemsFound) => Err(Fault::NotPem),
        Err(e) => Err(bad_pem(e)),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_what_is_not_a_certificate() {
        assert!(matches!(certificates(b"hello"), Err(Fault::NotPem)));
        assert!(matches!(certificates(b""), Err(Fault::NotPem)));
        let key =
            b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
        assert!(matches!(certificates(key), Err(Fault::NoCertificate)));
        let cut = b"-----BEGIN CERTIFICATE-----\nMIIB\n";
        assert!(matches!(certificates(cut), Err(Fault::BadPem(_))));
        assert!(certificates_or_none(b"\n").unwrap().is_empty());
    }

    #[test]
    fn classifies_what_is_not_a_key() {
        assert!(matches!(private_key(b"junk"), Err(Fault::NotPem)));
        let enc =
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(matches!(private_key(enc), Err(Fault::EncryptedKey)));
        let cert = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert!(matches!(private_key(cert), Err(Fault::NoKey)));
    }
}
