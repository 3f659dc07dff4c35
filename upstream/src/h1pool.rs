//! A lean pool of HTTP/1.1 connections to one plain-HTTP upstream (the common case: a
//! Grafana or an engine on the same host or Docker network). A connection goes back to the
//! pool when its answer's body has been read to the end, without a task per request; a
//! pooled connection the upstream closed meanwhile is noticed before use, and a request
//! that could not be written on it is sent again on a new one. HTTPS upstreams use the
//! general client (TLS, h2 by ALPN).

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::header::HOST;
use http::{HeaderValue, Request, Response, Uri};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use crate::body::{Body, BoxError};

/// Idle connections kept, and for how long.
const MAX_IDLE: usize = 256;
const IDLE_FOR: Duration = Duration::from_secs(30);

/// Why no answer came; `connect` tells a refused or unreachable upstream from a failed
/// exchange.
#[derive(Debug)]
pub struct PoolError {
    pub connect: bool,
    pub source: BoxError,
}

impl PoolError {
    fn connecting(source: BoxError) -> Self {
        Self {
            connect: true,
            source,
        }
    }
}

struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

/// The pool for one `host:port`. Clones share it.
#[derive(Clone)]
pub struct H1Pool {
    inner: Arc<Inner>,
}

struct Inner {
    authority: String,
    host: HeaderValue,
    connect_timeout: Duration,
    idle: Mutex<Vec<Idle>>,
}

impl std::fmt::Debug for H1Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H1Pool")
            .field("authority", &self.inner.authority)
            .finish_non_exhaustive()
    }
}

impl H1Pool {
    /// A pool for `authority` (`host:port`, as a URI has it).
    pub fn new(authority: &str, connect_timeout: Duration) -> Option<Self> {
        Some(Self {
            inner: Arc::new(Inner {
                host: HeaderValue::from_str(authority).ok()?,
                authority: authority.to_owned(),
                connect_timeout,
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    /// A ready pooled connection, if one is left.
    async fn pooled(&self) -> Option<SendRequest<Body>> {
        loop {
            let idle = self
                .inner
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()?;
            if idle.since.elapsed() > IDLE_FOR || idle.sender.is_closed() {
                continue;
            }
            let mut sender = idle.sender;
            // Just back from a finished answer, the connection may take a moment to be
            // idle again; a closed one fails here.
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    async fn connect(&self) -> Result<SendRequest<Body>, PoolError> {
        let tcp = tokio::time::timeout(
            self.inner.connect_timeout,
            tokio::net::TcpStream::connect(self.inner.authority.as_str()),
        )
        .await
        .map_err(|_| {
            PoolError::connecting(Box::new(std::io::Error::from(std::io::ErrorKind::TimedOut)))
        })?
        .map_err(|e| PoolError::connecting(Box::new(e)))?;
        let _ = tcp.set_nodelay(true);
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| PoolError::connecting(Box::new(e)))?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        Ok(sender)
    }

    /// Sends `req` (an absolute URI for this upstream, or the origin form) on a pooled
    /// connection or a new one. The answer's body returns the connection to the pool when
    /// read to its end.
    pub async fn send(&self, mut req: Request<Body>) -> Result<Response<Body>, PoolError> {
        if req.uri().scheme().is_some() {
            let origin_form = req
                .uri()
                .path_and_query()
                .map_or("/", |pq| pq.as_str())
                .parse::<Uri>()
                .map_err(|e| PoolError {
                    connect: false,
                    source: Box::new(e),
                })?;
            *req.uri_mut() = origin_form;
        }
        req.headers_mut()
            .entry(HOST)
            .or_insert_with(|| self.inner.host.clone());
        let (mut sender, mut fresh) = match self.pooled().await {
            Some(sender) => (sender, false),
            None => (self.connect().await?, true),
        };
        loop {
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let upgrade = resp.status() == http::StatusCode::SWITCHING_PROTOCOLS;
                    let pool = (!upgrade).then(|| self.clone());
                    return Ok(resp.map(|body| {
                        http_body_util::BodyExt::boxed_unsync(Returning {
                            body,
                            sender: Some(sender),
                            pool,
                        })
                    }));
                }
                Err(mut e) => match e.take_message() {
                    // Not written: the pooled connection was closed under us. Once more, on
                    // a new connection.
                    Some(again) if !fresh => {
                        req = again;
                        sender = self.connect().await?;
                        fresh = true;
                    }
                    _ => {
                        return Err(PoolError {
                            connect: false,
                            source: Box::new(e.into_error()),
                        });
                    }
                },
            }
        }
    }

    fn give_back(&self, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }
}

/// An answer's body that hands its connection back when it ends.
struct Returning {
    body: Incoming,
    sender: Option<SendRequest<Body>>,
    pool: Option<H1Pool>,
}

impl Returning {
    fn give_back(&mut self) {
        if let (Some(sender), Some(pool)) = (self.sender.take(), self.pool.take()) {
            pool.give_back(sender);
        }
    }
}

impl Drop for Returning {
    /// An empty answer (204, a HEAD) may never be polled: it ended all the same.
    fn drop(&mut self) {
        if self.body.is_end_stream() {
            self.give_back();
        }
    }
}

impl HttpBody for Returning {
    type Data = bytes::Bytes;
    type Error = crate::body::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match polled {
            Poll::Ready(None) => {
                self.give_back();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                self.sender = None;
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(Some(Ok(frame))) => {
                // A body of known length may not be polled again after its last bytes.
                if self.body.is_end_stream() {
                    self.give_back();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// An upstream that answers every request with `body`, counting connections; with
    /// `close`, it says `Connection: close` and hangs up after each answer.
    async fn upstream(close: bool) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut seen = Vec::new();
                    loop {
                        let n = match tcp.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        seen.extend_from_slice(&buf[..n]);
                        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            seen.drain(..end + 4);
                            let head = if close { "connection: close\r\n" } else { "" };
                            let answer =
                                format!("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n{head}\r\nhello");
                            if tcp.write_all(answer.as_bytes()).await.is_err() || close {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    fn request(addr: &str) -> Request<Body> {
        Request::get(format!("http://{addr}/x"))
            .body(crate::body::full(bytes::Bytes::new()))
            .unwrap()
    }

    #[tokio::test]
    async fn connections_are_reused_once_an_answer_is_read() {
        let (addr, accepted) = upstream(false).await;
        let pool = H1Pool::new(&addr, Duration::from_secs(1)).unwrap();
        for _ in 0..5 {
            let resp = pool.send(request(&addr)).await.unwrap();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "hello");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_is_replaced() {
        let (addr, accepted) = upstream(true).await;
        let pool = H1Pool::new(&addr, Duration::from_secs(1)).unwrap();
        for _ in 0..3 {
            let resp = pool.send(request(&addr)).await.unwrap();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "hello");
            // Give the closed connection a moment to be seen as closed (or not: either way
            // the request must succeed).
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        let pool = H1Pool::new(&addr, Duration::from_secs(1)).unwrap();
        let err = pool.send(request(&addr)).await.unwrap_err();
        assert!(err.connect, "{err:?}");
    }
}
