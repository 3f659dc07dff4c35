//! What each path answers. Errors become a status code here, at the edge, and nowhere else.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HOST, LOCATION};
use http::{HeaderValue, Method, Request, Response, StatusCode};

use super::{App, Body};

/// The route a request matched, as its metrics label.
pub type Route = &'static str;

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub fn dispatch<B>(app: &App, peer: SocketAddr, req: &Request<B>) -> (Route, Response<Body>) {
    let path = req.uri().path();
    match path {
        "/v1/readyz" => (
            "readyz",
            only_get(req.method()).unwrap_or_else(|| readyz(app)),
        ),
        "/metrics" => (
            "metrics",
            only_get(req.method()).unwrap_or_else(|| metrics(app, peer)),
        ),
        _ => ("not_found", text(StatusCode::NOT_FOUND, "Not found.\n")),
    }
}

fn only_get(method: &Method) -> Option<Response<Body>> {
    if method == Method::GET || method == Method::HEAD {
        return None;
    }
    let mut resp = text(
        StatusCode::METHOD_NOT_ALLOWED,
        "Only GET and HEAD are allowed here.\n",
    );
    resp.headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    Some(resp)
}

fn readyz(app: &App) -> Response<Body> {
    let (status, body) = if app.draining.load(Ordering::Relaxed) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"status":"shutting_down"}"#,
        )
    } else {
        (StatusCode::OK, r#"{"status":"ready"}"#)
    };
    let mut resp = respond(status, JSON, body);
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn metrics(app: &App, peer: SocketAddr) -> Response<Body> {
    if !peer.ip().to_canonical().is_loopback() {
        return text(
            StatusCode::FORBIDDEN,
            "/metrics is served to loopback clients only; scrape it from the appliance's own host.\n",
        );
    }
    let mut resp = respond(StatusCode::OK, OPENMETRICS, app.metrics.encode());
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Plain HTTP: a 308 to the same path and query on HTTPS, nothing else.
pub fn redirect<B>(https_port: u16, req: &Request<B>) -> (Route, Response<Body>) {
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

pub fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    respond(status, TEXT, body)
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut resp = Response::new(Body::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
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
    fn metrics_only_for_loopback_peers() {
        let metrics = std::sync::Arc::new(crate::selfmon::SelfMetrics::new());
        let app = App {
            access_log: super::super::AccessLog::start(None, metrics.access_log_dropped.clone())
                .unwrap(),
            metrics,
            draining: false.into(),
            https_port: 443,
            body_timeout: std::time::Duration::from_secs(1),
        };
        let get = req(Some("x"), "/metrics");
        for (peer, want) in [
            ("127.0.0.1:5000", StatusCode::OK),
            ("[::1]:5000", StatusCode::OK),
            ("[::ffff:127.0.0.1]:5000", StatusCode::OK),
            ("192.0.2.7:5000", StatusCode::FORBIDDEN),
            ("[2001:db8::1]:5000", StatusCode::FORBIDDEN),
        ] {
            let (_, resp) = dispatch(&app, peer.parse().unwrap(), &get);
            assert_eq!(resp.status(), want, "{peer}");
        }
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
