//! The plain HTTP listener's one answer: a 308 to the same path and query on HTTPS.

use http::header::{HOST, LOCATION};
use http::{HeaderValue, Request, Response, StatusCode};

use crate::request::{Body, RouteName, text};

/// Plain HTTP: a 308 to the same path and query on HTTPS, nothing else.
pub fn redirect<B>(https_port: u16, req: &Request<B>) -> (RouteName, Response<Body>) {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .and_then(host_without_port);
    let Some(host) = host else {
        return (
            "redirect",
            text(
                StatusCode::BAD_REQUEST,
                "A valid Host header is required; this port only redirects to HTTPS.\n",
            ),
        );
    };
    let port = match https_port {
        443 => String::new(),
        p => format!(":{p}"),
    };
    let path = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let location = format!("https://{host}{port}{path}");
    let mut resp = text(StatusCode::PERMANENT_REDIRECT, "Use HTTPS.\n");
    match HeaderValue::try_from(location) {
        Ok(value) => {
            resp.headers_mut().insert(LOCATION, value);
            ("redirect", resp)
        }
        Err(_) => (
            "redirect",
            text(StatusCode::BAD_REQUEST, "Bad request target.\n"),
        ),
    }
}
/// The host part of a Host header, if it is a plain name, IPv4 or bracketed IPv6 address.
fn host_without_port(value: &str) -> Option<&str> {
    let host = if value.starts_with('[') {
        let end = value.find(']')?;
        let (host, rest) = value.split_at(end + 1);
        if !(rest.is_empty() || rest.starts_with(':')) {
            return None;
        }
        host[1..host.len() - 1].parse::<std::net::Ipv6Addr>().ok()?;
        host
    } else {
        value.split(':').next()?
    };
    let ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    ok.then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(host: Option<&str>, target: &str) -> Request<()> {
        let mut b = Request::builder().uri(target);
        if let Some(h) = host {
            b = b.header(HOST, h);
        }
        b.body(()).unwrap()
    }

    fn location(resp: &Response<Body>) -> Option<&str> {
        resp.headers().get(LOCATION).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn redirects_keep_path_and_query() {
        let (_, r) = redirect(443, &req(Some("perch.example:80"), "/a/b?c=d"));
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(location(&r), Some("https://perch.example/a/b?c=d"));
        let (_, r) = redirect(8443, &req(Some("[::1]:8080"), "/"));
        assert_eq!(location(&r), Some("https://[::1]:8443/"));
    }

    #[test]
    fn redirect_refuses_bad_hosts() {
        for bad in [
            None,
            Some(""),
            Some("evil.com/x"),
            Some("a b"),
            Some("[zz]"),
        ] {
            let (_, r) = redirect(443, &req(bad, "/"));
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        }
    }
}
