//! The agent's config file: server, trust, the node's identity and token, exporters. It
//! holds a secret (the node token), so it is written atomically with mode 0600 and refused
//! when others can read it.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How the agent trusts the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trust {
    /// `--server-ssl`: chain and host name verified (system roots plus `ca_file`).
    Verified,
    /// `--server-insecure-ssl`: the chain is not verified; the key must match `pin_sha256`.
    Pinned,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exporter {
    pub name: String,
    pub url: String,
    /// Seconds between scrapes.
    pub interval_s: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentConfig {
    /// `host:port`.
    pub server: String,
    pub trust: Trust,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// SHA-256 of the server's public key, `ab:cd:...`, for `trust = "pinned"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_sha256: Option<String>,
    pub node_id: String,
    pub node_name: String,
    /// The node token: it can only write this node's metrics and read its own record.
    pub token: String,
    /// Seconds between collections and pushes.
    pub interval_s: u64,
    /// Most disk for unsent batches, MiB.
    pub max_buffer_mib: u64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub exporters: Vec<Exporter>,
    /// Databases watched through their exporters (`add mysql`, `add postgresql`).
    #[serde(default, rename = "service")]
    pub services: Vec<Service>,
}

/// The kind of a database service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceType {
    /// MySQL or MariaDB.
    Mysql,
    Postgresql,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mysql => "mysql",
            Self::Postgresql => "postgresql",
        }
    }

    /// What people call it.
    pub fn title(self) -> &'static str {
        match self {
            Self::Mysql => "MySQL",
            Self::Postgresql => "PostgreSQL",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Self::Mysql => 3306,
            Self::Postgresql => 5432,
        }
    }
}

/// A database service: where it is, how to sign in, and the labels its series carry.
/// The password is kept here, in the 0600 config; the exporter gets it through a 0600 file
/// or its environment, never its command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ServiceType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// A Unix socket instead of host and port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// PostgreSQL: the database to connect to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_set: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub tls: bool,
    #[serde(default)]
    pub tls_skip_verify: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Seconds between scrapes.
    pub interval_s: u64,
    /// Query Analytics: `perfschema` (MySQL), `pgstatements` (PostgreSQL), or none (off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_source: Option<QuerySource>,
    /// Keep example statements (with their literals) off the server.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_query_examples: bool,
    /// Fingerprints sent per interval, the busiest by time; the rest are summed as "other".
    #[serde(default = "default_qan_top")]
    pub qan_top: usize,
}

/// The default of `--qan-top`: enough that the rest is a small "other" row on most
/// servers.
pub const DEFAULT_QAN_TOP: usize = 200;

fn default_qan_top() -> usize {
    DEFAULT_QAN_TOP
}

/// Where Query Analytics reads a database's queries from (PMM's `--query-source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuerySource {
    /// MySQL/MariaDB `performance_schema.events_statements_summary_by_digest`.
    Perfschema,
    /// PostgreSQL `pg_stat_statements`.
    Pgstatements,
}

impl QuerySource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Perfschema => "perfschema",
            Self::Pgstatements => "pgstatements",
        }
    }

    /// The source a service kind reads.
    pub fn of(kind: ServiceType) -> Self {
        match kind {
            ServiceType::Mysql => Self::Perfschema,
            ServiceType::Postgresql => Self::Pgstatements,
        }
    }
}

impl Service {
    /// `host:port`, or the socket's path.
    pub fn address(&self) -> String {
        match &self.socket {
            Some(s) => s.display().to_string(),
            None => {
                let host = self.host.as_deref().unwrap_or("127.0.0.1");
                let port = self.port.unwrap_or(self.kind.default_port());
                if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                }
            }
        }
    }

    /// The labels every series of this service carries (besides the node's).
    pub fn labels(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("service_name".to_owned(), self.name.clone()),
            ("service_type".to_owned(), self.kind.as_str().to_owned()),
        ];
        for (k, v) in [
            ("environment", &self.environment),
            ("cluster", &self.cluster),
            ("replication_set", &self.replication_set),
        ] {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                out.push((k.to_owned(), v.clone()));
            }
        }
        out.extend(
            self.custom_labels
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        out
    }

    /// The labels the service adds of its own (environment, cluster, replication set,
    /// custom labels): [`Service::labels`] without its name and type.
    pub fn own_labels(&self) -> impl Iterator<Item = (String, String)> {
        self.labels()
            .into_iter()
            .filter(|(k, _)| !matches!(k.as_str(), "service_name" | "service_type"))
    }
}

/// A service name: 1 to 64 letters, digits, `_`, `-` or `.` (it is a label value, a file
/// name and part of the dashboards' addresses).
pub fn valid_service_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.starts_with('.')
}

/// Why the config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "{0}: no config file; enroll this machine first with `perch-admin config --server HOST ...`"
    )]
    Missing(PathBuf),
    #[error("{path}: cannot read: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "{path}: readable by other users (mode {mode:04o}) and it holds the node token; run `chmod 600 {path}` (and consider the token leaked: re-enroll with `perch-admin config --force`)"
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("{path}: not a valid agent config: {error}")]
    Invalid { path: PathBuf, error: String },
    #[error("{path}: cannot write: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// The default config path: /etc/perch/agent.toml for root, else
/// ~/.config/perch/agent.toml.
pub fn default_path() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/etc/perch/agent.toml");
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("perch").join("agent.toml")
}

impl AgentConfig {
    /// Reads the config, refusing one that others can read or that does not parse.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::Missing(path.to_owned()));
            }
            Err(error) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    error,
                });
            }
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(ConfigError::Exposed {
                path: path.to_owned(),
                mode,
            });
        }
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        let config: AgentConfig = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            error: e.message().to_owned(),
        })?;
        config.check().map_err(|error| ConfigError::Invalid {
            path: path.to_owned(),
            error,
        })?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if self.trust == Trust::Pinned && self.pin().is_none() {
            return Err("trust = \"pinned\" needs pin_sha256 = \"ab:cd:...\" (32 bytes)".into());
        }
        if !(1..=3600).contains(&self.interval_s) {
            return Err("interval_s is from 1 to 3600".into());
        }
        if self.token.is_empty() {
            return Err("token is empty".into());
        }
        if let Some(e) = self
            .exporters
            .iter()
            .find(|e| !(1..=3600).contains(&e.interval_s))
        {
            return Err(format!("exporter {}: interval_s is from 1 to 3600", e.name));
        }
        for (i, s) in self.services.iter().enumerate() {
            if !valid_service_name(&s.name) {
                return Err(format!(
                    "service {:?}: names are 1 to 64 letters, digits, '_', '-' or '.'",
                    s.name
                ));
            }
            if !(1..=3600).contains(&s.interval_s) {
                return Err(format!("service {}: interval_s is from 1 to 3600", s.name));
            }
            if let Some(q) = s.query_source.filter(|q| *q != QuerySource::of(s.kind)) {
                return Err(format!(
                    "service {}: query_source {} is not for {}",
                    s.name,
                    q.as_str(),
                    s.kind.title()
                ));
            }
            if !(1..=10_000).contains(&s.qan_top) {
                return Err(format!("service {}: qan_top is from 1 to 10000", s.name));
            }
            if self.services[..i].iter().any(|o| o.name == s.name) {
                return Err(format!("two services are named {}", s.name));
            }
        }
        Ok(())
    }

    /// The pinned fingerprint as bytes.
    pub fn pin(&self) -> Option<[u8; 32]> {
        parse_fingerprint(self.pin_sha256.as_deref()?)
    }

    /// Writes the config atomically (a temporary file in the same directory, fsynced, then
    /// renamed) with mode 0600; the directory is created 0700 if missing.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let err = |error| ConfigError::Write {
            path: path.to_owned(),
            error,
        };
        let text = toml::to_string(self).map_err(|e| err(std::io::Error::other(e.to_string())))?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        create_private_dir(dir).map_err(err)?;
        let mut contents =
            b"# perch-admin agent config. It holds the node token: keep it mode 0600.\n".to_vec();
        contents.extend_from_slice(text.as_bytes());
        write_private(path, &contents).map_err(err)
    }

    /// Where the agent keeps unsent batches: beside the config file.
    pub fn buffer_dir(path: &Path) -> PathBuf {
        path.with_file_name("agent-buffer")
    }

    /// Where the agent keeps its exporters' credential files (0700).
    pub fn services_dir(path: &Path) -> PathBuf {
        path.with_file_name("services")
    }

    /// Where the agent reports its state for `status`.
    pub fn state_path(path: &Path) -> PathBuf {
        path.with_file_name("agent-state.json")
    }
}

/// Creates `dir` (and its parents) with mode 0700 if it is missing.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Writes `contents` to `path` with mode 0600, atomically: a fresh temporary file in the same
/// folder (never through a link someone else planted), synced, renamed over `path`, and the
/// folder synced.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// `ab:cd:...` (or plain hex) to 32 bytes.
pub fn parse_fingerprint(s: &str) -> Option<[u8; 32]> {
    let hex: String = s.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AgentConfig {
        AgentConfig {
            server: "perch.example:443".into(),
            trust: Trust::Pinned,
            ca_file: None,
            pin_sha256: Some(perch_certs::spki_sha256_hex(&[7u8; 32])),
            node_id: "12".into(),
            node_name: "db-1".into(),
            token: "perch_node_x".into(),
            interval_s: 15,
            max_buffer_mib: 512,
            labels: [("env".to_owned(), "prod".to_owned())].into(),
            exporters: vec![Exporter {
                name: "node".into(),
                url: "http://127.0.0.1:9100/metrics".into(),
                interval_s: 15,
            }],
            services: Vec::new(),
        }
    }

    #[test]
    fn saved_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("agent.toml");
        sample().save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = AgentConfig::load(&path).unwrap();
        assert_eq!(back.pin(), Some([7u8; 32]));
        assert_eq!(back.exporters, sample().exporters);
        assert_eq!(back.labels["env"], "prod");
    }

    #[test]
    fn readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        sample().save(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = AgentConfig::load(&path).unwrap_err();
        assert!(matches!(e, ConfigError::Exposed { mode: 0o644, .. }), "{e}");
        assert!(e.to_string().contains("chmod 600"));
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        assert!(matches!(
            AgentConfig::load(&path),
            Err(ConfigError::Missing(_))
        ));
        let mut c = sample();
        c.pin_sha256 = Some("nothex".into());
        c.save(&path).unwrap();
        let e = AgentConfig::load(&path).unwrap_err();
        assert!(e.to_string().contains("pin_sha256"), "{e}");
    }
}
