//! Accept loops and connection lifetimes: the connection cap, the handshake timeout,
//! HTTP/1.1 and h2 with limits, and a graceful end at shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use super::{Front, Listener, handle};

/// Limits applied to every client connection.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
}

/// The cap on open connections, shared by all listeners, and the means to wait for them
/// to close at shutdown.
#[derive(Debug, Clone)]
pub struct Connections {
    slots: Arc<Semaphore>,
    max: u32,
    open: Gauge,
}

/// Held for a connection's lifetime; gives its slot back when dropped.
struct Slot {
    _permit: OwnedSemaphorePermit,
    open: Gauge,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl Connections {
    pub fn new(max: u32, open: Gauge) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max as usize)),
            max,
            open,
        }
    }

    async fn permit(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().acquire_owned().await.ok()
    }

    /// Counts an accepted connection as open for as long as the slot lives.
    fn occupy(&self, permit: OwnedSemaphorePermit) -> Slot {
        self.open.inc();
        Slot {
            _permit: permit,
            open: self.open.clone(),
        }
    }

    /// Waits until every connection has closed, or `grace` has passed; true if all closed.
    pub async fn drained(&self, grace: Duration) -> bool {
        tokio::time::timeout(grace, self.slots.acquire_many(self.max))
            .await
            .is_ok()
    }
}

/// Drives a hyper connection to its end; at shutdown, asks it to finish the requests in
/// flight and close (HTTP/1.1: no more keep-alive; h2: GOAWAY). A macro because hyper's
/// HTTP/1.1 and auto connections share the method but no trait.
macro_rules! serve_until_shutdown {
    ($conn:expr, $shutdown:expr) => {{
        let conn = $conn;
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            () = stopping(&$shutdown) => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    }};
}

fn stopping(shutdown: &watch::Receiver<bool>) -> impl Future<Output = ()> + use<> {
    let mut shutdown = shutdown.clone();
    async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    }
}

/// Accepts until shutdown; returns the next connection with its slot.
async fn next_connection(
    listener: &TcpListener,
    connections: &Connections,
    shutdown: &watch::Receiver<bool>,
) -> Option<(TcpStream, SocketAddr, Slot)> {
    loop {
        let permit = tokio::select! {
            permit = connections.permit() => permit?,
            () = stopping(shutdown) => return None,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopping(shutdown) => return None,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                return Some((tcp, peer, connections.occupy(permit)));
            }
            Err(e) => {
                // Typically EMFILE: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                drop(permit);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn http_builder(limits: HttpLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        // Head and body in one buffer, so that a small answer leaves in one TLS record
        // and one write (vectored, rustls would seal each part as a record of its own).
        .writev(false)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(256)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// The HTTPS listener: TLS handshake (bounded in time), then HTTP/1.1 or h2.
pub async fn serve_https(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    front: Arc<Front>,
    connections: Connections,
    limits: HttpLimits,
    shutdown: watch::Receiver<bool>,
) {
    let builder = Arc::new(http_builder(limits));
    while let Some((tcp, peer, slot)) = next_connection(&listener, &connections, &shutdown).await {
        let (acceptor, front, builder, shutdown) = (
            acceptor.clone(),
            front.clone(),
            builder.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            let _slot = slot;
            let tls =
                match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        let reason = handshake_failure_reason(&e);
                        tracing::debug!(%peer, reason, error = %e, "TLS handshake failed");
                        front.metrics.handshake_failed(reason);
                        return;
                    }
                    Err(_) => {
                        front.metrics.handshake_failed("timeout");
                        return;
                    }
                };
            let service = service_fn(move |req| handle(front.clone(), peer, Listener::Https, req));
            serve_until_shutdown!(
                builder.serve_connection_with_upgrades(TokioIo::new(tls), service),
                shutdown
            );
        });
    }
}

/// The plain HTTP listener: every request gets a redirect to HTTPS.
pub async fn serve_redirects(
    listener: TcpListener,
    front: Arc<Front>,
    connections: Connections,
    limits: HttpLimits,
    shutdown: watch::Receiver<bool>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    let builder = Arc::new(builder);
    while let Some((tcp, peer, slot)) = next_connection(&listener, &connections, &shutdown).await {
        let (front, builder, shutdown) = (front.clone(), builder.clone(), shutdown.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let service =
                service_fn(move |req| handle(front.clone(), peer, Listener::Redirect, req));
            serve_until_shutdown!(
                builder.serve_connection(TokioIo::new(tcp), service),
                shutdown
            );
        });
    }
}

/// A short, bounded label for why a handshake failed.
fn handshake_failure_reason(e: &std::io::Error) -> &'static str {
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return match tls {
            rustls::Error::PeerIncompatible(_) => "incompatible",
            rustls::Error::NoApplicationProtocol => "no_alpn",
            rustls::Error::AlertReceived(_) => "alert_received",
            rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. } => "invalid_message",
            rustls::Error::PeerMisbehaved(_) => "peer_misbehaved",
            _ => "other",
        };
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "eof",
        std::io::ErrorKind::ConnectionReset => "reset",
        _ => "io",
    }
}
