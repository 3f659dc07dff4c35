//! How vmalert and the bundled Alertmanager are run: their command lines, credentials and
//! health paths, for the shared supervisor.

use std::sync::Arc;

use tokio::process::Command;

use super::{Alerting, CHILD_USER, ENV_PREFIX, bridge, go_duration, write_private};
use crate::engine::Engine;
use crate::process::supervise;

/// The bcrypt hash of Alertmanager's password, as its web configuration takes it. The
/// password is random (192 bits), so the lowest cost is enough: each request Alertmanager
/// checks costs about a millisecond.
fn bcrypt_hash(password: &str) -> std::io::Result<String> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| std::io::Error::other("no randomness"))?;
    bcrypt::hash_with_salt(password, 4, salt)
        .map(|h| h.to_string())
        .map_err(|e| std::io::Error::other(format!("bcrypt: {e:?}")))
}

impl Alerting {
    pub(super) fn alertmanager_spec(&self) -> supervise::ChildSpec {
        let config = self.alertmanager_config_path();
        let storage = self.alertmanager_dir();
        let marker = format!("--storage.path={}", storage.display());
        let slot = self.alertmanager.clone();
        let web = self.alertmanager_dir().join("web.yml");
        let password = self.alertmanager_password.clone();
        let auth = slot.auth.header().cloned();
        supervise::ChildSpec {
            name: "alertmanager",
            what: "alerting component",
            binary: self.config.alertmanager_bin.clone(),
            package: "prometheus-alertmanager",
            flag: "--alertmanager-bin",
            marker: marker.clone(),
            health_path: "/-/ready",
            start: Box::new(move |binary, port| {
                // Every request needs Perch's credential (made when Perch starts): no other
                // local process can make silences or read the alerts.
                let hash = bcrypt_hash(&password)?;
                let web_config = format!("basic_auth_users:\n  {CHILD_USER}: \"{hash}\"\n");
                write_private(&web, web_config.as_bytes())?;
                let mut c = Command::new(binary);
                c.arg(format!("--config.file={}", config.display()))
                    .arg(&marker)
                    .arg(format!("--web.config.file={}", web.display()))
                    .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                    // No gossip port: one Alertmanager, on loopback only.
                    .arg("--cluster.listen-address=")
                    .arg("--log.level=warn");
                Ok((c, auth.clone()))
            }),
            start_when: Box::new(|| true),
            report: Box::new(move |state| slot.set(state)),
        }
    }

    pub(super) fn vmalert_spec(
        &self,
        bridge: &bridge::Bridge,
        engine: Arc<Engine>,
    ) -> supervise::ChildSpec {
        let rules = self.rules_dir();
        let marker = format!("-rule={}/*.yml", rules.display());
        let env: Vec<(String, String)> = [
            ("httpAuth_username", CHILD_USER),
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
}
