//! A small plain-HTTP upstream for the reverse-proxy tests, for what nginx cannot do:
//! streaming bodies of any size both ways, a WebSocket echo, and an answer that is late.
//!
//! Paths (the last segment counts, whatever the prefix):
//! - `POST …/sink`: reads the body as it comes and answers `received <bytes>`;
//! - `GET …/source?bytes=N`: streams N bytes (`0123456789…`) in 64 KiB chunks;
//! - `GET …/slow`: answers after 5 s;
//! - `GET …/ws`: a WebSocket that echoes every text or binary message;
//! - anything else: the request line and headers as text, one per line, names lowercased.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type Body = BoxBody<Bytes, Infallible>;

/// Starts the upstream on 127.0.0.1 (an ephemeral port) in the current runtime.
pub async fn start() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(answer);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed()
}

async fn answer(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let last = req.uri().path().rsplit('/').next().unwrap_or("").to_owned();
    Ok(match last.as_str() {
        "sink" => sink(req).await,
        "source" => source(&req),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Response::new(full("late\n"))
        }
        "ws" => websocket(req),
        _ => echo_head(&req),
    })
}

async fn sink(req: Request<Incoming>) -> Response<Body> {
    let mut body = req.into_body();
    let mut received: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    received += data.len() as u64;
                }
            }
            Err(e) => {
                return Response::builder()
                    .status(StatusCode::BAD_REQUEST)
                    .body(full(format!("body failed after {received}: {e}\n")))
                    .expect("response");
            }
        }
    }
    Response::new(full(format!("received {received}\n")))
}

fn source(req: &Request<Incoming>) -> Response<Body> {
    let total: u64 = req
        .uri()
        .query()
        .and_then(|q| q.strip_prefix("bytes="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let chunk: Bytes = (0..64 * 1024).map(|i| b'0' + (i % 10) as u8).collect();
    Response::builder()
        .header("content-length", total.to_string())
        .body(Source { left: total, chunk }.boxed())
        .expect("response")
}

/// `left` bytes, a chunk at a time, made as the client reads them.
struct Source {
    left: u64,
    chunk: Bytes,
}

impl hyper::body::Body for Source {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = self.left.min(self.chunk.len() as u64);
        self.left -= n;
        let data = self.chunk.slice(..n as usize);
        std::task::Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.left)
    }
}

fn echo_head(req: &Request<Incoming>) -> Response<Body> {
    let mut text = format!(
        "{} {} {:?}\n",
        req.method(),
        req.uri().path_and_query().map_or("", |pq| pq.as_str()),
        req.version()
    );
    for (name, value) in req.headers() {
        text.push_str(&format!(
            "{}: {}\n",
            name.as_str(),
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    Response::new(full(text))
}

/// The WebSocket handshake (RFC 6455), then an echo of each message on the upgraded
/// connection.
fn websocket(mut req: Request<Incoming>) -> Response<Body> {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(full("not a websocket request\n"))
            .expect("response");
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let _ = echo_frames(TokioIo::new(upgraded)).await;
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", websocket_accept(key.as_bytes()))
        .body(full(Bytes::new()))
        .expect("response")
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub fn websocket_accept(key: &[u8]) -> String {
    let mut input = key.to_vec();
    input.extend_from_slice(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
    base64(digest.as_ref())
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Reads frames (masked, from a client) and sends each data frame back unmasked; answers
/// a close with a close.
async fn echo_frames<S>(mut io: S) -> std::io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let (opcode, payload) = read_frame(&mut io).await?;
        io.write_all(&frame(opcode, &payload, None)).await?;
        if opcode == 0x8 {
            return Ok(());
        }
    }
}

/// One WebSocket frame (FIN set) with `opcode`, masked with `mask` when one is given.
pub fn frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    let masked = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(masked | n as u8),
        n if n <= 0xffff => {
            out.push(masked | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(masked | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(mask) => {
            out.extend_from_slice(&mask);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// Reads one frame: its opcode and (unmasked) payload.
pub async fn read_frame<S>(io: &mut S) -> std::io::Result<(u8, Vec<u8>)>
where
    S: tokio::io::AsyncRead + Unpin,
{
    let mut head = [0u8; 2];
    io.read_exact(&mut head).await?;
    let opcode = head[0] & 0x0f;
    let masked = head[1] & 0x80 != 0;
    let len = match head[1] & 0x7f {
        126 => u64::from(io.read_u16().await?),
        127 => io.read_u64().await?,
        n => u64::from(n),
    };
    if len > 16 * 1024 * 1024 {
        return Err(std::io::Error::other("frame too large for the test"));
    }
    let mut mask = [0u8; 4];
    if masked {
        io.read_exact(&mut mask).await?;
    }
    let mut payload = vec![0u8; len as usize];
    io.read_exact(&mut payload).await?;
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    Ok((opcode, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_value_matches_rfc_6455() {
        // The example in RFC 6455, section 1.3.
        assert_eq!(
            websocket_accept(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
