//! The metrics engine: VictoriaMetrics, supervised as a child process on loopback (as PMM
//! bundles it), and the query path in front of it. Storage and PromQL are not written here.

mod query;
mod supervisor;
mod write;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub use query::{QueryLimiter, forward_query};
pub use supervisor::spawn_supervisor;
pub use write::{WRITE_BODY_LIMIT, is_write_path, remote_write};

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
    /// Not ready: the readiness line says why.
    Unavailable(String),
    Timeout(Duration),
    NoAnswer,
    /// The request could not be built (a target that is not a valid URI).
    BadRequest,
}

/// The engine as the request handlers see it.
#[derive(Debug)]
pub struct Engine {
    state: Mutex<(EngineState, Option<String>)>,
    client: Client<HttpConnector, Full<Bytes>>,
    pub query_timeout: Duration,
}

impl Engine {
    pub fn new(query_timeout: Duration) -> Arc<Self> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        Arc::new(Self {
            state: Mutex::new((EngineState::Starting, None)),
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
            query_timeout,
        })
    }

    fn set(&self, state: EngineState, base: Option<String>) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = (state, base);
    }

    /// Sends a request built against the engine's base URL, if the engine is ready, within
    /// the query timeout. The one way the query and write paths reach the engine.
    pub async fn send(
        &self,
        build: impl FnOnce(&str) -> Result<http::Request<Full<Bytes>>, http::Error>,
    ) -> Result<http::Response<hyper::body::Incoming>, EngineError> {
        let base = {
            let guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            match &guard.0 {
                EngineState::Ready => guard.1.clone(),
                _ => None,
            }
        };
        let Some(base) = base else {
            return Err(EngineError::Unavailable(self.readiness().1.into_owned()));
        };
        let request = build(&base).map_err(|_| EngineError::BadRequest)?;
        match tokio::time::timeout(self.query_timeout, self.client.request(request)).await {
            Err(_) => Err(EngineError::Timeout(self.query_timeout)),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "metrics engine request failed");
                Err(EngineError::NoAnswer)
            }
            Ok(Ok(resp)) => Ok(resp),
        }
    }

    /// The readiness line for `/v1/readyz`: `ok`, `starting`, or `unavailable: <why>`.
    pub fn readiness(&self) -> (bool, std::borrow::Cow<'static, str>) {
        let guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match &guard.0 {
            EngineState::Ready => (true, "ok".into()),
            EngineState::Starting => (false, "starting".into()),
            EngineState::Unavailable(why) => (false, format!("unavailable: {why}").into()),
        }
    }
}
