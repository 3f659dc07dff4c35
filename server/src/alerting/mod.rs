//! Alerting on the engines the Prometheus world trusts, supervised like the metrics engine:
//! vmalert evaluates the rule files (the built-in templates as an Editor set them, and the
//! operator's own files in `<data-dir>/alerts/`) against the metrics engine, keeping its
//! `for:` clocks there (`ALERTS_FOR_STATE`), and sends firing alerts to Prometheus
//! Alertmanager, which groups, silences and notifies the contact points an Admin set. Both
//! run on loopback with their state under `<data-dir>`; `--alertmanager-url` sends alerts
//! to an existing Alertmanager instead of the bundled one.

mod bridge;
mod children;
mod client;
mod custom;
mod receivers;
mod settings;
mod slot;
mod templates;

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use perch_upstream::{Client, Credentials};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{Mutex, watch};

use crate::engine::Engine;
use crate::process::{self, supervise};
use slot::Slot;

pub use custom::CustomFile;
pub use receivers::{ContactPoints, KINDS, Receiver, Route, Routing};
pub use templates::{Override, RuleSetting, builtin, duration_seconds};

/// Alerts firing now, as last read from vmalert: the navigation's badge.
static FIRING: AtomicUsize = AtomicUsize::new(0);
/// How often the firing alerts are counted for the badges.
const COUNT_EVERY: Duration = Duration::from_secs(5);

/// Alerts firing now (every page's navigation shows it).
pub fn firing_now() -> usize {
    FIRING.load(Ordering::Relaxed)
}

/// How often `<data-dir>/alerts/` is looked at for changed files.
const CUSTOM_EVERY: Duration = Duration::from_secs(10);
const ENV_PREFIX: &str = "PERCH_VMALERT_";
/// The user of vmalert's and the bundled Alertmanager's HTTP credentials.
const CHILD_USER: &str = "perch";

/// How alerting runs (from the flags).
#[derive(Debug, Clone)]
pub struct AlertingConfig {
    pub vmalert_bin: String,
    pub alertmanager_bin: String,
    /// An existing Alertmanager to use instead of the bundled one.
    pub alertmanager_url: Option<url::Url>,
    pub data_dir: PathBuf,
    /// vmalert's evaluation interval for the built-in rules and by default.
    pub evaluation_interval: Duration,
    /// Alertmanager's waits before the first notification of a group, between a group's
    /// notifications, and before repeating one.
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    /// Perch's own address, for the links in notifications.
    pub external_url: String,
}

/// Why an alerting request got no answer, or was refused.
#[derive(Debug, thiserror::Error)]
pub enum AlertingError {
    #[error("{0} is not ready: {1}")]
    Unavailable(&'static str, String),
    #[error("{0} did not answer: {1}")]
    Failed(&'static str, String),
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    NotFound(String),
    #[error("cannot save the alerting configuration: {0}")]
    Io(String),
}

/// What an Editor and an Admin have set, and the custom files as last checked.
#[derive(Debug, Default)]
struct Settings {
    rules: BTreeMap<String, RuleSetting>,
    contacts: ContactPoints,
    custom: Vec<CustomFile>,
}

#[derive(Debug)]
pub struct Alerting {
    config: AlertingConfig,
    vmalert: Arc<Slot>,
    alertmanager: Arc<Slot>,
    vmalert_password: String,
    /// The bundled Alertmanager's password (its web configuration holds the bcrypt hash).
    alertmanager_password: String,
    client: Client,
    settings: Mutex<Settings>,
    /// Firing alerts by `node_name`, as last counted.
    by_node: std::sync::Mutex<HashMap<String, usize>>,
}

fn rules_path(dir: &Path) -> PathBuf {
    dir.join("alerting").join("rules.json")
}

fn contacts_path(dir: &Path) -> PathBuf {
    dir.join("alerting").join("receivers.json")
}

/// Writes a file readable by the owner only, whole or not at all.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn read_json<T: serde::de::DeserializeOwned + Default>(path: &Path) -> Result<T, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "{}: not valid ({e}); fix it, or move it away to start from the defaults",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn go_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

impl Alerting {
    /// Reads the saved settings and writes the files vmalert and Alertmanager start with.
    /// The error names the file at fault.
    pub fn new(config: AlertingConfig) -> Result<Arc<Self>, String> {
        let dir = &config.data_dir;
        for d in [
            dir.join("alerting").join("rules"),
            dir.join("alertmanager"),
            dir.join("alerts"),
        ] {
            std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let settings = Settings {
            rules: read_json(&rules_path(dir))?,
            contacts: read_json(&contacts_path(dir))?,
            custom: Vec::new(),
        };
        let vmalert_password = process::random_password();
        let vmalert_auth = Credentials::basic(CHILD_USER, &vmalert_password)
            .map_err(|e| format!("vmalert's credential: {e}"))?;
        let external = config
            .alertmanager_url
            .as_ref()
            .map(|url| url.as_str().trim_end_matches('/').to_owned());
        let alertmanager_password = process::random_password();
        let alertmanager_auth = match external {
            Some(_) => Credentials::none(),
            None => Credentials::basic(CHILD_USER, &alertmanager_password)
                .map_err(|e| format!("Alertmanager's credential: {e}"))?,
        };
        let alertmanager = Slot::new("alertmanager", alertmanager_auth, external);
        let me = Arc::new(Self {
            vmalert: Slot::new("vmalert", vmalert_auth, None),
            alertmanager,
            vmalert_password,
            alertmanager_password,
            client: Client::new(Duration::from_secs(5)),
            config,
            settings: Mutex::new(settings),
            by_node: std::sync::Mutex::new(HashMap::new()),
        });
        {
            let s = me.settings.try_lock().map_err(|e| e.to_string())?;
            me.write_builtin(&s.rules).map_err(|e| e.to_string())?;
            me.write_alertmanager_config(&s.contacts)
                .map_err(|e| e.to_string())?;
        }
        Ok(me)
    }

    fn rules_dir(&self) -> PathBuf {
        self.config.data_dir.join("alerting").join("rules")
    }

    fn builtin_path(&self) -> PathBuf {
        self.rules_dir().join("builtin.yml")
    }

    fn alertmanager_dir(&self) -> PathBuf {
        self.config.data_dir.join("alertmanager")
    }

    fn alertmanager_config_path(&self) -> PathBuf {
        self.alertmanager_dir().join("alertmanager.yml")
    }

    fn timing(&self) -> receivers::Timing {
        receivers::Timing {
            group_wait: go_duration(self.config.group_wait),
            group_interval: go_duration(self.config.group_interval),
            repeat_interval: go_duration(self.config.repeat_interval),
        }
    }

    fn write_builtin(&self, rules: &BTreeMap<String, RuleSetting>) -> std::io::Result<()> {
        let text = templates::render(rules, &go_duration(self.config.evaluation_interval));
        write_private(&self.builtin_path(), text.as_bytes())
    }

    fn write_alertmanager_config(&self, contacts: &ContactPoints) -> std::io::Result<()> {
        write_private(
            &self.alertmanager_config_path(),
            contacts.alertmanager_config(&self.timing()).as_bytes(),
        )
    }

    /// Starts what alerting needs until `shutdown` turns true: the engine bridge, vmalert,
    /// the bundled Alertmanager (unless an external one is used), and the watch on
    /// `<data-dir>/alerts/`.
    pub async fn spawn(
        self: &Arc<Self>,
        engine: Arc<Engine>,
        vmalert_restarts: Counter,
        alertmanager_restarts: Counter,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, String> {
        let bridge = bridge::start(engine.clone(), self.alertmanager.clone(), shutdown.clone())
            .await
            .map_err(|e| format!("alerting: cannot listen on loopback: {e}"))?;
        let mut tasks = Vec::new();
        if self.config.alertmanager_url.is_none() {
            tasks.push(supervise::spawn(
                self.alertmanager_spec(),
                alertmanager_restarts,
                shutdown.clone(),
            ));
        }
        tasks.push(supervise::spawn(
            self.vmalert_spec(&bridge, engine),
            vmalert_restarts,
            shutdown.clone(),
        ));
        let me = self.clone();
        let mut stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                me.count_firing().await;
                tokio::select! {
                    _ = tokio::time::sleep(COUNT_EVERY) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        }));
        let me = self.clone();
        let mut stop = shutdown;
        tasks.push(tokio::spawn(async move {
            loop {
                me.sync_custom().await;
                tokio::select! {
                    _ = tokio::time::sleep(CUSTOM_EVERY) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        }));
        Ok(tasks)
    }
    /// Where operators put their own rule files.
    pub fn custom_dir(&self) -> PathBuf {
        self.config.data_dir.join("alerts")
    }

    /// The external Alertmanager's URL, when one is used instead of the bundled one.
    pub fn external_alertmanager(&self) -> Option<String> {
        self.config.alertmanager_url.as_ref().map(|u| u.to_string())
    }

    /// Readiness lines: (name, ready, `ok` / `starting` / `unavailable: why`).
    pub fn readiness(&self) -> [(&'static str, bool, String); 2] {
        let (a, al) = self.vmalert.readiness();
        let (b, bl) = self.alertmanager.readiness();
        [("vmalert", a, al), ("alertmanager", b, bl)]
    }
}
