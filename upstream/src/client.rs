//! The pooled upstream client: HTTP/1.1, or HTTPS (TLS 1.2 and 1.3 with rustls on aws-lc-rs)
//! offering h2 and HTTP/1.1 by ALPN. Idle connections are kept for reuse.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::{self, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use perch_certs::trust::{TrustMode, client_config};
use rustls::{ClientConfig, RootCertStore};

use crate::body::Body;

/// How long an unused pooled connection is kept open.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// The client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The CA file is unreadable or holds no usable certificate (the error names the file).
    #[error("{0}")]
    CaFile(perch_certs::CertError),
}

/// A pooled client. Clones share the pool.
#[derive(Clone)]
pub struct Client {
    pub(super) inner: legacy::Client<HttpsConnector<HttpConnector>, Body>,
    /// The limit on establishing a connection (TCP and, for HTTPS, TLS's TCP part).
    pub(super) connect_timeout: Duration,
    tls: ClientConfig,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client that trusts the system's CA certificates for HTTPS upstreams (none, if the
    /// system has none: HTTPS upstreams then fail as untrusted).
    pub fn new(connect_timeout: Duration) -> Self {
        Self::build(system_roots(), connect_timeout)
    }

    /// A client that trusts only the CA certificates in the PEM file `ca_file`.
    pub fn with_ca_file(ca_file: &Path, connect_timeout: Duration) -> Result<Self, ClientError> {
        let tls = client_config(&TrustMode::CaFile(PathBuf::from(ca_file)))
            .map_err(ClientError::CaFile)?;
        Ok(Self::build(tls, connect_timeout))
    }

    /// A client with the same trust that speaks HTTP/1.1 only, as a protocol switch
    /// (WebSocket) needs; its connections are pooled separately.
    pub fn http1_only(&self) -> Self {
        Self::build_with(self.tls.clone(), self.connect_timeout, false)
    }

    fn build(tls: ClientConfig, connect_timeout: Duration) -> Self {
        Self::build_with(tls, connect_timeout, true)
    }

    fn build_with(tls: ClientConfig, connect_timeout: Duration, http2: bool) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        let builder = HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1();
        let connector = if http2 {
            builder.enable_http2().wrap_connector(http)
        } else {
            builder.wrap_connector(http)
        };
        let inner = legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Self {
            inner,
            connect_timeout,
            tls,
        }
    }
}

/// The system's roots (Debian's ca-certificates), or an empty store when there are none.
fn system_roots() -> ClientConfig {
    client_config(&TrustMode::Verified(None)).unwrap_or_else(|e| {
        tracing::debug!(error = %e, "no system CA certificates; HTTPS upstreams need a CA file");
        ClientConfig::builder_with_provider(perch_certs::crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|_| ClientConfig::builder())
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth()
    })
}
