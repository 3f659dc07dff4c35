//! The one connection `add` makes before saving a service: the exporter itself is started
//! with the service's settings and scraped once, so what is checked is exactly what the
//! agent will run. A database that refuses is reported in its own words; a collector that
//! lacks a privilege gives the GRANT to run.

use std::path::Path;
use std::time::Duration;

use perch_remote_write::TimeSeries;

use super::child::{Exporter, free_port};
use super::{ServiceError, exporter_of, grants, launch};
use crate::agent::scrape;
use crate::config::{Service, ServiceType};

/// What the first connection found.
#[derive(Debug)]
pub struct Probed {
    pub version: Option<String>,
    /// The GRANT that gives what the collectors lacked.
    pub grant: Option<String>,
    /// What the collectors said they could not read.
    pub collector_errors: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The database refused, or could not be reached: its own reason.
    #[error("{0}")]
    Refused(String),
}

/// The value of the first series named `name`, and its labels.
pub fn first<'a>(series: &'a [TimeSeries], name: &str) -> Option<(&'a TimeSeries, f64)> {
    series.iter().find_map(|s| {
        let named = s
            .labels
            .iter()
            .any(|l| l.name == "__name__" && l.value == name);
        named.then(|| (s, s.samples.first().map_or(f64::NAN, |x| x.value)))
    })
}

/// A label's value on a series.
pub fn label<'a>(s: &'a TimeSeries, name: &str) -> Option<&'a str> {
    s.labels
        .iter()
        .find(|l| l.name == name)
        .map(|l| l.value.as_str())
}

/// The server's version as its exporter reports it.
pub fn version(kind: ServiceType, series: &[TimeSeries]) -> Option<String> {
    match kind {
        ServiceType::Mysql => first(series, "mysql_version_info")
            .and_then(|(s, _)| label(s, "version").map(str::to_owned)),
        ServiceType::Postgresql => first(series, "pg_static")
            .and_then(|(s, _)| label(s, "short_version").map(str::to_owned)),
    }
}

/// The MySQL account the server matched the user to (`CURRENT_USER()`), asked with the
/// mysql client and the same option file when the client is installed; else the user at
/// the host it connects from as the server most likely sees it.
async fn mysql_account(service: &Service, dir: &Path) -> String {
    let cnf = dir.join(format!("{}.client.cnf", service.name));
    if launch::write_client_cnf(service, &cnf).is_ok() {
        let account = current_user(&cnf).await;
        let _ = std::fs::remove_file(&cnf);
        if let Some(account) = account {
            return account;
        }
    }
    grants::likely_mysql_account(service)
}

/// `CURRENT_USER()` through the mysql (or mariadb) client, if one is installed.
async fn current_user(cnf: &Path) -> Option<String> {
    for client in ["mariadb", "mysql"] {
        let out = tokio::process::Command::new(client)
            .arg(format!("--defaults-file={}", cnf.display()))
            .args([
                "--batch",
                "--skip-column-names",
                "-e",
                "SELECT CURRENT_USER()",
            ])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .stdin(std::process::Stdio::null())
            .output()
            .await;
        let account = out
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| grants::current_user_account(&String::from_utf8_lossy(&o.stdout)));
        if account.is_some() {
            return account;
        }
    }
    None
}

/// Starts the service's exporter with its files in `dir`, scrapes it once, stops it.
pub async fn probe(service: &Service, dir: &Path) -> Result<Probed, ProbeError> {
    let port =
        free_port().map_err(|e| ServiceError::Unusable(format!("no free loopback port: {e}")))?;
    let launch = launch::prepare(service, dir, port)?;
    let exporter = Exporter::start(&launch, &service.name, port).await?;
    let result = scrape::scrape(
        &[("job".to_owned(), "probe".to_owned())],
        &exporter.url(),
        Duration::from_secs(20),
        perch_time::unix_now_ms(),
    )
    .await;
    // The exporter logs why a scrape failed while answering it: give the line a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = exporter.log.lock().map(|l| l.clone()).unwrap_or_default();
    exporter.stop().await;
    let series = result
        .map_err(|e| ProbeError::Refused(format!("the exporter did not answer: {e}")))?
        .series;
    let up = first(&series, exporter_of(service.kind).up_metric).map(|(_, v)| v);
    if up != Some(1.0) {
        let reason = log
            .connection_error
            .map(|(e, _)| e)
            .or_else(|| log.collector_errors.values().next().cloned())
            .unwrap_or_else(|| "no reason given; is the server running there?".to_owned());
        return Err(ProbeError::Refused(reason));
    }
    let collector_errors: Vec<String> = log.collector_errors.values().cloned().collect();
    let grant = match service.kind {
        ServiceType::Mysql if !collector_errors.is_empty() => {
            let account = mysql_account(service, dir).await;
            grants::grant(service.kind, &account, &collector_errors, None)
        }
        ServiceType::Mysql => None,
        ServiceType::Postgresql => {
            let monitor = first(&series, "perch_pg_monitor").map(|(_, v)| v == 1.0);
            grants::grant(service.kind, &service.username, &[], monitor)
        }
    };
    Ok(Probed {
        version: version(service.kind, &series),
        grant,
        collector_errors,
    })
}
