//! Accept loops and connection lifetimes: the connection caps (in all and per client
//! address, counted from the moment a connection is accepted, so connections still in
//! their TLS handshake count too), the handshake timeout, HTTP/1.1 and h2 with limits, the
//! idle timeout, and a graceful end at shutdown.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use super::activity::{Activity, Tracked};
use super::{Front, Listener, handle};
use crate::selfmon::ReasonLabels;

/// Limits applied to every client connection.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
    /// A connection with no request in flight for this long is closed (h2: GOAWAY first).
    pub idle_timeout: Duration,
}

/// The caps on open connections, shared by all listeners, and the means to wait for them
/// to close at shutdown.
#[derive(Debug, Clone)]
pub struct Connections {
    slots: Arc<Semaphore>,
    max: u32,
    per_address: Arc<PerAddress>,
    open: Gauge,
    /// Connections closed by Perch, by reason (`per_address_limit`, `idle`).
    closed: Family<ReasonLabels, Counter>,
}

/// Open connections by client address (IPv6 by /64: one host has a whole /64).
#[derive(Debug)]
struct PerAddress {
    max: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// The address a client's connections are counted under.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

/// Held for a connection's lifetime; gives its slots back when dropped.
struct Slot {
    _permit: OwnedSemaphorePermit,
    key: IpAddr,
    per_address: Arc<PerAddress>,
    open: Gauge,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.dec();
        let mut open = self
            .per_address
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

impl Connections {
    /// At most `max` connections in all and `max_per_address` from one client address.
    pub fn new(
        max: u32,
        max_per_address: u32,
        open: Gauge,
        closed: Family<ReasonLabels, Counter>,
    ) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max as usize)),
            max,
            per_address: Arc::new(PerAddress {
                max: max_per_address.max(1),
                open: Mutex::default(),
            }),
            open,
            closed,
        }
    }

    async fn permit(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().acquire_owned().await.ok()
    }

    /// Counts an accepted connection from `peer` as open for as long as the slot lives;
    /// none when that address already has its most.
    fn occupy(&self, permit: OwnedSemaphorePermit, peer: IpAddr) -> Option<Slot> {
        let key = client_key(peer);
        {
            let mut open = self
                .per_address
                .open
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let n = open.entry(key).or_insert(0);
            if *n >= self.per_address.max {
                drop(open);
                self.closed_for("per_address_limit");
                return None;
            }
            *n += 1;
        }
        self.open.inc();
        Some(Slot {
            _permit: permit,
            key,
            per_address: self.per_address.clone(),
            open: self.open.clone(),
        })
    }

    fn closed_for(&self, reason: &'static str) {
        self.closed.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Waits until every connection has closed, or `grace` has passed; true if all closed.
    pub async fn drained(&self, grace: Duration) -> bool {
        tokio::time::timeout(grace, self.slots.acquire_many(self.max))
            .await
            .is_ok()
    }
}

/// Drives a hyper connection to its end; at shutdown, or once `$idle` resolves, asks it to
/// finish the requests in flight and close (HTTP/1.1: no more keep-alive; h2: GOAWAY). A
/// macro because hyper's HTTP/1.1 and auto connections share the method but no trait.
macro_rules! serve_until_shutdown {
    ($conn:expr, $shutdown:expr, $idle:expr) => {{
        let conn = $conn;
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            () = stopping(&$shutdown) => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
            () = $idle => {
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
                // Over its address's cap: closed at once, before any TLS work.
                let Some(slot) = connections.occupy(permit, peer.ip()) else {
                    tracing::debug!(%peer, "too many connections from this address; closed");
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                return Some((tcp, peer, slot));
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
        let (acceptor, front, builder, shutdown, connections) = (
            acceptor.clone(),
            front.clone(),
            builder.clone(),
            shutdown.clone(),
            connections.clone(),
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
            let activity = Activity::new();
            let service = {
                let activity = activity.clone();
                service_fn(move |req| {
                    let in_flight = activity.start();
                    let answer = handle(front.clone(), peer, Listener::Https, req);
                    async move {
                        let resp = answer.await?;
                        Ok::<_, std::convert::Infallible>(
                            resp.map(|body| Tracked::new(body, in_flight)),
                        )
                    }
                })
            };
            let idle = async {
                activity.idle_for(limits.idle_timeout).await;
                connections.closed_for("idle");
            };
            serve_until_shutdown!(
                builder.serve_connection_with_upgrades(TokioIo::new(tls), service),
                shutdown,
                idle
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
                shutdown,
                std::future::pending::<()>()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_counted_by_ipv4_address_and_ipv6_slash_64() {
        let key = |s: &str| client_key(s.parse().unwrap());
        assert_eq!(key("192.0.2.7"), key("::ffff:192.0.2.7"));
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    }

    #[test]
    fn an_address_at_its_cap_is_refused_until_one_of_its_connections_closes() {
        let connections = Connections::new(10, 2, Gauge::default(), Family::default());
        let permit = || connections.slots.clone().try_acquire_owned().unwrap();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let first = connections.occupy(permit(), ip).unwrap();
        let _second = connections.occupy(permit(), ip).unwrap();
        assert!(connections.occupy(permit(), ip).is_none());
        assert!(
            connections
                .occupy(permit(), "192.0.2.8".parse().unwrap())
                .is_some()
        );
        drop(first);
        assert!(connections.occupy(permit(), ip).is_some());
        // Only `_second` still holds its slots; a refused connection gave its back at once.
        assert_eq!(connections.slots.available_permits(), 9);
    }
}
