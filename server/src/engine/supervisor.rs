//! Runs `victoria-metrics` on 127.0.0.1 (a free port, never published) under the shared
//! supervisor (`process::supervise`: health, restarts with backoff, SIGTERM at shutdown),
//! with a credential made at each start. Its absence or failure never takes the appliance
//! down: the state says why, and readiness reports it.

use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::metrics::counter::Counter;
use tokio::process::Command;
use tokio::sync::watch;

use perch_upstream::Credentials;

use super::{Engine, EngineConfig, EngineState};
use crate::process;
use crate::process::supervise::{self, ChildSpec, ChildState};

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

fn command(binary: &std::path::Path, config: &EngineConfig, port: u16, password: &str) -> Command {
    let mut c = Command::new(binary);
    // Every request needs the credential: no other local process can write series
    // around the node stamping, nor delete any.
    c.arg("-envflag.enable")
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
        // A write the engine took but whose answer the client never heard is sent again,
        // with the same timestamps: one sample per series and millisecond is kept, so that
        // a sum over time (Query Analytics' counts) does not count it twice.
        .arg("-dedup.minScrapeInterval=1ms")
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
        .arg(format!("-storage.maxDailySeries={ENGINE_MAX_DAILY_SERIES}"));
    c
}

/// Supervises the engine until `shutdown` turns true.
pub fn spawn_supervisor(
    engine: Arc<Engine>,
    config: EngineConfig,
    restarts: Counter,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    // The credential of the current start, for the engine's targets once it is ready.
    let current: Arc<Mutex<Option<Credentials>>> = Arc::default();
    let marker = format!("-storageDataPath={}", config.data_dir.display());
    let binary = config.binary.clone();
    let starting = current.clone();
    let spec = ChildSpec {
        name: "victoria-metrics",
        what: "metrics engine",
        binary,
        package: "victoria-metrics",
        flag: "--victoria-metrics-bin",
        marker,
        health_path: "/health",
        start: Box::new(move |binary, port| {
            std::fs::create_dir_all(&config.data_dir)?;
            let (password, credentials) = new_credential();
            let auth = credentials.header().cloned();
            *starting.lock().unwrap_or_else(PoisonError::into_inner) = Some(credentials);
            Ok((command(binary, &config, port, &password), auth))
        }),
        start_when: Box::new(|| true),
        report: Box::new(move |state| match state {
            ChildState::Starting => engine.set(EngineState::Starting, None),
            ChildState::Ready(base) => {
                let credentials = current
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
                    .unwrap_or_else(Credentials::none);
                engine.set(EngineState::Ready, Some((base, credentials)));
            }
            ChildState::Unavailable(why) => engine.set(EngineState::Unavailable(why), None),
        }),
    };
    supervise::spawn(spec, restarts, shutdown)
}
