//! Runs `victoria-metrics` on 127.0.0.1 (a free port, never published), waits until it
//! answers `/health`, restarts it with backoff when it dies (logged and counted), and stops
//! it with SIGTERM at shutdown. Its absence or failure never takes the appliance down: the
//! state says why, and readiness reports it.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use perch_upstream::Credentials;

use super::{Engine, EngineConfig, EngineState};
use crate::process::{self, find_binary, free_port, reap_orphans, stop};

const READY_WITHIN: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Free space the engine leaves on the data directory's file system.
const ENGINE_MIN_FREE_BYTES: u64 = 256 * 1024 * 1024;

/// Unique series the engine takes in an hour and in a day, all nodes together.
const ENGINE_MAX_HOURLY_SERIES: u64 = 5_000_000;
const ENGINE_MAX_DAILY_SERIES: u64 = 20_000_000;

/// The user name in the engine's HTTP credential; the password is made at each start.
const ENGINE_USER: &str = "perch";
/// The engine reads its flags from environment variables with this prefix as well as from
/// its command line (`-envflag.enable`): its credential goes there, where other local users
/// cannot read it (`/proc/<pid>/environ` is the owner's alone; the command line is not).
const ENV_PREFIX: &str = "PERCH_ENGINE_";

/// A new random password for the engine's HTTP credential, and that credential.
fn new_credential() -> (String, Credentials) {
    let password = process::random_password();
    let credentials =
        Credentials::basic(ENGINE_USER, &password).expect("a hex password is printable ASCII");
    (password, credentials)
}

async fn healthy(base: &str, credentials: &Credentials) -> bool {
    let client: Client<_, Empty<Bytes>> =
        Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let mut request = http::Request::get(format!("{base}/health"));
    if let Some(value) = credentials.header() {
        request = request.header(http::header::AUTHORIZATION, value.clone());
    }
    let Ok(request) = request.body(Empty::new()) else {
        return false;
    };
    match tokio::time::timeout(Duration::from_secs(1), client.request(request)).await {
        Ok(Ok(resp)) if resp.status().is_success() => resp
            .into_body()
            .collect()
            .await
            .is_ok_and(|b| b.to_bytes().starts_with(b"OK")),
        _ => false,
    }
}

fn start(
    binary: &Path,
    config: &EngineConfig,
    port: u16,
    password: &str,
) -> std::io::Result<Child> {
    std::fs::create_dir_all(&config.data_dir)?;
    let mut child = Command::new(binary)
        // Every request needs the credential: no other local process can write series
        // around the node stamping, nor delete any.
        .arg("-envflag.enable")
        .arg(format!("-envflag.prefix={ENV_PREFIX}"))
        .env(format!("{ENV_PREFIX}httpAuth_username"), ENGINE_USER)
        .env(format!("{ENV_PREFIX}httpAuth_password"), password)
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg(format!("-storageDataPath={}", config.data_dir.display()))
        .arg(format!("-retentionPeriod={}", config.retention))
        .arg("-loggerLevel=WARN")
        // Samples are visible to queries 5 s after they arrive (VictoriaMetrics waits 30 s
        // by default, for scrapers that write late; agents push whole rounds at once).
        .arg("-search.latencyOffset=5s")
        // Perch accepts up to 64 labels a series and then stamps node_id and node_name; the
        // engine must keep them all (its default, 30, would drop the ones sorted last).
        .arg("-maxLabelsPerTimeseries=80")
        // The engine stops taking samples while less than this is free on the data
        // directory's file system, so that it never fills the disk that the user store
        // (sessions, the audit trail) needs too.
        .arg(format!(
            "-storage.minFreeDiskSpaceBytes={ENGINE_MIN_FREE_BYTES}"
        ))
        // Behind Perch's per-node limit of new series, the engine's own limits for all
        // nodes together: series past them are logged and dropped by the engine.
        .arg(format!(
            "-storage.maxHourlySeries={ENGINE_MAX_HOURLY_SERIES}"
        ))
        .arg(format!("-storage.maxDailySeries={ENGINE_MAX_DAILY_SERIES}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::warn!(engine = "victoria-metrics", "{line}");
            }
        });
    }
    Ok(child)
}

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Supervises the engine until `shutdown` turns true.
pub fn spawn_supervisor(
    engine: Arc<Engine>,
    config: EngineConfig,
    restarts: Counter,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        reap_orphans(
            &format!("-storageDataPath={}", config.data_dir.display()),
            "victoria-metrics",
        )
        .await;
        let mut backoff = Duration::from_secs(1);
        loop {
            let waited = async {
                let Some(binary) = find_binary(&config.binary) else {
                    let why = format!(
                        "{} not found (install Debian's victoria-metrics, or set --victoria-metrics-bin)",
                        config.binary
                    );
                    tracing::error!(reason = %why, "metrics engine unavailable");
                    engine.set(EngineState::Unavailable(why), None);
                    return Some(MAX_BACKOFF);
                };
                let port = match free_port() {
                    Ok(p) => p,
                    Err(e) => {
                        engine.set(EngineState::Unavailable(format!("no free port: {e}")), None);
                        return Some(backoff);
                    }
                };
                let base = format!("http://127.0.0.1:{port}");
                let (password, credentials) = new_credential();
                let mut child = match start(&binary, &config, port, &password) {
                    Ok(c) => c,
                    Err(e) => {
                        let why = format!("{} cannot start: {e}", binary.display());
                        tracing::error!(reason = %why, "metrics engine unavailable");
                        engine.set(EngineState::Unavailable(why), None);
                        return Some(backoff);
                    }
                };
                engine.set(EngineState::Starting, None);
                let started = Instant::now();
                loop {
                    if healthy(&base, &credentials).await {
                        break;
                    }
                    if let Ok(Some(status)) = child.try_wait() {
                        let why = format!("exited during start-up ({status})");
                        tracing::error!(reason = %why, "metrics engine unavailable");
                        engine.set(EngineState::Unavailable(why), None);
                        return Some(backoff);
                    }
                    if started.elapsed() > READY_WITHIN {
                        stop(child, "victoria-metrics").await;
                        engine.set(EngineState::Unavailable("not ready within 60 s".into()), None);
                        return Some(backoff);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                tracing::info!(listen = %base, ready_ms = started.elapsed().as_millis() as u64, "metrics engine ready");
                engine.set(EngineState::Ready, Some((base, credentials)));
                tokio::select! {
                    status = child.wait() => {
                        let why = match status {
                            Ok(s) => format!("exited ({s})"),
                            Err(e) => format!("lost ({e})"),
                        };
                        tracing::error!(reason = %why, "metrics engine stopped; restarting");
                        engine.set(EngineState::Unavailable(why), None);
                        if started.elapsed() > Duration::from_secs(60) {
                            return Some(Duration::from_secs(1));
                        }
                        Some(backoff)
                    }
                    () = stopped(&mut shutdown) => {
                        stop(child, "victoria-metrics").await;
                        None
                    }
                }
            }
            .await;
            let Some(wait) = waited else { return };
            restarts.inc();
            backoff = (wait * 2).min(MAX_BACKOFF);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                () = stopped(&mut shutdown) => return,
            }
        }
    })
}
