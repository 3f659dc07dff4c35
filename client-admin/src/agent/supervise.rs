//! The exporters of the database services, run as the agent's children: started on a
//! loopback port the agent picks, restarted with backoff when they stop, stopped with the
//! agent. An agent killed with SIGKILL cannot stop them; the next one does, from the pids
//! its predecessor reported.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::{Service, ServiceType};
use crate::services::child::{Exporter, ExporterLog, free_port};
use crate::services::exporter_of;
use crate::services::launch;

const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Running this long resets the backoff.
const STEADY: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub struct Supervised {
    pub service: Service,
    exporter: Option<Exporter>,
    restart_at: Instant,
    backoff: Duration,
    started_at: Instant,
    /// Why the exporter is not running, while it is not.
    pub not_running: Option<String>,
    /// When it is next scraped.
    pub next_scrape: Instant,
}

impl Supervised {
    pub fn new(service: Service) -> Self {
        let now = Instant::now();
        Self {
            service,
            exporter: None,
            restart_at: now,
            backoff: BACKOFF_FIRST,
            started_at: now,
            not_running: Some("the exporter is starting".to_owned()),
            next_scrape: now,
        }
    }

    /// Notices an exporter that stopped, and starts it when it is due.
    pub async fn tend(&mut self, dir: &Path) {
        let name = self.service.name.clone();
        if let Some(exporter) = &mut self.exporter {
            let Some(how) = exporter.exited() else {
                return;
            };
            if self.started_at.elapsed() >= STEADY {
                self.backoff = BACKOFF_FIRST;
            }
            let why = format!(
                "its exporter stopped ({how}); restarting it in {} s",
                self.backoff.as_secs()
            );
            tracing::warn!("service {name}: {why}");
            self.not_running = Some(why);
            self.exporter = None;
            self.schedule_restart();
            return;
        }
        if Instant::now() < self.restart_at {
            return;
        }
        let started = async {
            let port = free_port().map_err(|e| format!("no free loopback port: {e}"))?;
            let launch = launch::prepare(&self.service, dir, port).map_err(|e| e.to_string())?;
            Exporter::start(&launch, &name, port)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        match started {
            Ok(exporter) => {
                tracing::info!(
                    "service {name}: exporter started on 127.0.0.1:{} (pid {})",
                    exporter.port,
                    exporter.pid().unwrap_or(0)
                );
                self.exporter = Some(exporter);
                self.started_at = Instant::now();
                self.not_running = None;
            }
            Err(why) => {
                if self.not_running.as_deref() != Some(why.as_str()) {
                    tracing::error!("service {name}: {why}");
                }
                self.not_running = Some(why);
                self.schedule_restart();
            }
        }
    }

    fn schedule_restart(&mut self) {
        self.restart_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    pub fn url(&self) -> Option<url::Url> {
        self.exporter.as_ref().map(Exporter::url)
    }

    pub fn pid(&self) -> Option<u32> {
        self.exporter.as_ref().and_then(Exporter::pid)
    }

    /// What the exporter's log said lately.
    pub fn log(&self) -> ExporterLog {
        self.exporter
            .as_ref()
            .and_then(|e| e.log.lock().ok().map(|l| l.clone()))
            .unwrap_or_default()
    }

    pub async fn stop(&mut self) {
        if let Some(e) = self.exporter.take() {
            e.stop().await;
        }
    }
}

/// Stops exporters a killed agent left running: `pids` from its state file, each only if it
/// is still one of the exporter programs.
pub fn stop_leftovers(pids: &[u32]) {
    for &pid in pids {
        let exe: PathBuf = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        let name = exe.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Only a program that runs the exporter of some kind of service.
        let ours = [ServiceType::Mysql, ServiceType::Postgresql]
            .into_iter()
            .any(|kind| exporter_of(kind).programs.contains(&name));
        if let (true, Ok(pid)) = (ours, i32::try_from(pid)) {
            tracing::info!("stopping exporter pid {pid} left by an earlier agent");
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}
