//! The certificate directory under PMM's file names, loaded and validated as one unit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::sign::CertifiedKey;
use rustls_pki_types::CertificateDer;

use crate::error::{CertError, Fault};
use crate::pem;
use crate::x509::LeafInfo;

/// The leaf certificate, or the leaf followed by its chain.
pub const CERTIFICATE: &str = "certificate.crt";
/// The leaf's private key: PKCS#8, PKCS#1 RSA or SEC1 EC, unencrypted.
pub const KEY: &str = "certificate.key";
/// Intermediates appended to the served chain; for a generated certificate, the local CA.
pub const CA_CERTS: &str = "ca-certs.pem";
/// Accepted for PMM compatibility and not used: only ECDHE key exchange is offered.
pub const DHPARAM: &str = "dhparam.pem";

/// A directory holding PMM's certificate files.
#[derive(Debug, Clone)]
pub struct CertDir {
    dir: PathBuf,
}

/// How strict [`CertDir::load`] is.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Accept a certificate whose validity has ended (the caller warns loudly).
    pub allow_expired: bool,
}

/// A validated certificate, chain and key, ready to serve.
#[derive(Debug, Clone)]
pub struct ServingCert {
    /// Chain (leaf first, then intermediates) and signing key.
    pub certified_key: Arc<CertifiedKey>,
    /// Facts read from the leaf.
    pub leaf: LeafInfo,
    /// The validity has ended (only when [`LoadOptions::allow_expired`] was set).
    pub expired: bool,
}

/// A cheap summary of the files on disk; a change means "load again".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirState(Vec<Option<(u64, u64, SystemTime)>>);

impl CertDir {
    /// The directory at `dir`; nothing is read yet.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The path of one of the PMM file names in this directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Whether `dhparam.pem` is present (it is accepted and not used).
    pub fn has_dhparam(&self) -> bool {
        self.file(DHPARAM).exists()
    }

    /// Size, inode and modification time of each file, to notice a replacement cheaply.
    pub fn state(&self) -> DirState {
        use std::os::unix::fs::MetadataExt;
        DirState(
            [CERTIFICATE, KEY, CA_CERTS]
                .iter()
                .map(|name| {
                    std::fs::metadata(self.file(name))
                        .ok()
                        .map(|m| (m.ino(), m.len(), m.modified().unwrap_or(UNIX_EPOCH)))
                })
                .collect(),
        )
    }

    /// Reads and validates the certificate, its chain and its key.
    ///
    /// Faults name the file: unreadable, not PEM, no certificate, no key, a key that does
    /// not match, or (unless allowed) an expired certificate. Certificates in
    /// `ca-certs.pem` that are not self-signed and not already in `certificate.crt` are
    /// appended to the served chain.
    pub fn load(&self, options: LoadOptions) -> Result<ServingCert, CertError> {
        let crt_path = self.file(CERTIFICATE);
        let key_path = self.file(KEY);
        let at = |path: &Path| {
            let path = path.to_path_buf();
            move |fault| CertError::new(path, fault)
        };

        let mut chain = pem::certificates(&read(&crt_path)?).map_err(at(&crt_path))?;
        let key = pem::private_key(&read(&key_path)?).map_err(at(&key_path))?;
        let leaf = LeafInfo::parse(&chain[0]).map_err(at(&crt_path))?;

        let ca_path = self.file(CA_CERTS);
        if ca_path.exists() {
            let extra = pem::certificates_or_none(&read(&ca_path)?).map_err(at(&ca_path))?;
            append_intermediates(&mut chain, extra).map_err(at(&ca_path))?;
        }

        let expired = unix_now() > leaf.not_after;
        if expired && !options.allow_expired {
            return Err(CertError::new(
                crt_path,
                Fault::Expired {
                    not_after: leaf.not_after_rfc3339(),
                },
            ));
        }

        let provider = crate::crypto_provider();
        let signing_key = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| CertError::new(&key_path, Fault::UnsupportedKey(e.to_string())))?;
        let certified_key = CertifiedKey::new(chain, signing_key);
        certified_key.keys_match().map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => CertError::new(&key_path, Fault::KeyMismatch),
            other => CertError::new(&crt_path, Fault::BadCertificate(other.to_string())),
        })?;

        Ok(ServingCert {
            certified_key: Arc::new(certified_key),
            leaf,
            expired,
        })
    }
}

fn append_intermediates(
    chain: &mut Vec<CertificateDer<'static>>,
    extra: Vec<CertificateDer<'static>>,
) -> Result<(), Fault> {
    for cert in extra {
        let info = LeafInfo::parse(&cert)?;
        let self_signed = info.issuer == info.subject;
        if !self_signed && !chain.contains(&cert) {
            chain.push(cert);
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|e| CertError::new(path, Fault::Unreadable(e)))
}

pub(crate) use perch_time::unix_now;

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

    fn ca_params(name: &str) -> CertificateParams {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p
    }

    /// root -> intermediate -> leaf, with the intermediate and root in ca-certs.pem.
    #[test]
    fn intermediates_from_ca_certs_are_appended_once_and_roots_are_not_sent() {
        let tmp = tempfile::tempdir().unwrap();
        let root_key = KeyPair::generate().unwrap();
        let root = ca_params("root").self_signed(&root_key).unwrap();
        let root_issuer = Issuer::new(ca_params("root"), &root_key);
        let mid_key = KeyPair::generate().unwrap();
        let mid = ca_params("intermediate")
            .signed_by(&mid_key, &root_issuer)
            .unwrap();
        let mid_issuer = Issuer::new(ca_params("intermediate"), &mid_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .signed_by(&leaf_key, &mid_issuer)
            .unwrap();

        let dir = CertDir::new(tmp.path());
        std::fs::write(dir.file(KEY), leaf_key.serialize_pem()).unwrap();
        std::fs::write(dir.file(CERTIFICATE), leaf.pem()).unwrap();
        std::fs::write(dir.file(CA_CERTS), format!("{}{}", mid.pem(), root.pem())).unwrap();
        let chain = dir
            .load(LoadOptions::default())
            .unwrap()
            .certified_key
            .cert
            .clone();
        assert_eq!(chain, vec![leaf.der().clone(), mid.der().clone()]);

        // The chain already in certificate.crt is not duplicated.
        std::fs::write(
            dir.file(CERTIFICATE),
            format!("{}{}", leaf.pem(), mid.pem()),
        )
        .unwrap();
        let chain = dir
            .load(LoadOptions::default())
            .unwrap()
            .certified_key
            .cert
            .clone();
        assert_eq!(chain.len(), 2);
    }

    #[test]
    fn a_change_of_file_changes_the_state() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CertDir::new(tmp.path());
        let empty = dir.state();
        std::fs::write(dir.file(CERTIFICATE), "x").unwrap();
        let one = dir.state();
        assert_ne!(empty, one);
        std::fs::write(dir.file(CERTIFICATE), "xy").unwrap();
        assert_ne!(one, dir.state());
    }
}
