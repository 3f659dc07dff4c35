//! Runs one alerting child (vmalert or Alertmanager) on 127.0.0.1: waits until it answers
//! its health path, restarts it with backoff when it dies (logged and counted), and stops it
//! at shutdown. Its absence never takes the appliance down: the state says why, and
//! readiness reports it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::process::{self, find_binary, free_port, stop};

const READY_WITHIN: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What a child is doing now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildState {
    Starting,
    /// Answering at this base URL.
    Ready(String),
    Unavailable(String),
    /// Not run here (an external Alertmanager is used instead).
    External(String),
}

/// A child's state, shared with the handlers.
#[derive(Debug)]
pub struct Slot {
    pub name: &'static str,
    state: Mutex<ChildState>,
    /// Its HTTP credential, if it takes one.
    pub auth: perch_upstream::Credentials,
}

impl Slot {
    pub fn new(name: &'static str, auth: perch_upstream::Credentials) -> Arc<Self> {
        Arc::new(Self {
            name,
            state: Mutex::new(ChildState::Starting),
            auth,
        })
    }

    pub fn set(&self, state: ChildState) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = state;
    }

    pub fn state(&self) -> ChildState {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The base URL while it answers.
    pub fn base(&self) -> Option<String> {
        match self.state() {
            ChildState::Ready(base) | ChildState::External(base) => Some(base),
            _ => None,
        }
    }

    /// `ok`, `starting` or `unavailable: <why>`, for readiness.
    pub fn readiness(&self) -> (bool, String) {
        match self.state() {
            ChildState::Ready(_) | ChildState::External(_) => (true, "ok".into()),
            ChildState::Starting => (false, "starting".into()),
            ChildState::Unavailable(why) => (false, format!("unavailable: {why}")),
        }
    }
}

/// How to run one child.
pub struct ChildSpec {
    /// The binary's name on PATH, or its path.
    pub binary: String,
    /// The Debian package that ships it, for the error when it is missing.
    pub package: &'static str,
    /// The flag that names another binary.
    pub flag: &'static str,
    /// An argument unique to this data directory, by which an orphan is recognised.
    pub marker: String,
    /// The path that answers 200 when it is up.
    pub health_path: &'static str,
    /// The command for a start on this port.
    pub command: Box<dyn Fn(&std::path::Path, u16) -> Command + Send + Sync>,
    /// Each start waits until this holds (vmalert waits for the metrics engine, so that it
    /// can restore its alerts' state from it as it starts).
    pub start_when: Box<dyn Fn() -> bool + Send + Sync>,
}

pub async fn healthy(url: &str, auth: Option<&http::HeaderValue>) -> bool {
    let client: Client<_, Empty<Bytes>> =
        Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let mut request = http::Request::get(url);
    if let Some(value) = auth {
        request = request.header(http::header::AUTHORIZATION, value.clone());
    }
    let Ok(request) = request.body(Empty::new()) else {
        return false;
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), client.request(request)).await,
        Ok(Ok(resp)) if resp.status().is_success()
    )
}

fn spawn_child(
    spec: &ChildSpec,
    binary: &std::path::Path,
    port: u16,
    name: &'static str,
) -> std::io::Result<Child> {
    let mut child = (spec.command)(binary, port)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::warn!(child = name, "{line}");
            }
        });
    }
    Ok(child)
}

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// One run: start, wait for health, wait for exit or shutdown. `None` at shutdown, else how
/// long to wait before the next start.
async fn run_once(
    slot: &Slot,
    spec: &ChildSpec,
    backoff: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Duration> {
    let name = slot.name;
    let unavailable = |why: String| {
        tracing::error!(child = name, reason = %why, "alerting component unavailable");
        slot.set(ChildState::Unavailable(why));
    };
    let Some(binary) = find_binary(&spec.binary) else {
        unavailable(format!(
            "{} not found (install Debian's {}, or set {})",
            spec.binary, spec.package, spec.flag
        ));
        return Some(MAX_BACKOFF);
    };
    while !(spec.start_when)() {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            () = stopped(shutdown) => return None,
        }
    }
    let port = match free_port() {
        Ok(p) => p,
        Err(e) => {
            unavailable(format!("no free port: {e}"));
            return Some(backoff);
        }
    };
    let base = format!("http://127.0.0.1:{port}");
    let mut child = match spawn_child(spec, &binary, port, name) {
        Ok(c) => c,
        Err(e) => {
            unavailable(format!("{} cannot start: {e}", binary.display()));
            return Some(backoff);
        }
    };
    slot.set(ChildState::Starting);
    let started = Instant::now();
    let health = format!("{base}{}", spec.health_path);
    while !healthy(&health, slot.auth.header()).await {
        if let Ok(Some(status)) = child.try_wait() {
            unavailable(format!("exited during start-up ({status})"));
            return Some(backoff);
        }
        if started.elapsed() > READY_WITHIN {
            stop(child, name).await;
            unavailable("not ready within 60 s".into());
            return Some(backoff);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::info!(child = name, listen = %base, ready_ms = started.elapsed().as_millis() as u64, "alerting component ready");
    slot.set(ChildState::Ready(base));
    tokio::select! {
        status = child.wait() => {
            let why = match status {
                Ok(s) => format!("exited ({s})"),
                Err(e) => format!("lost ({e})"),
            };
            tracing::error!(child = name, reason = %why, "alerting component stopped; restarting");
            slot.set(ChildState::Unavailable(why));
            if started.elapsed() > Duration::from_secs(60) {
                return Some(Duration::from_secs(1));
            }
            Some(backoff)
        }
        () = stopped(shutdown) => {
            stop(child, name).await;
            None
        }
    }
}

/// Supervises one child until `shutdown` turns true.
pub fn spawn(
    slot: Arc<Slot>,
    spec: ChildSpec,
    restarts: Counter,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        process::reap_orphans(&spec.marker, slot.name).await;
        let mut backoff = Duration::from_secs(1);
        loop {
            let Some(wait) = run_once(&slot, &spec, backoff, &mut shutdown).await else {
                return;
            };
            restarts.inc();
            backoff = (wait * 2).min(MAX_BACKOFF);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                () = stopped(&mut shutdown) => return,
            }
        }
    })
}
