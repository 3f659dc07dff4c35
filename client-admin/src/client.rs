//! HTTPS to the Perch server: one TLS connection (rustls, the configured trust mode), HTTP/1.1
//! over it, and errors that say what to do.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use perch_certs::trust::TrustMode;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Longest answer read from the server.
const MAX_ANSWER: usize = 4 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longer than the server waits for its metrics engine (60 s by default), so that a slow
/// write is not sent a second time while the first is still on its way.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(75);

/// What went wrong talking to the server. Each names the fault and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "{server}: cannot connect: {error}; check the address, that the server runs and that its port is open"
    )]
    Unreachable { server: String, error: String },
    #[error(
        "{server}: the server's certificate is not trusted ({reason}). A self-signed server (Perch's default) needs --server-insecure-ssl, or --ca-file with its ca-certs.pem"
    )]
    Untrusted { server: String, reason: String },
    #[error(
        "{server}: the server's certificate is not valid for the name {asked}; it covers {covers}. Connect by one of those names, or have the server's certificate cover {asked} (Perch's generated one: start the server with PERCH_TLS_SAN={asked}; it is issued again at start), or use --server-insecure-ssl --server-fingerprint <the fingerprint on the Add node page>"
    )]
    WrongName {
        server: String,
        asked: String,
        covers: String,
    },
    #[error(
        "{server}: THE SERVER'S PUBLIC KEY CHANGED (pinned {pinned}, presented {presented}). Someone may be intercepting the connection. If the server's key was changed on purpose, pin the new one with `perch-admin config --force ...`"
    )]
    PinChanged {
        server: String,
        pinned: String,
        presented: String,
    },
    #[error("{server}: TLS handshake failed: {reason}")]
    Tls { server: String, reason: String },
    #[error("{server}: no answer within {} s", timeout.as_secs())]
    Timeout { server: String, timeout: Duration },
    #[error("{server}: the connection failed: {reason}")]
    Http { server: String, reason: String },
    #[error("the server refused: {message} (HTTP {status})")]
    Refused {
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("bad server address {0:?}: use HOST or HOST:PORT")]
    BadAddress(String),
    #[error("{0}")]
    Trust(String),
}

impl ClientError {
    /// The exit code this error calls for (see `--help`).
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Untrusted { .. }
            | ClientError::WrongName { .. }
            | ClientError::PinChanged { .. } => 3,
            ClientError::Refused { status, .. }
                if *status == StatusCode::UNAUTHORIZED || *status == StatusCode::FORBIDDEN =>
            {
                4
            }
            ClientError::BadAddress(_) | ClientError::Trust(_) => 2,
            _ => 1,
        }
    }
}

/// `host` and `port` of `HOST[:PORT]` (default 443), IPv6 in brackets.
pub fn split_server(server: &str) -> Result<(String, u16), ClientError> {
    let bad = || ClientError::BadAddress(server.to_owned());
    let s = server.trim();
    if s.is_empty() || s.contains('/') || s.contains('@') {
        return Err(bad());
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after {
            "" => 443,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .ok_or_else(bad)?,
        };
        return Ok((host.to_owned(), port));
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            Ok((host.to_owned(), port.parse().map_err(|_| bad())?))
        }
        Some(_) => Ok((s.to_owned(), 443)), // a bare IPv6 address
        None => Ok((s.to_owned(), 443)),
    }
}

/// What the TLS handshake settled, for `status`.
#[derive(Debug, Clone)]
pub struct TlsFacts {
    pub version: String,
    pub cipher: String,
    /// The leaf's notAfter, RFC 3339.
    pub not_after: Option<String>,
    /// Seconds until notAfter (negative once expired).
    pub expires_in_s: Option<i64>,
    pub fingerprint: Option<[u8; 32]>,
}

/// A server to talk to, with a trust mode.
#[derive(Debug, Clone)]
pub struct Server {
    pub display: String,
    host: String,
    port: u16,
    name: ServerName<'static>,
    tls: Arc<rustls::ClientConfig>,
}

impl Server {
    pub fn new(server: &str, trust: &TrustMode) -> Result<Self, ClientError> {
        let config = perch_certs::trust::client_config(trust)
            .map_err(|e| ClientError::Trust(e.to_string()))?;
        Self::with_config(server, config)
    }

    pub fn with_config(
        server: &str,
        mut config: rustls::ClientConfig,
    ) -> Result<Self, ClientError> {
        let (host, port) = split_server(server)?;
        let name = ServerName::try_from(host.clone())
            .map_err(|_| ClientError::BadAddress(server.to_owned()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            display: if port == 443 {
                host.clone()
            } else {
                format!("{host}:{port}")
            },
            host,
            port,
            name,
            tls: Arc::new(config),
        })
    }

    /// Opens a TLS connection and an HTTP/1.1 session on it.
    pub async fn connect(&self) -> Result<Conn, ClientError> {
        let server = self.display.clone();
        let tcp = tokio::time::timeout(
            CONNECT_TIMEOUT,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| ClientError::Timeout {
            server: server.clone(),
            timeout: CONNECT_TIMEOUT,
        })?
        .map_err(|e| ClientError::Unreachable {
            server: server.clone(),
            error: e.to_string(),
        })?;
        let _ = tcp.set_nodelay(true);
        let tls = tokio::time::timeout(
            CONNECT_TIMEOUT,
            TlsConnector::from(self.tls.clone()).connect(self.name.clone(), tcp),
        )
        .await
        .map_err(|_| ClientError::Timeout {
            server: server.clone(),
            timeout: CONNECT_TIMEOUT,
        })?
        .map_err(|e| classify_tls(&server, e))?;
        let facts = facts(tls.get_ref().1);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| ClientError::Http {
                server: server.clone(),
                reason: e.to_string(),
            })?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            server,
            host: self.display.clone(),
            sender,
            facts,
        })
    }
}

fn facts(tls: &rustls::ClientConnection) -> TlsFacts {
    let leaf = tls
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| perch_certs::LeafInfo::parse(c).ok());
    let now = perch_time::unix_now();
    TlsFacts {
        version: tls
            .protocol_version()
            .map_or("?".into(), |v| format!("{v:?}").replace('_', ".")),
        cipher: tls
            .negotiated_cipher_suite()
            .map_or("?".into(), |c| format!("{:?}", c.suite())),
        not_after: leaf.as_ref().map(|l| l.not_after_rfc3339()),
        expires_in_s: leaf.as_ref().map(|l| l.not_after - now),
        fingerprint: leaf.map(|l| l.spki_sha256),
    }
}

fn classify_tls(server: &str, e: std::io::Error) -> ClientError {
    let server = server.to_owned();
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return ClientError::Tls {
            server,
            reason: e.to_string(),
        };
    };
    if let Some(m) = perch_certs::danger::PinMismatch::in_error(tls) {
        return ClientError::PinChanged {
            pinned: perch_certs::spki_sha256_hex(&m.pinned),
            presented: perch_certs::spki_sha256_hex(&m.presented),
            server,
        };
    }
    match tls {
        rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext {
            expected,
            presented,
        }) => ClientError::WrongName {
            server,
            asked: expected.to_str().into_owned(),
            covers: if presented.is_empty() {
                "no name at all".to_owned()
            } else {
                presented.join(", ")
            },
        },
        rustls::Error::InvalidCertificate(reason) => ClientError::Untrusted {
            server,
            reason: reason.to_string(),
        },
        other => ClientError::Tls {
            server,
            reason: other.to_string(),
        },
    }
}

/// An answer: status, headers and the whole (bounded) body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// `Ok(self)` for 2xx, else the server's `{"error","code"}` as [`ClientError::Refused`].
    pub fn ok(self) -> Result<Self, ClientError> {
        if self.status.is_success() {
            return Ok(self);
        }
        let v = self.json();
        let text = |k: &str| v.get(k).and_then(|s| s.as_str()).map(str::to_owned);
        Err(ClientError::Refused {
            status: self.status,
            code: text("code").unwrap_or_default(),
            message: text("error").unwrap_or_else(|| {
                String::from_utf8_lossy(&self.body[..self.body.len().min(200)]).into_owned()
            }),
        })
    }
}

/// One open connection.
#[derive(Debug)]
pub struct Conn {
    server: String,
    host: String,
    sender: SendRequest<Full<Bytes>>,
    pub facts: TlsFacts,
}

impl Conn {
    /// Still usable for another request.
    pub fn is_open(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Sends one request; `headers` are (name, value) pairs.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Answer, ClientError> {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, &self.host)
            .header(
                http::header::USER_AGENT,
                concat!("perch-admin/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Full::new(body)).map_err(|e| ClientError::Http {
            server: self.server.clone(),
            reason: e.to_string(),
        })?;
        let http_err = |e: String| ClientError::Http {
            server: self.server.clone(),
            reason: e,
        };
        let exchange = async {
            self.sender
                .ready()
                .await
                .map_err(|e| http_err(e.to_string()))?;
            let resp = self
                .sender
                .send_request(req)
                .await
                .map_err(|e| http_err(e.to_string()))?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| http_err(e.to_string()))?
                .to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| ClientError::Timeout {
                server: self.server.clone(),
                timeout: REQUEST_TIMEOUT,
            })?
    }

    /// A JSON request with a bearer token (or none).
    pub async fn json(
        &mut self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, ClientError> {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("accept", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        let body = match body {
            Some(v) => {
                headers.push(("content-type", "application/json"));
                Bytes::from(serde_json::to_vec(v).unwrap_or_default())
            }
            None => Bytes::new(),
        };
        self.send(method, path, &headers, body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses() {
        assert_eq!(split_server("perch").unwrap(), ("perch".into(), 443));
        assert_eq!(split_server("perch:8443").unwrap(), ("perch".into(), 8443));
        assert_eq!(split_server("[::1]:8443").unwrap(), ("::1".into(), 8443));
        assert_eq!(split_server("[::1]").unwrap(), ("::1".into(), 443));
        assert_eq!(split_server("10.0.0.5").unwrap(), ("10.0.0.5".into(), 443));
        for bad in ["", "https://x", "a:b", "u@h", "[::1"] {
            assert!(split_server(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_name_the_certificate_does_not_cover_is_said_plainly() {
        let tls =
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext {
                expected: ServerName::try_from("perch.lan").unwrap().to_owned(),
                presented: vec!["localhost".into(), "127.0.0.1".into()],
            });
        let e = classify_tls(
            "perch.lan:443",
            std::io::Error::new(std::io::ErrorKind::InvalidData, tls),
        );
        let text = e.to_string();
        assert_eq!(e.exit_code(), 3);
        assert!(
            text.contains("not valid for the name perch.lan")
                && text.contains("covers localhost, 127.0.0.1")
                && text.contains("PERCH_TLS_SAN=perch.lan")
                && text.contains("--server-insecure-ssl --server-fingerprint"),
            "{text}"
        );
        assert!(!text.contains("Context"), "no rustls internals: {text}");
        assert!(
            !text.contains("--ca-file"),
            "not the advice already taken: {text}"
        );
    }
}
