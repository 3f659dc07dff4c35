//! The metrics engine client: where writes and queries go, and whether the engine is ready.
//! Storage and PromQL are not written here: by default Perch supervises VictoriaMetrics as a
//! child process on loopback (as PMM bundles it); with `--metrics-write-url` and
//! `--metrics-query-url` it uses an existing engine that speaks Prometheus remote write and
//! the Prometheus query API, and bundles nothing. Either way, requests go through
//! [`perch_upstream`]. The handlers of the write and query paths are features above this.

mod external;
mod limiter;
mod read;
mod series;
mod snapshot;
mod supervisor;

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use http_body_util::{BodyExt, Full};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::watch;

use perch_upstream::{self as upstream, Client, Credentials, Forwarded, Upstream, UpstreamError};

pub use external::{ExternalEngine, ExternalEngineArgs};
pub use limiter::QueryLimiter;
pub use read::{InstantSample, RangeSeries, ReadError};
pub use series::{OverLimit, SeriesLimit};

/// Who the engine is, in answers to clients.
const ENGINE_NAME: &str = "the metrics engine";
/// Connecting to the bundled engine (loopback) or an external one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How the bundled engine is run.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// `victoria-metrics`, found on PATH, or a path.
    pub binary: String,
    /// Its data directory (`<data>/victoriametrics`).
    pub data_dir: PathBuf,
    /// Its `-retentionPeriod`, e.g. `30d`.
    pub retention: String,
}

/// What the engine is doing now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineState {
    Starting,
    Ready,
    Unavailable(String),
}

/// Why a request to the engine got no answer.
#[derive(Debug)]
pub enum EngineError {
    /// Not ready, or not reachable: the text says why ("unavailable: ...", "unreachable
    /// (connection refused)").
    Unavailable(String),
    Timeout(Duration),
    NoAnswer,
    /// The request could not be built (a target that is not a valid URI).
    BadRequest,
}

impl From<UpstreamError> for EngineError {
    fn from(e: UpstreamError) -> Self {
        match e {
            UpstreamError::Connect { reason, .. } => {
                Self::Unavailable(format!("unreachable ({reason})"))
            }
            UpstreamError::Timeout { after, .. } => Self::Timeout(after),
            UpstreamError::Failed { .. } => Self::NoAnswer,
            UpstreamError::BadTarget { .. } => Self::BadRequest,
        }
    }
}

/// Where the query and write paths go, built once for an external engine and at each start
/// of the bundled one.
#[derive(Debug)]
struct Targets {
    /// The Prometheus API base: `/api/v1/...` is appended.
    query: Upstream,
    /// The remote-write endpoint itself.
    write: Upstream,
    /// `write`'s URL as a request target, so that a write does not build it again.
    write_uri: Uri,
}

impl Targets {
    fn new(query: Upstream, write: Upstream) -> Result<Arc<Self>, UpstreamError> {
        let write_uri = write.uri("")?;
        Ok(Arc::new(Self {
            query,
            write,
            write_uri,
        }))
    }
}

#[derive(Debug)]
struct Current {
    state: EngineState,
    /// The bundled engine's targets while it runs (never set for an external engine).
    targets: Option<Arc<Targets>>,
}

/// Bundled or external.
#[derive(Debug)]
enum Mode {
    /// Supervised here: its upstreams, built with this client and timeout, change with each
    /// start's port.
    Bundled {
        client: Box<Client>,
        query_timeout: Duration,
    },
    /// Nothing is bundled, and requests always go to these.
    External(Arc<Targets>),
}

/// The engine as the request handlers see it.
#[derive(Debug)]
pub struct Engine {
    current: Mutex<Current>,
    mode: Mode,
}

impl Engine {
    /// The bundled engine, not yet started (see [`spawn`]).
    pub fn new(query_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            current: Mutex::new(Current {
                state: EngineState::Starting,
                targets: None,
            }),
            mode: Mode::Bundled {
                client: Box::new(Client::new(CONNECT_TIMEOUT)),
                query_timeout,
            },
        })
    }

    /// An external engine; [`spawn`] then probes it instead of starting one.
    pub fn external(engine: ExternalEngine) -> Arc<Self> {
        let targets = engine.targets;
        tracing::info!(
            write_url = %targets.write.display_base(),
            query_url = %targets.query.display_base(),
            auth = ?targets.query.auth(),
            "using an external metrics engine; none is bundled"
        );
        Arc::new(Self {
            current: Mutex::new(Current {
                state: EngineState::Starting,
                targets: None,
            }),
            mode: Mode::External(targets),
        })
    }

    /// The bundled engine's state, and its base URL and credential while it runs.
    fn set(&self, state: EngineState, running: Option<(String, Credentials)>) {
        let Mode::Bundled {
            client,
            query_timeout,
        } = &self.mode
        else {
            return;
        };
        let targets = running.and_then(|(base, credentials)| {
            let upstream = |url: &str| {
                upstream::parse_url(url).ok().map(|url| {
                    Upstream::new(
                        ENGINE_NAME,
                        url,
                        credentials.clone(),
                        *query_timeout,
                        Client::clone(client),
                    )
                })
            };
            Targets::new(upstream(&base)?, upstream(&format!("{base}/api/v1/write"))?).ok()
        });
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current.state = state;
        current.targets = targets;
    }

    /// The external engine's state, as its probe found it.
    fn set_state(&self, state: EngineState) {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .state = state;
    }

    /// Where requests go now: the external engine always (its own answer is the truth);
    /// the bundled one only while it is ready.
    fn targets(&self) -> Result<Arc<Targets>, EngineError> {
        if let Mode::External(targets) = &self.mode {
            return Ok(targets.clone());
        }
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        match (&current.state, &current.targets) {
            (EngineState::Ready, Some(targets)) => Ok(targets.clone()),
            _ => {
                drop(current);
                Err(EngineError::Unavailable(self.readiness().1.into_owned()))
            }
        }
    }

    /// Sends a snappy-compressed Prometheus remote-write body to the remote-write URL (the
    /// bundled engine's `/api/v1/write`, or the external `--metrics-write-url`), within the
    /// query timeout; the engine's answer comes back as it is.
    pub async fn remote_write(
        &self,
        body: Bytes,
    ) -> Result<http::Response<perch_upstream::Body>, EngineError> {
        let targets = self.targets()?;
        let request = http::Request::post(targets.write_uri.clone())
            .header(CONTENT_TYPE, "application/x-protobuf")
            .header(CONTENT_ENCODING, "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(Full::new(body))
            .map_err(|_| EngineError::BadRequest)?
            .map(|body| body.map_err(|never| match never {}).boxed_unsync());
        Ok(upstream::send(&targets.write, request).await?)
    }

    /// Forwards a query-path request to the engine's Prometheus API at `path_and_query`
    /// (`/api/v1/...`), with perch-upstream's edge header rules; the answer streams back.
    pub async fn forward_query(
        &self,
        request: http::Request<perch_upstream::Body>,
        path_and_query: &str,
        from: &Forwarded,
    ) -> Result<http::Response<perch_upstream::Body>, EngineError> {
        let targets = self.targets()?;
        Ok(upstream::forward(
            &targets.query,
            request,
            path_and_query,
            from,
            &upstream::Edge::default(),
        )
        .await?)
    }

    /// The readiness line for `/v1/readyz`: `ok`, `starting`, or `unavailable: <why>`;
    /// for an external engine, the not-ready lines say so ("starting: probing the external
    /// engine", "unavailable: external engine: <why>").
    pub fn readiness(&self) -> (bool, Cow<'static, str>) {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let external = matches!(self.mode, Mode::External(_));
        match &current.state {
            EngineState::Ready => (true, "ok".into()),
            EngineState::Starting if external => {
                (false, "starting: probing the external engine".into())
            }
            EngineState::Starting => (false, "starting".into()),
            EngineState::Unavailable(why) if external => {
                (false, format!("unavailable: external engine: {why}").into())
            }
            EngineState::Unavailable(why) => (false, format!("unavailable: {why}").into()),
        }
    }
}

/// Runs the engine until `shutdown` turns true: supervises the bundled one (with
/// `bundled`, counting restarts in `restarts`), or probes the external one.
pub fn spawn(
    engine: Arc<Engine>,
    bundled: EngineConfig,
    restarts: Counter,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    match &engine.mode {
        Mode::External(targets) => {
            let targets = targets.clone();
            external::spawn_prober(engine, targets, shutdown)
        }
        Mode::Bundled { .. } => supervisor::spawn_supervisor(engine, bundled, restarts, shutdown),
    }
}
