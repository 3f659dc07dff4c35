//! Listeners, connections and the request stack: TLS accept -> HTTP/1.1 or h2 -> route ->
//! security headers, metrics and the access log on the way out.

mod access_log;
mod conn;
mod headers;
mod routes;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use http::{Request, Response, Version};
use http_body_util::Full;
use hyper::body::{Body as _, Bytes};

use crate::selfmon::{RequestLabels, RouteLabels, SelfMetrics};

pub use access_log::AccessLog;
pub use conn::{Connections, HttpLimits, serve_https, serve_redirects};

/// Response bodies.
pub type Body = Full<Bytes>;

/// What every request handler shares.
#[derive(Debug)]
pub struct App {
    pub metrics: Arc<SelfMetrics>,
    pub access_log: AccessLog,
    /// Set at SIGTERM: readiness turns 503 while in-flight requests finish.
    pub draining: AtomicBool,
    /// The HTTPS port that plain HTTP redirects to.
    pub https_port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listener {
    Https,
    Redirect,
}

async fn handle<B>(
    app: Arc<App>,
    peer: SocketAddr,
    listener: Listener,
    req: Request<B>,
) -> Result<Response<Body>, Infallible> {
    let start = Instant::now();
    let (route, mut resp) = match listener {
        Listener::Https => routes::dispatch(&app, peer, &req),
        Listener::Redirect => routes::redirect(app.https_port, &req),
    };
    headers::apply(resp.headers_mut());

    let status = resp.status().as_u16();
    let elapsed = start.elapsed();
    app.metrics
        .requests
        .get_or_create(&RequestLabels { route, status })
        .inc();
    app.metrics
        .latency
        .get_or_create(&RouteLabels { route })
        .observe(elapsed.as_secs_f64());
    app.access_log.log(&access_log::Entry {
        time: now_rfc3339(),
        client: peer.ip().to_canonical(),
        method: req.method().as_str(),
        path: req.uri().path(),
        proto: proto(req.version()),
        status,
        bytes: resp.body().size_hint().exact().unwrap_or(0),
        duration_ms: elapsed.as_secs_f64() * 1000.0,
    });
    Ok(resp)
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

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
