//! The connection stack: listeners, TLS accept, HTTP/1.1 or h2, then the router; on the
//! way out, security headers, Perch's request metrics and the access log, for every
//! response.

mod access_log;
mod activity;
mod conn;
mod headers;
mod redirect;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{Method, Request, Response, Version};
use hyper::body::{Body as HttpBody, Incoming};

use crate::features::gateway::Proxied;
use crate::request::{Body, LoggedUser, RouteName, full};
use crate::router::Router;
use crate::selfmon::{RequestLabels, RouteLabels, SelfMetrics};

pub use access_log::AccessLog;

/// The User-Agent of `perch-server healthcheck`.
pub const HEALTH_PROBE_AGENT: &str = concat!("perch-healthcheck/", env!("CARGO_PKG_VERSION"));
pub use conn::{Connections, HttpLimits, serve_https, serve_redirects};

/// What the listeners hand each request to.
#[derive(Debug)]
pub struct Front {
    pub router: Router,
    pub metrics: Arc<SelfMetrics>,
    pub access_log: AccessLog,
    /// The HTTPS port that plain HTTP redirects to.
    pub https_port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listener {
    Https,
    Redirect,
}

async fn handle(
    front: Arc<Front>,
    peer: SocketAddr,
    listener: Listener,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let start = Instant::now();
    let line = LogLine {
        method: req.method().clone(),
        uri: req.uri().clone(),
        version: req.version(),
        probe: is_health_probe(peer, &req),
    };
    let (route, mut resp) = match listener {
        Listener::Https => front.router.serve(peer, req).await,
        Listener::Redirect => redirect::redirect(front.https_port, &req),
    };
    if line.method == Method::HEAD {
        resp = without_body(resp);
    }
    Ok(finish(&front, peer, &line, start, route, resp))
}

/// The answer to HEAD: GET's head, its length in `Content-Length` when known, and no body
/// (over h2 a body after a HEAD answer is a protocol error).
fn without_body(resp: Response<Body>) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    if !parts.headers.contains_key(CONTENT_LENGTH)
        && let Some(length) = body.size_hint().exact()
    {
        parts.headers.insert(CONTENT_LENGTH, length.into());
    }
    Response::from_parts(parts, full(Bytes::new()))
}

/// What the access log needs of a request that the handler consumed.
#[derive(Debug)]
struct LogLine {
    method: http::Method,
    /// Its path is logged (never the query, which may hold secrets).
    uri: http::Uri,
    version: Version,
    /// Docker's health probe: counted in the metrics, not written to the access log.
    probe: bool,
}

/// `perch-server healthcheck`'s request: `/v1/readyz` from this machine, saying who it is.
/// (Anyone on the machine could say so too, and keep a readiness probe out of the log.)
fn is_health_probe<B>(peer: SocketAddr, req: &Request<B>) -> bool {
    peer.ip().to_canonical().is_loopback()
        && req.uri().path() == "/v1/readyz"
        && req
            .headers()
            .get(http::header::USER_AGENT)
            .is_some_and(|ua| ua.as_bytes() == HEALTH_PROBE_AGENT.as_bytes())
}

/// Security headers, metrics and the access log, for every response.
fn finish(
    front: &Front,
    peer: SocketAddr,
    req: &LogLine,
    start: Instant,
    route: RouteName,
    mut resp: Response<Body>,
) -> Response<Body> {
    if resp.extensions().get::<Proxied>().is_some() {
        headers::apply_edge(resp.headers_mut());
    } else {
        headers::apply(resp.headers_mut());
    }

    let status = resp.status().as_u16();
    let elapsed = start.elapsed();
    front
        .metrics
        .requests
        .get_or_create(&RequestLabels { route, status })
        .inc();
    front
        .metrics
        .latency
        .get_or_create(&RouteLabels { route })
        .observe(elapsed.as_secs_f64());
    if req.probe {
        return resp;
    }
    front.access_log.log(&access_log::Entry {
        client: peer.ip().to_canonical(),
        user: resp.extensions().get::<LoggedUser>().map(|u| u.0.as_str()),
        method: req.method.as_str(),
        path: req.uri.path(),
        proto: proto(req.version),
        status,
        bytes: resp.body().size_hint().exact().unwrap_or(0),
        duration: elapsed,
    });
    resp
}

fn proto(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/?",
    }
}
