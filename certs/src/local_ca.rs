//! The local CA and the server certificate it signs, for an appliance started without one.
//!
//! The CA lives in the data directory (`ca.crt`, and `ca.key` with mode 0600), never in the
//! certificate directory, so that copying `ca-certs.pem` out to clients never copies a key.
//! The server certificate is written under PMM's names; `ca-certs.pem` holds the CA so that
//! clients can fetch it and verify. A generated certificate is issued again, keeping its key
//! (so a pinned fingerprint survives), when it nears its end or when the wanted names change.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use crate::bundle::{CA_CERTS, CERTIFICATE, CertDir, KEY, unix_now};
use crate::error::{CertError, Fault};
use crate::pem;
use crate::x509::LeafInfo;

const CA_CERT_FILE: &str = "ca.crt";
const CA_KEY_FILE: &str = "ca.key";
const CA_VALIDITY: Duration = Duration::days(3650);
const LEAF_VALIDITY: Duration = Duration::days(365);
/// A generated leaf is issued again when fewer than this many days remain.
const RENEW_BEFORE: Duration = Duration::days(30);

/// What [`provision`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provisioned {
    /// The directory holds the operator's own certificate; Perch leaves it alone.
    UserSupplied,
    /// Perch's generated certificate is present and current.
    GeneratedCurrent,
    /// Perch generated a new key and certificate (first start).
    GeneratedNew,
    /// Perch issued its certificate again, same key: nearing expiry, or names changed.
    GeneratedRenewed,
    /// Perch's certificate is due for renewal but could not be issued again (for example
    /// the directory became read-only); the existing one is still usable until it ends.
    GeneratedStale { reason: String },
}

/// A `--tls-san` value that is neither a DNS name nor an IP address.
#[derive(Debug, thiserror::Error)]
#[error(
    "'{0}' is neither a DNS name (letters, digits, '-', dots; '*.' prefix allowed) nor an IP address"
)]
pub struct SanError(pub String);

/// Normalises one subjectAltName: an IP address, or a DNS name (lower-cased).
pub fn validate_san(value: &str) -> Result<String, SanError> {
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let name = value.trim_end_matches('.').to_ascii_lowercase();
    let rest = name.strip_prefix("*.").unwrap_or(&name);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.len() <= 253 && rest.split('.').all(label_ok) {
        Ok(name)
    } else {
        Err(SanError(value.to_owned()))
    }
}

/// Makes sure `cert_dir` holds a usable certificate and key, generating them when absent.
///
/// `sans` are the names the generated certificate must carry (validated with
/// [`validate_san`]). The local CA is created in `ca_dir` when first needed. A directory
/// holding only one of `certificate.crt` and `certificate.key` is an error (nothing the
/// operator put there is overwritten); a read-only directory without them is an error
/// naming the missing files. Safe to call again: it is how renewal happens.
pub fn provision(
    cert_dir: &CertDir,
    ca_dir: &Path,
    sans: &[String],
) -> Result<Provisioned, CertError> {
    let crt = cert_dir.file(CERTIFICATE);
    let key = cert_dir.file(KEY);
    match (crt.exists(), key.exists()) {
        (true, true) => renew_if_due(cert_dir, ca_dir, sans),
        (true, false) => Err(CertError::new(
            key,
            Fault::MissingPartner {
                present: CERTIFICATE,
            },
        )),
        (false, true) => Err(CertError::new(crt, Fault::MissingPartner { present: KEY })),
        (false, false) => {
            ensure_writable(cert_dir)?;
            let ca = LocalCa::load_or_create(ca_dir)?;
            let leaf_key = new_key()?;
            let leaf = ca.issue(&leaf_key, sans, LEAF_VALIDITY)?;
            write_file(&key, leaf_key.serialize_pem().as_bytes(), 0o600)?;
            write_file(&cert_dir.file(CA_CERTS), ca.cert_pem.as_bytes(), 0o644)?;
            write_file(&crt, leaf.as_bytes(), 0o644)?;
            Ok(Provisioned::GeneratedNew)
        }
    }
}

fn renew_if_due(
    cert_dir: &CertDir,
    ca_dir: &Path,
    sans: &[String],
) -> Result<Provisioned, CertError> {
    if !ca_dir.join(CA_CERT_FILE).exists() {
        return Ok(Provisioned::UserSupplied);
    }
    let ca = LocalCa::load(ca_dir)?;
    let crt = cert_dir.file(CERTIFICATE);
    let bytes = read(&crt)?;
    let chain = pem::certificates(&bytes).map_err(|f| CertError::new(&crt, f))?;
    let leaf = LeafInfo::parse(&chain[0]).map_err(|f| CertError::new(&crt, f))?;
    if leaf.issuer != ca.subject {
        return Ok(Provisioned::UserSupplied);
    }
    let due = leaf.not_after - unix_now() < RENEW_BEFORE.whole_seconds();
    let names_changed = !same_names(&leaf.subject_alt_names, sans);
    if !due && !names_changed {
        return Ok(Provisioned::GeneratedCurrent);
    }
    let reissue = || {
        let key_path = cert_dir.file(KEY);
        let key_der =
            pem::private_key(&read(&key_path)?).map_err(|f| CertError::new(&key_path, f))?;
        let leaf_key = KeyPair::try_from(&key_der)
            .map_err(|e| CertError::new(&key_path, Fault::UnsupportedKey(e.to_string())))?;
        let pem = ca.issue(&leaf_key, sans, LEAF_VALIDITY)?;
        write_file(&crt, pem.as_bytes(), 0o644)
    };
    Ok(match reissue() {
        Ok(()) => Provisioned::GeneratedRenewed,
        Err(e) => Provisioned::GeneratedStale {
            reason: e.to_string(),
        },
    })
}

fn same_names(have: &[String], want: &[String]) -> bool {
    let mut have: Vec<&String> = have.iter().collect();
    let mut want: Vec<&String> = want.iter().collect();
    have.sort();
    have.dedup();
    want.sort();
    want.dedup();
    have == want
}

struct LocalCa {
    dir: PathBuf,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    key: KeyPair,
    subject: Vec<u8>,
}

impl LocalCa {
    fn load_or_create(dir: &Path) -> Result<Self, CertError> {
        if dir.join(CA_CERT_FILE).exists() {
            return Self::load(dir);
        }
        fs::create_dir_all(dir).map_err(|e| CertError::new(dir, Fault::Unwritable(e)))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| CertError::new(dir, Fault::Unwritable(e)))?;
        let key = new_key()?;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(
            DnType::CommonName,
            format!(
                "Perch local CA {}",
                data_encoding::HEXLOWER.encode(&random::<6>()?)
            ),
        );
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Perch");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + CA_VALIDITY;
        params.serial_number = Some(SerialNumber::from_slice(&random::<16>()?));
        let cert = params.self_signed(&key).map_err(generate_error(dir))?;
        write_file(
            &dir.join(CA_KEY_FILE),
            key.serialize_pem().as_bytes(),
            0o600,
        )?;
        write_file(&dir.join(CA_CERT_FILE), cert.pem().as_bytes(), 0o600)?;
        Self::load(dir)
    }

    fn load(dir: &Path) -> Result<Self, CertError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let cert_bytes = read(&cert_path)?;
        let cert_der = pem::certificates(&cert_bytes)
            .map_err(|f| CertError::new(&cert_path, f))?
            .swap_remove(0);
        let key_der =
            pem::private_key(&read(&key_path)?).map_err(|f| CertError::new(&key_path, f))?;
        let key = KeyPair::try_from(&key_der)
            .map_err(|e| CertError::new(&key_path, Fault::UnsupportedKey(e.to_string())))?;
        let subject = LeafInfo::parse(&cert_der)
            .map_err(|f| CertError::new(&cert_path, f))?
            .subject;
        Ok(Self {
            dir: dir.to_path_buf(),
            cert_pem: String::from_utf8_lossy(&cert_bytes).into_owned(),
            cert_der,
            key,
            subject,
        })
    }

    /// A server certificate for `leaf_key` naming `sans`, valid from an hour ago for
    /// `validity`, as PEM.
    fn issue(
        &self,
        leaf_key: &KeyPair,
        sans: &[String],
        validity: Duration,
    ) -> Result<String, CertError> {
        let issuer = Issuer::from_ca_cert_der(&self.cert_der, &self.key)
            .map_err(generate_error(&self.dir))?;
        let mut params =
            CertificateParams::new(sans.to_vec()).map_err(generate_error(&self.dir))?;
        let common_name = sans
            .iter()
            .find(|s| s.parse::<IpAddr>().is_err())
            .map_or("localhost", String::as_str);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Perch");
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + validity;
        params.serial_number = Some(SerialNumber::from_slice(&random::<16>()?));
        let cert = params
            .signed_by(leaf_key, &issuer)
            .map_err(generate_error(&self.dir))?;
        Ok(cert.pem())
    }
}

fn new_key() -> Result<KeyPair, CertError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| CertError::new("(key generation)", Fault::Generate(e.to_string())))
}

fn generate_error(path: &Path) -> impl Fn(rcgen::Error) -> CertError + '_ {
    move |e| CertError::new(path, Fault::Generate(e.to_string()))
}

fn random<const N: usize>() -> Result<[u8; N], CertError> {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out)
        .map_err(|_| CertError::new("(random)", Fault::Generate("no randomness".into())))?;
    // A positive serial number: clear the top bit.
    out[0] &= 0x7f;
    Ok(out)
}

fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    fs::read(path).map_err(|e| CertError::new(path, Fault::Unreadable(e)))
}

/// Checks that files can be created in the directory; if not, names what is missing.
fn ensure_writable(cert_dir: &CertDir) -> Result<(), CertError> {
    let dir = cert_dir.path();
    let missing = || {
        [CERTIFICATE, KEY, CA_CERTS]
            .into_iter()
            .filter(|name| !cert_dir.file(name).exists())
            .collect::<Vec<_>>()
    };
    if let Err(e) = fs::create_dir_all(dir) {
        return Err(match e.kind() {
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                CertError::new(dir, Fault::ReadOnlyIncomplete { missing: missing() })
            }
            _ => CertError::new(dir, Fault::Unwritable(e)),
        });
    }
    let probe = dir.join(".perch-write-test");
    match OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = fs::remove_file(&probe);
            Ok(())
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            Err(CertError::new(
                dir,
                Fault::ReadOnlyIncomplete { missing: missing() },
            ))
        }
        Err(e) => Err(CertError::new(dir, Fault::Unwritable(e))),
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so that a reader (the
/// certificate watcher) never sees half a file.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CertError> {
    let fail = |e| CertError::new(path, Fault::Unwritable(e));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(fail)?;
    fs::rename(&tmp, path).map_err(fail)?;
    if let Some(parent) = path.parent()
        && let Ok(dir) = fs::File::open(parent)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::LoadOptions;

    fn sans() -> Vec<String> {
        ["localhost", "127.0.0.1", "::1", "perch.test"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn generates_then_keeps_then_reissues_with_the_same_key() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CertDir::new(tmp.path().join("nginx"));
        let ca = tmp.path().join("perch/ca");
        assert_eq!(
            provision(&dir, &ca, &sans()).unwrap(),
            Provisioned::GeneratedNew
        );
        let first = dir.load(LoadOptions::default()).unwrap();
        assert_eq!(first.leaf.subject_alt_names, sans());
        let key_mode = fs::metadata(ca.join(CA_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(key_mode & 0o777, 0o600);
        let leaf_key_mode = fs::metadata(dir.file(KEY)).unwrap().permissions().mode();
        assert_eq!(leaf_key_mode & 0o777, 0o600);

        assert_eq!(
            provision(&dir, &ca, &sans()).unwrap(),
            Provisioned::GeneratedCurrent
        );

        let mut more = sans();
        more.push("10.1.2.3".into());
        assert_eq!(
            provision(&dir, &ca, &more).unwrap(),
            Provisioned::GeneratedRenewed
        );
        let second = dir.load(LoadOptions::default()).unwrap();
        assert_eq!(second.leaf.spki_sha256, first.leaf.spki_sha256);
        assert!(
            second
                .leaf
                .subject_alt_names
                .contains(&"10.1.2.3".to_string())
        );
    }

    #[test]
    fn renews_a_generated_leaf_nearing_its_end_with_the_same_key() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CertDir::new(tmp.path().join("nginx"));
        let ca_dir = tmp.path().join("ca");
        provision(&dir, &ca_dir, &sans()).unwrap();
        let before = dir.load(LoadOptions::default()).unwrap();
        // Re-issue it by hand so that only 10 days remain.
        let ca = LocalCa::load(&ca_dir).unwrap();
        let key = KeyPair::from_pem(&fs::read_to_string(dir.file(KEY)).unwrap()).unwrap();
        let short = ca.issue(&key, &sans(), Duration::days(10)).unwrap();
        fs::write(dir.file(CERTIFICATE), short).unwrap();
        let short_lived = dir.load(LoadOptions::default()).unwrap();
        assert!(short_lived.leaf.not_after < before.leaf.not_after - 300 * 86_400);

        assert_eq!(
            provision(&dir, &ca_dir, &sans()).unwrap(),
            Provisioned::GeneratedRenewed
        );
        let after = dir.load(LoadOptions::default()).unwrap();
        assert!(after.leaf.not_after > unix_now() + 360 * 86_400);
        assert_eq!(after.leaf.spki_sha256, before.leaf.spki_sha256);
    }

    #[test]
    fn leaves_an_operator_certificate_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CertDir::new(tmp.path().join("nginx"));
        let ca_dir = tmp.path().join("ca");
        provision(&dir, &ca_dir, &sans()).unwrap();
        // The operator replaces the pair with one from another CA.
        let other = tempfile::tempdir().unwrap();
        let other_dir = CertDir::new(other.path().join("nginx"));
        provision(&other_dir, &other.path().join("ca"), &sans()).unwrap();
        for name in [CERTIFICATE, KEY] {
            fs::copy(other_dir.file(name), dir.file(name)).unwrap();
        }
        let theirs = fs::read(dir.file(CERTIFICATE)).unwrap();
        let mut more = sans();
        more.push("changed.example".into());
        assert_eq!(
            provision(&dir, &ca_dir, &more).unwrap(),
            Provisioned::UserSupplied
        );
        assert_eq!(fs::read(dir.file(CERTIFICATE)).unwrap(), theirs);
    }

    #[test]
    fn refuses_to_overwrite_half_a_pair() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CertDir::new(tmp.path());
        fs::write(dir.file(CERTIFICATE), "x").unwrap();
        let err = provision(&dir, &tmp.path().join("ca"), &sans()).unwrap_err();
        assert_eq!(err.path, dir.file(KEY));
        assert!(matches!(err.fault, Fault::MissingPartner { .. }));
    }

    #[test]
    fn san_validation() {
        assert_eq!(
            validate_san("Perch.Example.COM").unwrap(),
            "perch.example.com"
        );
        assert_eq!(validate_san("*.example.com").unwrap(), "*.example.com");
        assert_eq!(validate_san("::1").unwrap(), "::1");
        assert!(validate_san("bad name").is_err());
        assert!(validate_san("-x.com").is_err());
        assert!(validate_san("").is_err());
    }
}
