//! Why an upstream gave no answer, in words a client may see: the upstream's name and a
//! reason from a fixed list (callers answer in their own error shapes). The underlying error (addresses, library messages) is logged
//! where it happens, not shown.

use std::error::Error as StdError;
use std::time::Duration;

/// An upstream request that got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be made (refused, unresolvable, TLS refused).
    #[error("{upstream} cannot be reached: {reason}")]
    Connect {
        upstream: String,
        reason: &'static str,
    },
    /// Connecting, or the answer's head, took longer than allowed.
    #[error("{upstream} did not answer within {} s", after.as_secs_f64())]
    Timeout { upstream: String, after: Duration },
    /// Connected, but the exchange failed (closed early, not HTTP).
    #[error("{upstream} failed to answer: {reason}")]
    Failed {
        upstream: String,
        reason: &'static str,
    },
    /// The request target cannot be sent upstream.
    #[error("the request target is not valid for {upstream}")]
    BadTarget { upstream: String },
}

impl UpstreamError {
    /// Classifies a client error (connecting, TLS, or the exchange) for `upstream`.
    pub(super) fn from_client(
        upstream: &str,
        err: &hyper_util::client::legacy::Error,
        connect_timeout: Duration,
    ) -> Self {
        Self::classified(upstream, err, err.is_connect(), connect_timeout)
    }

    /// Classifies an error of the HTTP/1.1 pool (`connect`: while connecting).
    pub(super) fn from_pool(
        upstream: &str,
        err: &super::h1pool::PoolError,
        connect_timeout: Duration,
    ) -> Self {
        Self::classified(upstream, &*err.source, err.connect, connect_timeout)
    }

    fn classified(
        upstream: &str,
        err: &(dyn StdError + 'static),
        is_connect: bool,
        connect_timeout: Duration,
    ) -> Self {
        let upstream = upstream.to_owned();
        match classify(err) {
            Cause::TimedOut => Self::Timeout {
                upstream,
                after: connect_timeout,
            },
            Cause::Reason(reason) if is_connect => Self::Connect { upstream, reason },
            Cause::Tls(reason) => Self::Connect { upstream, reason },
            Cause::Reason(reason) => Self::Failed { upstream, reason },
            Cause::Unknown if is_connect => Self::Connect {
                upstream,
                reason: "no connection could be made",
            },
            Cause::Unknown => Self::Failed {
                upstream,
                reason: "the exchange failed",
            },
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Cause {
    TimedOut,
    Tls(&'static str),
    Reason(&'static str),
    Unknown,
}

/// Looks through an error's causes (including what an `io::Error` wraps, which its
/// `source()` skips) for the first one that says what happened.
fn classify(err: &(dyn StdError + 'static)) -> Cause {
    let mut pending: Vec<&(dyn StdError + 'static)> = vec![err];
    let mut seen = 0;
    while let Some(e) = pending.pop() {
        seen += 1;
        if seen > 32 {
            break;
        }
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Cause::Tls(match tls {
                rustls::Error::InvalidCertificate(_) => {
                    "its TLS certificate is not trusted (check the CA file and the host name)"
                }
                rustls::Error::NoApplicationProtocol => "TLS: no common application protocol",
                _ => "the TLS handshake failed",
            });
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            let found = match io.kind() {
                ErrorKind::TimedOut => Some(Cause::TimedOut),
                ErrorKind::ConnectionRefused => Some(Cause::Reason("connection refused")),
                ErrorKind::ConnectionReset => Some(Cause::Reason("connection reset")),
                ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => {
                    Some(Cause::Reason("connection closed"))
                }
                ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => {
                    Some(Cause::Reason("host unreachable"))
                }
                _ => None,
            };
            if let Some(found) = found {
                return found;
            }
            if let Some(inner) = io.get_ref() {
                pending.push(inner);
            }
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_closed() {
                return Cause::Reason("the connection closed before a complete answer");
            }
            if h.is_parse() || h.is_parse_status() {
                return Cause::Reason("the answer was not valid HTTP");
            }
            if h.is_timeout() {
                return Cause::TimedOut;
            }
        }
        if e.to_string().starts_with("dns error") {
            return Cause::Reason("its host name does not resolve");
        }
        if let Some(next) = e.source() {
            pending.push(next);
        }
    }
    Cause::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(Box<dyn StdError + Send + Sync>);
    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (Connect)")
        }
    }
    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&*self.0)
        }
    }

    #[test]
    fn causes_are_found_through_io_wrappers() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            classify(&Wrapper(Box::new(refused))),
            Cause::Reason("connection refused")
        );
        let tls = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        ));
        assert!(matches!(
            classify(&Wrapper(Box::new(tls))),
            Cause::Tls(r) if r.contains("not trusted")
        ));
        let timeout = std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timeout");
        assert_eq!(classify(&Wrapper(Box::new(timeout))), Cause::TimedOut);
        assert_eq!(
            classify(&Wrapper(Box::new(std::io::Error::other("odd")))),
            Cause::Unknown
        );
    }
}
