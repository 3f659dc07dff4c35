//! Runs one child on 127.0.0.1 (the metrics engine, vmalert, Alertmanager): waits until it
//! answers its health path, restarts it with backoff (1 s doubling to 30 s; 1 s again after
//! a run of a minute or more) when it dies, logged and counted, and stops it at shutdown. Its
//! absence or failure never takes the appliance down: its owner hears each state, and
//! readiness reports it.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderValue;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use super::{find_binary, free_port, reap_orphans, stop};

const READY_WITHIN: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What a child is doing, as its owner hears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildState {
    Starting,
    /// Answering at this base URL.
    Ready(String),
    Unavailable(String),
}

/// How to run one child.
pub struct ChildSpec {
    /// Its name in logs (`victoria-metrics`, `vmalert`, `alertmanager`).
    pub name: &'static str,
    /// What it is, for log messages ("metrics engine", "alerting component").
    pub what: &'static str,
    /// The binary's name on PATH, or its path.
    pub binary: String,
    /// The Debian package that ships it, and the flag that names another binary, for the
    /// reason given when it is missing.
    pub package: &'static str,
    pub flag: &'static str,
    /// An argument unique to this data directory, by which an orphan is recognised.
    pub marker: String,
    /// The path that answers 2xx when it is up.
    pub health_path: &'static str,
    /// The command for a start on this port, and the `Authorization` its health check sends
    /// (a credential may be made anew for each start).
    #[allow(clippy::type_complexity)]
    pub start:
        Box<dyn Fn(&Path, u16) -> std::io::Result<(Command, Option<HeaderValue>)> + Send + Sync>,
    /// Each start waits until this holds (vmalert waits for the metrics engine, so that it
    /// can restore its alerts' state from it as it starts).
    pub start_when: Box<dyn Fn() -> bool + Send + Sync>,
    /// Told each state the child goes through.
    pub report: Box<dyn Fn(ChildState) + Send + Sync>,
}

async fn healthy(url: &str, auth: Option<&HeaderValue>) -> bool {
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

/// Starts the command with its stderr going to the log, line by line.
fn spawn_child(mut command: Command, name: &'static str) -> std::io::Result<Child> {
    let mut child = command
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
    spec: &ChildSpec,
    backoff: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Duration> {
    let (name, what) = (spec.name, spec.what);
    let unavailable = |why: String| {
        tracing::error!(child = name, reason = %why, "{what} unavailable");
        (spec.report)(ChildState::Unavailable(why));
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
    let started = (spec.start)(&binary, port)
        .and_then(|(command, auth)| Ok((spawn_child(command, name)?, auth)));
    let (mut child, auth) = match started {
        Ok(c) => c,
        Err(e) => {
            unavailable(format!("{} cannot start: {e}", binary.display()));
            return Some(backoff);
        }
    };
    (spec.report)(ChildState::Starting);
    let since = Instant::now();
    let health = format!("{base}{}", spec.health_path);
    while !healthy(&health, auth.as_ref()).await {
        if let Ok(Some(status)) = child.try_wait() {
            unavailable(format!("exited during start-up ({status})"));
            return Some(backoff);
        }
        if since.elapsed() > READY_WITHIN {
            stop(child, name).await;
            unavailable("not ready within 60 s".into());
            return Some(backoff);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::info!(child = name, listen = %base, ready_ms = since.elapsed().as_millis() as u64, "{what} ready");
    (spec.report)(ChildState::Ready(base));
    tokio::select! {
        status = child.wait() => {
            let why = match status {
                Ok(s) => format!("exited ({s})"),
                Err(e) => format!("lost ({e})"),
            };
            tracing::error!(child = name, reason = %why, "{what} stopped; restarting");
            (spec.report)(ChildState::Unavailable(why));
            if since.elapsed() > Duration::from_secs(60) {
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

/// Supervises one child until `shutdown` turns true, counting each restart in `restarts`.
pub fn spawn(
    spec: ChildSpec,
    restarts: Counter,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        reap_orphans(&spec.marker, spec.name).await;
        let mut backoff = Duration::from_secs(1);
        loop {
            let Some(wait) = run_once(&spec, backoff, &mut shutdown).await else {
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
