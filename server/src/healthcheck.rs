//! `perch-server healthcheck`: GET /v1/readyz over TLS, exit 0 when ready.
//!
//! The probe trusts exactly the key in `certificate.crt` of the certificate directory
//! (pinned, see `perch_certs::trust`), so it works with a generated certificate, an
//! operator's certificate for another name, and no CA roots, and still refuses anything
//! else listening on the port.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use perch_certs::trust::{TrustMode, client_config};
use rustls::pki_types::ServerName;

use crate::config::HealthcheckArgs;

pub fn run(args: &HealthcheckArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("healthcheck: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        tokio::time::timeout(args.timeout, probe(args))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {:?}", args.timeout)))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("healthcheck: not ready: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn probe(args: &HealthcheckArgs) -> Result<(), String> {
    let dir = perch_certs::CertDir::new(args.listen.cert_dir());
    let crt = dir.file("certificate.crt");
    let pem = std::fs::read(&crt).map_err(|e| format!("{}: {e}", crt.display()))?;
    let leaf = rustls::pki_types::pem::PemObject::pem_slice_iter(&pem)
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| format!("{}: no certificate", crt.display()))?;
    let pin = perch_certs::spki_sha256(&leaf).map_err(|e| format!("{}: {e}", crt.display()))?;
    let mut config = client_config(&TrustMode::Pinned(pin)).map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];

    let addr = loopback_for(args.listen.listen);
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = http::Request::get("/v1/readyz")
        .header(http::header::HOST, "localhost")
        .header(http::header::USER_AGENT, crate::front::HEALTH_PROBE_AGENT)
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    match resp.status() {
        http::StatusCode::OK => Ok(()),
        status => Err(format!("/v1/readyz answered {status}")),
    }
}

/// The address to probe: the listen address, with an unspecified IP replaced by loopback.
fn loopback_for(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}
