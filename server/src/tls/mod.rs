//! TLS termination: the served certificate, the rustls configuration, and the watcher that
//! swaps in replaced files without a restart.

mod watch;

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use perch_certs::{CertDir, CertError, LoadOptions, Provisioned, ServingCert};
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::selfmon::SelfMetrics;

pub use watch::spawn_watcher;

/// Where certificates come from and how strictly they are checked.
#[derive(Debug, Clone)]
pub struct CertSource {
    pub dir: CertDir,
    pub ca_dir: PathBuf,
    pub sans: Vec<String>,
    pub options: LoadOptions,
}

/// The certificate served to new connections; replaced whole, never edited.
#[derive(Debug)]
pub struct Certificates {
    current: ArcSwap<ServingCert>,
    metrics: Arc<SelfMetrics>,
}

impl Certificates {
    /// Provisions (generating a certificate if the directory is empty) and loads the
    /// certificate, failing with the file and fault when it cannot be served.
    pub fn start(source: &CertSource, metrics: Arc<SelfMetrics>) -> Result<Arc<Self>, CertError> {
        match perch_certs::provision(&source.dir, &source.ca_dir, &source.sans)? {
            Provisioned::GeneratedNew => tracing::info!(
                dir = %source.dir.path().display(),
                ca = %source.ca_dir.display(),
                names = %source.sans.join(","),
                "generated a local CA and a server certificate; clients can verify it with ca-certs.pem"
            ),
            Provisioned::GeneratedRenewed => tracing::info!(
                names = %source.sans.join(","),
                "issued the generated server certificate again, same key"
            ),
            Provisioned::GeneratedStale { reason } => tracing::warn!(
                %reason,
                "the generated server certificate is due for renewal but could not be issued again; serving the existing one"
            ),
            Provisioned::GeneratedCurrent | Provisioned::UserSupplied => {}
        }
        if source.dir.has_dhparam() {
            tracing::info!(
                "dhparam.pem is present and not used: only ECDHE key exchange is offered"
            );
        }
        let cert = source.dir.load(source.options)?;
        let this = Arc::new(Self {
            current: ArcSwap::from_pointee(cert.clone()),
            metrics,
        });
        this.announce(&cert, "serving certificate");
        Ok(this)
    }

    /// The SHA-256 of the served certificate's public key, as `perch-admin` pins it.
    pub fn fingerprint(&self) -> String {
        perch_certs::spki_sha256_hex(&self.current.load().leaf.spki_sha256)
    }

    /// The served certificate's DNS names and IP addresses (subjectAltName).
    pub fn names(&self) -> Vec<String> {
        self.current.load().leaf.subject_alt_names.clone()
    }

    fn replace(&self, cert: ServingCert) {
        self.announce(&cert, "certificate reloaded; new connections get it");
        self.current.store(Arc::new(cert));
    }

    fn announce(&self, cert: &ServingCert, what: &str) {
        self.metrics.cert_expiry.set(cert.leaf.not_after);
        let not_after = cert.leaf.not_after_rfc3339();
        if cert.expired {
            tracing::error!(
                %not_after,
                "THE CERTIFICATE HAS EXPIRED and is served only because of --allow-expired-cert: clients will refuse it. Install a current certificate."
            );
        }
        tracing::info!(
            %not_after,
            names = %cert.leaf.subject_alt_names.join(","),
            spki_sha256 = %perch_certs::spki_sha256_hex(&cert.leaf.spki_sha256),
            chain = cert.certified_key.cert.len(),
            "{what}"
        );
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().certified_key.clone())
    }
}

/// TLS 1.3 and 1.2 only, rustls's AEAD ECDHE suites, X25519MLKEM768 preferred, ALPN h2
/// then http/1.1, stateless resumption tickets.
pub fn server_config(certs: Arc<Certificates>) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(server_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    // The server's order decides, not the client's (scanners rate the opposite a finding).
    config.ignore_client_order = true;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()?;
    Ok(Arc::new(config))
}

/// The cipher suites in the order of Mozilla's intermediate configuration (the TLS 1.2
/// suites with DHE have no rustls counterpart): TLS 1.3 AES-128-GCM, AES-256-GCM,
/// ChaCha20-Poly1305; then TLS 1.2 ECDHE, ECDSA before RSA, in the same order of ciphers.
fn server_provider() -> rustls::crypto::CryptoProvider {
    use rustls::crypto::aws_lc_rs::cipher_suite as suite;
    rustls::crypto::CryptoProvider {
        cipher_suites: vec![
            suite::TLS13_AES_128_GCM_SHA256,
            suite::TLS13_AES_256_GCM_SHA384,
            suite::TLS13_CHACHA20_POLY1305_SHA256,
            suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        ..Arc::unwrap_or_clone(perch_certs::crypto_provider())
    }
}

/// The names the generated certificate carries: the loopback names, this host's name, and
/// each `--tls-san`.
pub fn wanted_names(extra: &[String]) -> Result<Vec<String>, perch_certs::SanError> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    if let Some(host) = host_name()
        && let Ok(host) = perch_certs::validate_san(&host)
    {
        names.push(host);
    }
    for san in extra {
        names.push(perch_certs::validate_san(san.trim())?);
    }
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    Ok(names)
}

fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}
