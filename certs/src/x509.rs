//! The few facts Perch reads out of a certificate.

use std::net::IpAddr;

use rustls_pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;

use crate::error::Fault;

/// What Perch needs to know about a leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafInfo {
    /// Start of validity, seconds since the Unix epoch.
    pub not_before: i64,
    /// End of validity (inclusive), seconds since the Unix epoch.
    pub not_after: i64,
    /// DNS names and IP addresses from subjectAltName, in certificate order.
    pub subject_alt_names: Vec<String>,
    /// DER of the issuer's distinguished name.
    pub issuer: Vec<u8>,
    /// DER of the subject's distinguished name.
    pub subject: Vec<u8>,
    /// SHA-256 of the DER SubjectPublicKeyInfo.
    pub spki_sha256: [u8; 32],
}

impl LeafInfo {
    /// Parses `der`; the fault names what could not be read.
    pub fn parse(der: &CertificateDer<'_>) -> Result<Self, Fault> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| Fault::BadCertificate(e.to_string()))?;
        let mut subject_alt_names = Vec::new();
        if let Some(ext) = cert
            .subject_alternative_name()
            .map_err(|e| Fault::BadCertificate(e.to_string()))?
        {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => subject_alt_names.push((*dns).to_owned()),
                    GeneralName::IPAddress(raw) => {
                        if let Some(ip) = ip_from_bytes(raw) {
                            subject_alt_names.push(ip.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(Self {
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            subject_alt_names,
            issuer: cert.issuer().as_raw().to_vec(),
            subject: cert.subject().as_raw().to_vec(),
            spki_sha256: sha256(cert.public_key().raw),
        })
    }

    /// Formats `not_after` as RFC 3339 (UTC).
    pub fn not_after_rfc3339(&self) -> String {
        rfc3339(self.not_after)
    }
}

pub(crate) use perch_time::rfc3339;

fn ip_from_bytes(raw: &[u8]) -> Option<IpAddr> {
    match raw.len() {
        4 => <[u8; 4]>::try_from(raw).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(raw).ok().map(IpAddr::from),
        _ => None,
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// SHA-256 of the certificate's SubjectPublicKeyInfo: the value that `perch-admin`
/// pins with `--server-insecure-ssl`, and that survives a renewal keeping the key.
pub fn spki_sha256(der: &CertificateDer<'_>) -> Result<[u8; 32], Fault> {
    LeafInfo::parse(der).map(|info| info.spki_sha256)
}

/// [`spki_sha256`] as lowercase hex pairs joined by colons, as operators compare it by eye.
pub fn spki_sha256_hex(fingerprint: &[u8; 32]) -> String {
    let hex = data_encoding::HEXLOWER.encode(fingerprint);
    let pairs: Vec<&str> = (0..hex.len()).step_by(2).map(|i| &hex[i..i + 2]).collect();
    pairs.join(":")
}
