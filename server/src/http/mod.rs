//! Listeners, connections and the request stack: TLS accept -> HTTP/1.1 or h2 -> route ->
//! security headers, metrics and the access log on the way out.

mod access_log;
mod conn;
mod headers;
pub mod routes;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body as HttpBody, Bytes, Incoming};

use crate::auth::Auth;
use crate::selfmon::{RequestLabels, RouteLabels, SelfMetrics};

pub use access_log::AccessLog;
pub use conn::{Connections, HttpLimits, serve_https, serve_redirects};

/// Response bodies: whole (pages, JSON) or streamed from an upstream (the query path).
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// Errors a streamed body may end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body held whole in memory.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// What every request handler shares.
#[derive(Debug)]
pub struct App {
    pub metrics: Arc<SelfMetrics>,
    pub auth: Arc<Auth>,
    /// The metrics engine (VictoriaMetrics) behind the query path.
    pub engine: Arc<crate::metrics::Engine>,
    pub query_limiter: crate::metrics::QueryLimiter,
    /// Max-Age of the session cookie, seconds.
    pub session_lifetime_s: u64,
    pub access_log: AccessLog,
    /// Set at SIGTERM: readiness turns 503 while in-flight requests finish.
    pub draining: AtomicBool,
    /// The HTTPS port that plain HTTP redirects to.
    pub https_port: u16,
    /// How long a client may take to send a request body.
    pub body_timeout: Duration,
    /// The served certificate (its fingerprint is shown on the Add node page); none in
    /// unit tests.
    pub certs: Option<Arc<crate::tls::Certificates>>,
    /// Where `ca-certs.pem` is, for clients to download.
    pub cert_dir: std::path::PathBuf,
    /// Operators' dashboard files (`<data>/dashboards`).
    pub dashboards_dir: std::path::PathBuf,
    /// The reverse proxy's routes (`--config`).
    pub gateway: Arc<crate::gateway::Gateway>,
}

/// Request bodies are read whole, up to this size, before a route sees the request.
const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listener {
    Https,
    Redirect,
}

async fn handle(
    app: Arc<App>,
    peer: SocketAddr,
    listener: Listener,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let start = Instant::now();
    let line = LogLine {
        method: req.method().clone(),
        uri: req.uri().clone(),
        version: req.version(),
    };
    // Proxy routes stream their bodies; everything else is read whole first.
    if listener == Listener::Https {
        let hit = app.gateway.table().find(line.uri.path());
        if let Some(hit) = hit {
            let (route, resp) = crate::gateway::serve(app.clone(), peer, req, hit).await;
            return Ok(finish(&app, peer, &line, start, route, resp));
        }
    }
    let (parts, body) = req.into_parts();
    let limit = if crate::metrics::is_write_path(line.uri.path()) {
        crate::metrics::WRITE_BODY_LIMIT
    } else {
        MAX_BODY
    };
    let (route, resp) = match read_body(&app, body, limit).await {
        Err((status, why)) => ("body", routes::text(status, why)),
        Ok(body) => {
            let req = Request::from_parts(parts, body);
            match listener {
                Listener::Https => routes::dispatch(app.clone(), peer, req).await,
                Listener::Redirect => routes::redirect(app.https_port, &req),
            }
        }
    };
    Ok(finish(&app, peer, &line, start, route, resp))
}

/// What the access log needs of a request that the handler consumed.
#[derive(Debug)]
struct LogLine {
    method: http::Method,
    /// Its path is logged (never the query, which may hold secrets).
    uri: http::Uri,
    version: Version,
}

/// Reads the request body whole (bounded in size and time), so that a request still
/// arriving when shutdown starts is finished, not cut.
async fn read_body<B>(app: &App, body: B, limit: usize) -> Result<Bytes, (StatusCode, &'static str)>
where
    B: HttpBody<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    match tokio::time::timeout(app.body_timeout, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request body is too large: 1 MiB at most (8 MiB for remote write).\n",
        )),
        Ok(Err(_)) => Err((
            StatusCode::BAD_REQUEST,
            "The request body could not be read.\n",
        )),
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            "The request body did not arrive in time.\n",
        )),
    }
}

/// Security headers, metrics and the access log, for every response.
fn finish(
    app: &App,
    peer: SocketAddr,
    req: &LogLine,
    start: Instant,
    route: routes::RouteName,
    mut resp: Response<Body>,
) -> Response<Body> {
    if resp.extensions().get::<crate::gateway::Proxied>().is_some() {
        headers::apply_edge(resp.headers_mut());
    } else {
        headers::apply(resp.headers_mut());
    }

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
        client: peer.ip().to_canonical(),
        user: resp
            .extensions()
            .get::<routes::LoggedUser>()
            .map(|u| u.0.as_str()),
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
