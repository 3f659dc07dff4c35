//! Runs `victoria-metrics` on 127.0.0.1 (a free port, never published), waits until it
//! answers `/health`, restarts it with backoff when it dies (logged and counted), and stops
//! it with SIGTERM at shutdown. Its absence or failure never takes the appliance down: the
//! state says why, and readiness reports it.

use std::path::{Path, PathBuf};
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

const READY_WITHIN: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const STOP_WITHIN: Duration = Duration::from_secs(10);

fn find_binary(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file())
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

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
    let mut bytes = [0u8; 24];
    // aws-lc's generator fails only if the operating system gives no randomness at all.
    aws_lc_rs::rand::fill(&mut bytes).expect("the operating system's random generator failed");
    let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
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

/// Stops engines left running on our data directory by an earlier perch-server that was
/// killed without a chance to stop them (SIGKILL does not reach children). Only one
/// perch-server can hold this data directory (the store's lock), so any engine on it is
/// such an orphan, and it would hold the engine's own lock.
async fn reap_orphans(data_dir: &Path) {
    let wanted = format!("-storageDataPath={}", data_dir.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if !cmdline
            .split(|b| *b == 0)
            .any(|arg| arg == wanted.as_bytes())
        {
            continue;
        }
        tracing::warn!(
            pid,
            "stopping a metrics engine left running by an earlier perch-server"
        );
        let target = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + STOP_WITHIN;
        while entry.path().exists() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if entry.path().exists() {
            let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// SIGTERM, then SIGKILL if it has not stopped in time.
async fn stop(mut child: Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    if tokio::time::timeout(STOP_WITHIN, child.wait())
        .await
        .is_err()
    {
        tracing::warn!("victoria-metrics did not stop within 10 s; killing it");
        let _ = child.kill().await;
    }
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
        reap_orphans(&config.data_dir).await;
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
                        stop(child).await;
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
                        stop(child).await;
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
