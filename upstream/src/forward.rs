//! Sending to an upstream: [`forward`] passes a client's request on (edge header rules
//! applied); [`send`] sends a request Perch made itself. Both add the upstream's
//! credentials, bound the wait for the answer's head, and stream the body back.

use std::net::IpAddr;

use bytes::Bytes;
use http::header::{AUTHORIZATION, HOST, HeaderName, UPGRADE};
use http::{HeaderValue, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::error::UpstreamError;
use super::{Upstream, headers};
use crate::body::{Body, BoxError};

/// Who the client is, as the upstream is told in `X-Forwarded-*`.
#[derive(Debug, Clone)]
pub struct Forwarded {
    /// The client's address (the TCP peer: Perch is the edge).
    pub client: IpAddr,
    /// `https` at Perch's TLS listener.
    pub proto: &'static str,
    /// The host the client asked for: its `Host` header, or an h2 request's authority.
    pub host: Option<HeaderValue>,
}

impl Forwarded {
    /// For `req`, received from `client` over `proto`.
    pub fn of<B>(req: &Request<B>, client: IpAddr, proto: &'static str) -> Self {
        let host = req.headers().get(HOST).cloned().or_else(|| {
            req.uri()
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        Self {
            client,
            proto,
            host,
        }
    }
}

/// What an upstream is told beyond `X-Forwarded-*`, per route.
#[derive(Debug, Default)]
pub struct Edge {
    /// Keep the client's own cookies and a non-Perch `Authorization` (for a tool with its
    /// own sessions); otherwise none of the client's credentials pass.
    pub keep_foreign_credentials: bool,
    /// Headers only Perch may set: the client's are removed, then each is set when it has
    /// a value (the signed-in user's name, their role).
    pub identity: Vec<(HeaderName, Option<HeaderValue>)>,
}

/// Whether `req` asks to switch protocols (a WebSocket): such a request needs an upstream
/// whose client speaks HTTP/1.1 only.
pub fn wants_upgrade<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11 && headers::upgrade_protocol(req.headers()).is_some()
}

/// Forwards `req` to `upstream` at `path_and_query` (starting with `/`, appended to the
/// upstream's base path). Hop-by-hop headers are removed both ways; the client's
/// credentials (but what `edge` keeps) and identity headers never reach the upstream;
/// `X-Forwarded-*` and `Forwarded` are set from `from`. The answer's body streams back as
/// the upstream sends it. A protocol switch (WebSocket) that the upstream accepts becomes
/// a tunnel between the two connections.
pub async fn forward(
    upstream: &Upstream,
    mut req: Request<Body>,
    path_and_query: &str,
    from: &Forwarded,
    edge: &Edge,
) -> Result<Response<Body>, UpstreamError> {
    let uri = upstream.request_uri(path_and_query)?;
    let upgrade = if wants_upgrade(&req) {
        headers::upgrade_protocol(req.headers())
    } else {
        None
    };
    let client_side = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
    let headers = req.headers_mut();
    headers::remove_hop_by_hop(headers);
    if edge.keep_foreign_credentials {
        headers::remove_identity_keep_foreign(headers);
    } else {
        headers::remove_identity(headers);
    }
    headers::remove_underscored_lookalikes(headers, |dashed| {
        edge.identity
            .iter()
            .any(|(name, _)| name.as_str() == dashed)
    });
    for (name, value) in &edge.identity {
        headers.remove(name);
        if let Some(value) = value {
            headers.insert(name.clone(), value.clone());
        }
    }
    headers::set_forwarded(headers, from.client, from.proto, from.host.as_ref());
    if let Some(protocol) = upgrade {
        headers::set_upgrade(headers, protocol);
    }
    *req.uri_mut() = uri;
    // The pool picks HTTP/1.1 or h2 per connection; the client's own version is no guide.
    *req.version_mut() = Version::HTTP_11;
    let mut resp = send(upstream, req).await?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_side) = client_side else {
            return Err(UpstreamError::Failed {
                upstream: upstream.name.clone(),
                reason: "it switched protocols unasked",
            });
        };
        let protocol = resp.headers().get(UPGRADE).cloned();
        let upstream_side = hyper::upgrade::on(&mut resp);
        tokio::spawn(tunnel(client_side, upstream_side, upstream.name.clone()));
        let (mut parts, _) = resp.into_parts();
        headers::remove_hop_by_hop(&mut parts.headers);
        if let Some(protocol) = protocol {
            headers::set_upgrade(&mut parts.headers, protocol);
        }
        parts.version = Version::HTTP_11;
        return Ok(Response::from_parts(parts, crate::body::full(Bytes::new())));
    }
    let (mut parts, body) = resp.into_parts();
    headers::remove_hop_by_hop(&mut parts.headers);
    parts.version = Version::HTTP_11;
    Ok(Response::from_parts(parts, body))
}

/// Copies bytes both ways between a client and an upstream that switched protocols, until
/// either side closes.
async fn tunnel(client: OnUpgrade, upstream: OnUpgrade, name: String) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(both) => both,
        Err(e) => {
            tracing::debug!(upstream = %name, error = %e, "protocol switch failed");
            return;
        }
    };
    let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
    match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        Ok((sent, received)) => {
            tracing::debug!(upstream = %name, sent, received, "tunnel closed");
        }
        Err(e) => tracing::debug!(upstream = %name, error = %e, "tunnel ended"),
    }
}

/// Sends `req` (its URI from [`Upstream::uri`]) with the upstream's credentials, waiting
/// at most the upstream's timeout for the answer's head.
pub async fn send(
    upstream: &Upstream,
    mut req: Request<Body>,
) -> Result<Response<Body>, UpstreamError> {
    match upstream.auth().header() {
        Some(value) => {
            req.headers_mut().insert(AUTHORIZATION, value.clone());
        }
        None => {
            req.headers_mut().remove(AUTHORIZATION);
        }
    }
    if let Some(pool) = &upstream.h1 {
        return match tokio::time::timeout(upstream.timeout, pool.send(req)).await {
            Err(_) => Err(UpstreamError::Timeout {
                upstream: upstream.name.clone(),
                after: upstream.timeout,
            }),
            Ok(Err(e)) => {
                tracing::warn!(
                    upstream = %upstream.display_base(),
                    error = %e.source,
                    cause = ?e.source.source(),
                    "upstream request failed"
                );
                Err(UpstreamError::from_pool(
                    &upstream.name,
                    &e,
                    upstream.client.connect_timeout,
                ))
            }
            Ok(Ok(resp)) => Ok(resp),
        };
    }
    match tokio::time::timeout(upstream.timeout, upstream.client.inner.request(req)).await {
        Err(_) => Err(UpstreamError::Timeout {
            upstream: upstream.name.clone(),
            after: upstream.timeout,
        }),
        Ok(Err(e)) => {
            let err =
                UpstreamError::from_client(&upstream.name, &e, upstream.client.connect_timeout);
            tracing::warn!(
                upstream = %upstream.display_base(),
                error = %e,
                cause = ?std::error::Error::source(&e),
                "upstream request failed"
            );
            Err(err)
        }
        Ok(Ok(resp)) => {
            Ok(resp.map(|body| body.map_err(|e| Box::new(e) as BoxError).boxed_unsync()))
        }
    }
}

/// Why a body was not read whole.
#[derive(Debug)]
pub enum ReadBodyError {
    TooLarge,
    Failed,
}

/// Reads `body` whole, at most `limit` bytes. (`http_body_util::Limited` over a boxed error
/// type trips the compiler's higher-ranked lifetime check in futures that are spawned.)
pub async fn read_body(mut body: Body, limit: usize) -> Result<Bytes, ReadBodyError> {
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ReadBodyError::Failed)?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(ReadBodyError::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use http::StatusCode;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::oneshot;

    use super::*;
    use crate::{Client, Credentials, UpstreamError, parse_url};

    fn upstream(addr: SocketAddr, timeout: Duration) -> Upstream {
        Upstream::new(
            "the test upstream",
            parse_url(&format!("http://{addr}/base/")).unwrap(),
            Credentials::bearer("upstream-token").unwrap(),
            timeout,
            Client::new(Duration::from_secs(1)),
        )
    }

    /// Reads one request head and its `Content-Length` body off the wire, as text.
    async fn read_request(tcp: &mut TcpStream) -> String {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "the request ended early");
            seen.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8(seen.clone()).unwrap();
        let head_len = text.find("\r\n\r\n").unwrap() + 4;
        let length: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |v| v.trim().parse().unwrap());
        while seen.len() < head_len + length {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0);
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(seen).unwrap()
    }

    fn client_request() -> Request<Body> {
        Request::post("https://perch.example/prometheus/api/v1/query")
            .header("authorization", "Bearer perch-client-token")
            .header("cookie", "__Host-perch_session=s")
            .header("x-webauth-user", "admin")
            .header("x-forwarded-for", "6.6.6.6")
            .header("connection", "x-drop")
            .header("x-drop", "1")
            .header("te", "trailers")
            .header("host", "perch.example")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("content-length", "7")
            .body(crate::body::full("query=1"))
            .unwrap()
    }

    #[tokio::test]
    async fn requests_are_cleaned_and_answers_stream_back() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (seen_tx, seen_rx) = oneshot::channel();
        let (rest_tx, rest_rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let _ = seen_tx.send(read_request(&mut tcp).await);
            tcp.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                  transfer-encoding: chunked\r\nconnection: keep-alive, x-hop\r\n\
                  x-hop: 1\r\nkeep-alive: timeout=5\r\nx-kept: yes\r\n\r\n5\r\nfirst\r\n",
            )
            .await
            .unwrap();
            let _ = rest_rx.await;
            tcp.write_all(b"6\r\nsecond\r\n0\r\n\r\n").await.unwrap();
            // Hold the connection until the test is done with it.
            let _ = tcp.read(&mut [0u8; 1]).await;
        });
        let up = upstream(addr, Duration::from_secs(5));
        let req = client_request();
        let from = Forwarded::of(&req, "192.0.2.1".parse().unwrap(), "https");
        let resp = forward(&up, req, "/api/v1/query?x=1", &from, &Edge::default())
            .await
            .unwrap();

        let wire = seen_rx.await.unwrap();
        let lower = wire.to_ascii_lowercase();
        assert!(
            wire.starts_with("POST /base/api/v1/query?x=1 HTTP/1.1\r\n"),
            "{wire}"
        );
        assert!(
            lower.contains("authorization: bearer upstream-token\r\n"),
            "{wire}"
        );
        for gone in [
            "perch-client-token",
            "cookie:",
            "x-webauth-user",
            "6.6.6.6",
            "x-drop",
            "te:",
            "connection:",
        ] {
            assert!(
                !lower.contains(gone),
                "{gone} reached the upstream:\n{wire}"
            );
        }
        assert!(lower.contains(&format!("host: {addr}\r\n")), "{wire}");
        assert!(lower.contains("x-forwarded-for: 192.0.2.1\r\n"), "{wire}");
        assert!(lower.contains("x-forwarded-proto: https\r\n"), "{wire}");
        assert!(
            lower.contains("x-forwarded-host: perch.example\r\n"),
            "{wire}"
        );
        assert!(wire.ends_with("\r\n\r\nquery=1"), "{wire}");

        assert_eq!(resp.status(), StatusCode::OK);
        for gone in ["x-hop", "keep-alive", "connection", "transfer-encoding"] {
            assert!(resp.headers().get(gone).is_none(), "{gone} came back");
        }
        assert_eq!(resp.headers()["x-kept"], "yes");
        // The first chunk arrives while the upstream still holds back the rest: streamed,
        // not collected.
        let mut body = resp.into_body();
        let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("the first chunk, before the rest is sent")
            .unwrap()
            .unwrap();
        assert_eq!(first.into_data().unwrap(), "first");
        rest_tx.send(()).unwrap();
        let rest = body.collect().await.unwrap().to_bytes();
        assert_eq!(rest, "second");
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error_naming_the_upstream() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let up = upstream(addr, Duration::from_secs(5));
        let req = client_request();
        let from = Forwarded::of(&req, "192.0.2.1".parse().unwrap(), "https");
        let err = forward(&up, req, "/x", &from, &Edge::default())
            .await
            .unwrap_err();
        assert_eq!(
            err,
            UpstreamError::Connect {
                upstream: "the test upstream".into(),
                reason: "connection refused"
            }
        );
    }

    #[tokio::test]
    async fn silence_is_a_timeout_and_a_hang_up_a_failure() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            // The first connection is read and never answered; the second is hung up on.
            let (mut silent, _) = listener.accept().await.unwrap();
            let _ = read_request(&mut silent).await;
            let (mut rude, _) = listener.accept().await.unwrap();
            let _ = read_request(&mut rude).await;
            drop(rude);
            let _ = silent.read(&mut [0u8; 1]).await;
        });
        let up = upstream(addr, Duration::from_millis(300));
        let req = client_request();
        let from = Forwarded::of(&req, "192.0.2.1".parse().unwrap(), "https");
        let err = forward(&up, req, "/x", &from, &Edge::default())
            .await
            .unwrap_err();
        assert_eq!(
            err,
            UpstreamError::Timeout {
                upstream: "the test upstream".into(),
                after: Duration::from_millis(300)
            }
        );
        let err = forward(&up, client_request(), "/x", &from, &Edge::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, UpstreamError::Failed { reason, .. } if reason.contains("closed")),
            "{err:?}"
        );
    }
}
