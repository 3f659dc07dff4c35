//! One running exporter: started from a [`Launch`] on a loopback port, its log read line by
//! line (errors kept, scrubbed), stopped with SIGTERM (SIGKILL if it lingers, or when
//! dropped).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncBufReadExt;

use super::ServiceError;
use super::launch::Launch;
use super::logline;

/// What the exporter's log said lately.
#[derive(Debug, Default, Clone)]
pub struct ExporterLog {
    /// The last error about reaching the database, scrubbed, with its Unix time.
    pub connection_error: Option<(String, i64)>,
    /// The last error of each collector (a missing privilege, say).
    pub collector_errors: BTreeMap<String, String>,
}

#[derive(Debug)]
pub struct Exporter {
    child: tokio::process::Child,
    pub port: u16,
    pub log: Arc<Mutex<ExporterLog>>,
}

/// A loopback port free now, for an exporter to listen on.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

impl Exporter {
    /// Starts the exporter and waits (up to 5 s) until it listens. `name` prefixes what is
    /// logged of it.
    pub async fn start(launch: &Launch, name: &str, port: u16) -> Result<Self, ServiceError> {
        let mut child = tokio::process::Command::new(&launch.program)
            .args(&launch.args)
            .env_clear()
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| ServiceError::Spawn {
                program: launch.program.clone(),
                error,
            })?;
        let log = Arc::new(Mutex::new(ExporterLog::default()));
        if let Some(stderr) = child.stderr.take() {
            let (log, secrets, name) = (log.clone(), launch.secrets.clone(), name.to_owned());
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let parsed = logline::parse(&line);
                    if !parsed.is_error() {
                        continue;
                    }
                    let text = logline::scrub(&parsed.text(), &secrets);
                    let Ok(mut log) = log.lock() else { return };
                    match parsed.collector {
                        Some(c) => {
                            if log.collector_errors.get(&c) != Some(&text) {
                                tracing::debug!("service {name}: collector {c}: {text}");
                            }
                            log.collector_errors.insert(c, text);
                        }
                        None => {
                            if log.connection_error.as_ref().map(|e| &e.0) != Some(&text) {
                                tracing::warn!("service {name}: {text}");
                            }
                            log.connection_error = Some((text, perch_time::unix_now()));
                        }
                    }
                }
            });
        }
        let mut exporter = Self { child, port, log };
        for _ in 0..50 {
            if let Some(status) = exporter.exited() {
                return Err(ServiceError::Unusable(format!(
                    "{} stopped at once ({status}); run it by hand to see why: {} {}",
                    launch.program.display(),
                    launch.program.display(),
                    launch.args.join(" ")
                )));
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(exporter);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(ServiceError::Unusable(format!(
            "{} did not listen on 127.0.0.1:{port} within 5 s",
            launch.program.display()
        )))
    }

    /// Its metrics URL.
    pub fn url(&self) -> url::Url {
        url::Url::parse(&format!("http://127.0.0.1:{}/metrics", self.port))
            .expect("a loopback URL parses")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// `Some(how)` once the process has ended.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// SIGTERM, then SIGKILL after 2 s.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if tokio::time::timeout(Duration::from_secs(2), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}
