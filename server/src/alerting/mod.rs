//! Alerting on the engines the Prometheus world trusts, supervised like the metrics engine:
//! vmalert evaluates the rule files (the built-in templates as an Editor set them, and the
//! operator's own files in `<data-dir>/alerts/`) against the metrics engine, keeping its
//! `for:` clocks there (`ALERTS_FOR_STATE`), and sends firing alerts to Prometheus
//! Alertmanager, which groups, silences and notifies the contact points an Admin set. Both
//! run on loopback with their state under `<data-dir>`; `--alertmanager-url` sends alerts
//! to an existing Alertmanager instead of the bundled one.

mod bridge;
mod custom;
mod receivers;
mod slot;
mod templates;

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use perch_upstream::{self as upstream, Client, Credentials, Upstream};
use prometheus_client::metrics::counter::Counter;
use serde_json::Value;
use tokio::process::Command;
use tokio::sync::{Mutex, watch};

use crate::engine::Engine;
use crate::process::{self, supervise};
use slot::Slot;

pub use custom::CustomFile;
pub use receivers::{ContactPoints, KINDS, Receiver, ReceiverView, Route, Routing, TEST_LABEL};
pub use templates::{Override, RuleSetting, Template, builtin, duration_seconds};

/// Alerts firing now, as last read from vmalert: the navigation's badge.
static FIRING: AtomicUsize = AtomicUsize::new(0);
/// How often the firing alerts are counted for the badges.
const COUNT_EVERY: Duration = Duration::from_secs(5);

/// Alerts firing now (every page's navigation shows it).
pub fn firing_now() -> usize {
    FIRING.load(Ordering::Relaxed)
}

/// The longest answer read from vmalert or Alertmanager.
const ANSWER_LIMIT: usize = 16 * 1024 * 1024;
/// How often `<data-dir>/alerts/` is looked at for changed files.
const CUSTOM_EVERY: Duration = Duration::from_secs(10);
const ENV_PREFIX: &str = "PERCH_VMALERT_";

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
        let vmalert_auth = Credentials::basic("perch", &vmalert_password)
            .map_err(|e| format!("vmalert's credential: {e}"))?;
        let external = config
            .alertmanager_url
            .as_ref()
            .map(|url| url.as_str().trim_end_matches('/').to_owned());
        let alertmanager = Slot::new("alertmanager", Credentials::none(), external);
        let me = Arc::new(Self {
            vmalert: Slot::new("vmalert", vmalert_auth, None),
            alertmanager,
            vmalert_password,
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

    fn alertmanager_spec(&self) -> supervise::ChildSpec {
        let config = self.alertmanager_config_path();
        let storage = self.alertmanager_dir();
        let marker = format!("--storage.path={}", storage.display());
        let slot = self.alertmanager.clone();
        supervise::ChildSpec {
            name: "alertmanager",
            what: "alerting component",
            binary: self.config.alertmanager_bin.clone(),
            package: "prometheus-alertmanager",
            flag: "--alertmanager-bin",
            marker: marker.clone(),
            health_path: "/-/ready",
            start: Box::new(move |binary, port| {
                let mut c = Command::new(binary);
                c.arg(format!("--config.file={}", config.display()))
                    .arg(&marker)
                    .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                    // No gossip port: one Alertmanager, on loopback only.
                    .arg("--cluster.listen-address=")
                    .arg("--log.level=warn");
                Ok((c, None))
            }),
            start_when: Box::new(|| true),
            report: Box::new(move |state| slot.set(state)),
        }
    }

    fn vmalert_spec(&self, bridge: &bridge::Bridge, engine: Arc<Engine>) -> supervise::ChildSpec {
        let rules = self.rules_dir();
        let marker = format!("-rule={}/*.yml", rules.display());
        let env: Vec<(String, String)> = [
            ("httpAuth_username", "perch"),
            ("httpAuth_password", &self.vmalert_password),
            ("datasource_basicAuth_username", bridge.user),
            ("datasource_basicAuth_password", &bridge.password),
            ("remoteRead_basicAuth_username", bridge.user),
            ("remoteRead_basicAuth_password", &bridge.password),
            ("remoteWrite_basicAuth_username", bridge.user),
            ("remoteWrite_basicAuth_password", &bridge.password),
        ]
        .into_iter()
        .map(|(k, v)| (format!("{ENV_PREFIX}{k}"), v.to_owned()))
        .collect();
        let (notifier, notifier_env) = match &self.config.alertmanager_url {
            Some(url) => (url.as_str().trim_end_matches('/').to_owned(), Vec::new()),
            None => (
                format!("{}/alertmanager", bridge.base),
                vec![
                    (
                        format!("{ENV_PREFIX}notifier_basicAuth_username"),
                        bridge.user.to_owned(),
                    ),
                    (
                        format!("{ENV_PREFIX}notifier_basicAuth_password"),
                        bridge.password.clone(),
                    ),
                ],
            ),
        };
        let base = bridge.base.clone();
        let interval = go_duration(self.config.evaluation_interval);
        let external = self.config.external_url.clone();
        let slot = self.vmalert.clone();
        let auth = slot.auth.header().cloned();
        supervise::ChildSpec {
            name: "vmalert",
            what: "alerting component",
            binary: self.config.vmalert_bin.clone(),
            package: "victoria-metrics",
            flag: "--vmalert-bin",
            marker: marker.clone(),
            health_path: "/health",
            start: Box::new(move |binary, port| {
                let mut c = Command::new(binary);
                c.arg("-envflag.enable")
                    .arg(format!("-envflag.prefix={ENV_PREFIX}"))
                    .envs(env.iter().cloned())
                    .envs(notifier_env.iter().cloned())
                    .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
                    .arg(&marker)
                    .arg(format!("-rule={}/*.yaml", rules.display()))
                    .arg(format!("-datasource.url={base}"))
                    .arg(format!("-remoteRead.url={base}"))
                    .arg(format!("-remoteWrite.url={base}"))
                    .arg(format!("-notifier.url={notifier}"))
                    .arg(format!("-evaluationInterval={interval}"))
                    .arg(format!("-external.url={external}"))
                    .arg("-external.alert.source=alerts")
                    .arg("-loggerLevel=WARN");
                Ok((c, auth.clone()))
            }),
            start_when: Box::new(move || engine.readiness().0),
            report: Box::new(move |state| slot.set(state)),
        }
    }

    /// Counts the firing alerts, in all and by node, for the badges.
    async fn count_firing(&self) {
        let Ok(v) = self.vmalert_alerts().await else {
            return;
        };
        let mut by_node = HashMap::new();
        let mut all = 0;
        for a in v["data"]["alerts"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if a["state"] != "firing" {
                continue;
            }
            all += 1;
            if let Some(node) = a["labels"]["node_name"].as_str() {
                *by_node.entry(node.to_owned()).or_insert(0) += 1;
            }
        }
        FIRING.store(all, Ordering::Relaxed);
        *self.by_node.lock().unwrap_or_else(PoisonError::into_inner) = by_node;
    }

    /// Alerts firing on the node named `node`, as last counted.
    pub fn firing_on(&self, node: &str) -> usize {
        self.by_node
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(node)
            .copied()
            .unwrap_or(0)
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

    fn upstream(&self, slot: &Slot) -> Result<Upstream, AlertingError> {
        let base = slot
            .base()
            .ok_or_else(|| AlertingError::Unavailable(slot.name, slot.readiness().1))?;
        let url = upstream::parse_base_url(&base)
            .map_err(|e| AlertingError::Failed(slot.name, e.to_string()))?;
        Ok(Upstream::new(
            slot.name,
            url,
            slot.auth.clone(),
            Duration::from_secs(10),
            self.client.clone(),
        ))
    }

    async fn call(
        &self,
        slot: &Slot,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Bytes), AlertingError> {
        let up = self.upstream(slot)?;
        let uri = up
            .uri(path)
            .map_err(|e| AlertingError::Failed(slot.name, e.to_string()))?;
        let mut req = http::Request::builder().method(method).uri(uri);
        let body = match body {
            Some(v) => {
                req = req.header(http::header::CONTENT_TYPE, "application/json");
                upstream::full(serde_json::to_vec(&v).unwrap_or_default())
            }
            None => upstream::full(Bytes::new()),
        };
        let req = req
            .body(body)
            .map_err(|e| AlertingError::Failed(slot.name, e.to_string()))?;
        let resp = upstream::send(&up, req)
            .await
            .map_err(|e| AlertingError::Failed(slot.name, e.to_string()))?;
        let status = resp.status();
        let bytes = upstream::read_body(resp.into_body(), ANSWER_LIMIT)
            .await
            .map_err(|_| {
                AlertingError::Failed(slot.name, "its answer was cut or too long".into())
            })?;
        Ok((status, bytes))
    }

    async fn call_json(
        &self,
        slot: &Slot,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, AlertingError> {
        let (status, bytes) = self.call(slot, method, path, body).await?;
        if !status.is_success() {
            let text = excerpt(&bytes);
            return Err(if status == StatusCode::BAD_REQUEST {
                AlertingError::BadInput(format!("{} refused it: {text}", slot.name))
            } else if status == StatusCode::NOT_FOUND {
                AlertingError::NotFound(format!("{} has no such thing: {text}", slot.name))
            } else {
                AlertingError::Failed(slot.name, format!("{status}: {text}"))
            });
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| AlertingError::Failed(slot.name, format!("answered with bad JSON: {e}")))
    }

    /// vmalert's alerts (`/api/v1/alerts`): firing and pending.
    pub async fn vmalert_alerts(&self) -> Result<Value, AlertingError> {
        self.call_json(&self.vmalert, Method::GET, "/api/v1/alerts", None)
            .await
    }

    /// vmalert's rule groups with each rule's state (`/api/v1/rules`).
    pub async fn vmalert_rules(&self) -> Result<Value, AlertingError> {
        self.call_json(&self.vmalert, Method::GET, "/api/v1/rules", None)
            .await
    }

    /// Alertmanager's alerts, with whether each is silenced (`/api/v2/alerts`).
    pub async fn alertmanager_alerts(&self) -> Result<Value, AlertingError> {
        self.call_json(&self.alertmanager, Method::GET, "/api/v2/alerts", None)
            .await
    }

    pub async fn silences(&self) -> Result<Value, AlertingError> {
        self.call_json(&self.alertmanager, Method::GET, "/api/v2/silences", None)
            .await
    }

    /// Creates a silence (Alertmanager's `postableSilence`); its id.
    pub async fn create_silence(&self, silence: Value) -> Result<String, AlertingError> {
        let v = self
            .call_json(
                &self.alertmanager,
                Method::POST,
                "/api/v2/silences",
                Some(silence),
            )
            .await?;
        Ok(v.get("silenceID")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned())
    }

    pub async fn expire_silence(&self, id: &str) -> Result<(), AlertingError> {
        if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        {
            return Err(AlertingError::BadInput(format!(
                "{id:?} is not a silence id"
            )));
        }
        self.call_json(
            &self.alertmanager,
            Method::DELETE,
            &format!("/api/v2/silence/{id}"),
            None,
        )
        .await
        .map(|_| ())
    }

    /// Sends a test notification through Alertmanager to the contact point `name` alone.
    pub async fn test_receiver(&self, name: &str, by: &str) -> Result<(), AlertingError> {
        if !self
            .settings
            .lock()
            .await
            .contacts
            .receivers
            .iter()
            .any(|r| r.name == name)
        {
            return Err(AlertingError::NotFound(format!(
                "no contact point {name:?}"
            )));
        }
        let now = jiff::Timestamp::now();
        let ends = now + jiff::SignedDuration::from_secs(300);
        let alert = serde_json::json!([{
            "labels": {
                "alertname": "PerchTestNotification",
                "severity": "info",
                TEST_LABEL: name,
                "test_id": now.as_millisecond().to_string(),
            },
            "annotations": {
                "summary": format!("A test notification from Perch, sent by {by}"),
            },
            "startsAt": now.to_string(),
            "endsAt": ends.to_string(),
        }]);
        self.call_json(
            &self.alertmanager,
            Method::POST,
            "/api/v2/alerts",
            Some(alert),
        )
        .await
        .map(|_| ())
    }

    /// Asks vmalert to read its rule files again.
    async fn reload_vmalert(&self) {
        if let Err(e) = self
            .call(&self.vmalert, Method::GET, "/-/reload", None)
            .await
        {
            tracing::warn!(error = %e, "vmalert did not reload its rules; it will at its next start");
        }
    }

    /// The built-in templates with their settings.
    pub async fn rule_settings(&self) -> Vec<(&'static Template, RuleSetting)> {
        let s = self.settings.lock().await;
        builtin()
            .iter()
            .map(|t| (t, s.rules.get(t.id).cloned().unwrap_or_default()))
            .collect()
    }

    /// Sets one template's setting: checked, tried by vmalert's dry run, saved, in force.
    pub async fn set_rule(&self, id: &str, setting: RuleSetting) -> Result<(), AlertingError> {
        let template = builtin()
            .iter()
            .find(|t| t.id == id)
            .ok_or_else(|| AlertingError::NotFound(format!("no built-in rule {id:?}")))?;
        setting.check(template).map_err(AlertingError::BadInput)?;
        let mut s = self.settings.lock().await;
        let mut rules = s.rules.clone();
        rules.insert(id.to_owned(), setting);
        let text = templates::render(&rules, &go_duration(self.config.evaluation_interval));
        // vmalert's dry run refuses a file without groups (every rule turned off), which
        // vmalert itself runs with.
        if let Some(vmalert) = process::find_binary(&self.config.vmalert_bin)
            && text.contains("\n- name:")
        {
            let trial = self.rules_dir().join(".trial.yml.check");
            write_private(&trial, text.as_bytes()).map_err(|e| AlertingError::Io(e.to_string()))?;
            let checked = custom::validate(&vmalert, &trial).await;
            let _ = std::fs::remove_file(&trial);
            checked.map_err(AlertingError::BadInput)?;
        }
        write_private(
            &rules_path(&self.config.data_dir),
            &serde_json::to_vec_pretty(&rules).unwrap_or_default(),
        )
        .map_err(|e| AlertingError::Io(e.to_string()))?;
        write_private(&self.builtin_path(), text.as_bytes())
            .map_err(|e| AlertingError::Io(e.to_string()))?;
        s.rules = rules;
        drop(s);
        self.reload_vmalert().await;
        Ok(())
    }

    /// The custom rule files as last checked.
    pub async fn custom_files(&self) -> Vec<CustomFile> {
        self.settings.lock().await.custom.clone()
    }

    /// Checks `<data-dir>/alerts/` now, and reloads vmalert when the rule set changed.
    pub async fn sync_custom(&self) {
        let Some(vmalert) = process::find_binary(&self.config.vmalert_bin) else {
            return;
        };
        let known = self.settings.lock().await.custom.clone();
        let (files, changed) = custom::sync(
            &vmalert,
            &self.config.data_dir.join("alerts"),
            &self.rules_dir(),
            &known,
        )
        .await;
        self.settings.lock().await.custom = files;
        if changed {
            self.reload_vmalert().await;
        }
    }

    /// The contact points (secrets hidden) and the routing.
    pub async fn contact_points(&self) -> (Vec<ReceiverView>, Routing) {
        let s = self.settings.lock().await;
        (
            s.contacts.receivers.iter().map(Receiver::view).collect(),
            s.contacts.routing.clone(),
        )
    }

    /// Applies a change to the contact points: checked, written, and taken by Alertmanager
    /// (whose own check is the last word: when it refuses, the previous set stays).
    pub async fn change_contacts(
        &self,
        change: impl FnOnce(&mut ContactPoints) -> Result<(), AlertingError>,
    ) -> Result<(), AlertingError> {
        let mut s = self.settings.lock().await;
        let mut next = s.contacts.clone();
        change(&mut next)?;
        next.check().map_err(AlertingError::BadInput)?;
        // Only what the running Alertmanager accepted is kept: while it is down, nothing
        // changes (a configuration it would refuse at its next start would keep it down).
        let bundled = self.config.alertmanager_url.is_none();
        if bundled && self.alertmanager.base().is_none() {
            return Err(AlertingError::Unavailable(
                "alertmanager",
                self.alertmanager.readiness().1,
            ));
        }
        self.write_alertmanager_config(&next)
            .map_err(|e| AlertingError::Io(e.to_string()))?;
        if bundled {
            let reloaded = self
                .call(&self.alertmanager, Method::POST, "/-/reload", None)
                .await;
            let refused = match reloaded {
                Ok((status, _)) if status.is_success() => None,
                Ok((_, body)) => Some(AlertingError::BadInput(format!(
                    "Alertmanager refused the configuration: {}",
                    excerpt(&body)
                ))),
                Err(e) => Some(e),
            };
            if let Some(e) = refused {
                // The previous configuration back, in the file and in Alertmanager.
                let _ = self.write_alertmanager_config(&s.contacts);
                let _ = self
                    .call(&self.alertmanager, Method::POST, "/-/reload", None)
                    .await;
                return Err(e);
            }
        }
        write_private(
            &contacts_path(&self.config.data_dir),
            &serde_json::to_vec_pretty(&next).unwrap_or_default(),
        )
        .map_err(|e| AlertingError::Io(e.to_string()))?;
        s.contacts = next;
        Ok(())
    }

    /// A contact point as stored (with its secrets), for an edit that keeps them.
    pub async fn receiver(&self, name: &str) -> Option<Receiver> {
        self.settings
            .lock()
            .await
            .contacts
            .receivers
            .iter()
            .find(|r| r.name == name)
            .cloned()
    }
}

/// An answer body as text for an error, at most 500 characters.
fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .trim()
        .chars()
        .take(500)
        .collect()
}
