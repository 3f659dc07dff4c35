//! The reverse proxy: other tools (Grafana, Alertmanager, a status page) behind Perch's TLS
//! and login. Routes come from the `--config` TOML file, are checked whole before they are
//! used, and are replaced at SIGHUP only by a file that passes the same checks.
//!
//! Forwarding itself is [`perch_upstream`]; this module decides who may use which route and
//! what the upstream is told about them, with the same [`crate::request::Guard`] as Perch's
//! own routes.

mod config;
mod serve;
mod table;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::selfmon::{ProxyRouteLabels, ReasonLabels, SelfMetrics};

pub use serve::{Proxied, serve};
use table::Table;

/// How often each upstream is checked for accepting connections.
const HEALTH_INTERVAL: Duration = Duration::from_secs(10);

/// The routes in force, and where they come from.
#[derive(Debug)]
pub struct Gateway {
    table: ArcSwap<Table>,
    file: Option<PathBuf>,
    /// The first path segments Perch answers itself: no route may take them.
    reserved: HashSet<&'static str>,
    metrics: Arc<SelfMetrics>,
}

impl Gateway {
    /// No routes (no `--config`).
    pub fn empty(metrics: Arc<SelfMetrics>) -> Self {
        Self {
            table: ArcSwap::from_pointee(Table::default()),
            file: None,
            reserved: HashSet::new(),
            metrics,
        }
    }

    /// The routes in `file`, none of which may take a first path segment in `reserved`;
    /// an error names the file, the route and the fault.
    pub fn load(
        file: &Path,
        reserved: HashSet<&'static str>,
        metrics: Arc<SelfMetrics>,
    ) -> Result<Self, String> {
        let table = read(file, &reserved, &metrics)?;
        Ok(Self {
            table: ArcSwap::from_pointee(table),
            file: Some(file.to_owned()),
            reserved,
            metrics,
        })
    }

    /// The routes now.
    pub fn table(&self) -> arc_swap::Guard<Arc<Table>> {
        self.table.load()
    }

    /// Reads the file again; the new routes replace the old only if all of it is valid.
    /// Returns how many routes are in force.
    pub fn reload(&self) -> Result<usize, String> {
        let Some(file) = &self.file else {
            return Ok(0);
        };
        let outcome = read(file, &self.reserved, &self.metrics);
        let reason = if outcome.is_ok() { "ok" } else { "error" };
        self.metrics
            .proxy_config_reloads
            .get_or_create(&ReasonLabels { reason })
            .inc();
        let table = outcome?;
        let count = table.routes().len();
        let old = self.table.swap(Arc::new(table));
        let now = self.table.load();
        for gone in old.names().filter(|n| !now.names().any(|m| m == *n)) {
            let labels = ProxyRouteLabels {
                route: gone.to_owned(),
            };
            self.metrics.proxy_latency.remove(&labels);
            self.metrics.proxy_upstream_up.remove(&labels);
        }
        Ok(count)
    }
}

fn read(
    file: &Path,
    reserved: &HashSet<&'static str>,
    metrics: &Arc<SelfMetrics>,
) -> Result<Table, String> {
    let specs = config::load(file, reserved).map_err(|e| e.to_string())?;
    Table::build(specs, metrics).map_err(|e| format!("{}: {e}", file.display()))
}

/// Reloads the routes at SIGHUP, and checks every upstream's health every ten seconds,
/// until shutdown.
pub fn spawn(
    gateway: Arc<Gateway>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; routes cannot be reloaded");
                None
            }
        };
        let mut health = tokio::time::interval(HEALTH_INTERVAL);
        health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let check = tokio::select! {
                Some(()) = async {
                    match hangup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    on_hangup(&gateway);
                    false
                }
                _ = health.tick() => true,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            if check {
                check_health(&gateway).await;
            }
        }
    })
}

fn on_hangup(gateway: &Gateway) {
    let Some(file) = &gateway.file else {
        tracing::info!("SIGHUP: no --config file, no routes to reload");
        return;
    };
    match gateway.reload() {
        Ok(routes) => {
            tracing::info!(file = %file.display(), routes, "routes reloaded");
        }
        Err(e) => tracing::error!(error = %e, "routes not reloaded; the previous routes stay"),
    }
}

/// Sets each route's `up` gauge from whether its upstream accepts a TCP connection.
async fn check_health(gateway: &Gateway) {
    let table = gateway.table.load_full();
    for route in table.routes() {
        let url = &route.spec.upstream;
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            continue;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let timeout = route.spec.connect_timeout.min(Duration::from_secs(5));
        let ok = matches!(
            tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await,
            Ok(Ok(_))
        );
        route.up.set(i64::from(ok));
    }
}
