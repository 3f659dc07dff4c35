//! What the running agent reports about itself, in a small JSON file beside the config
//! (written atomically each round), for `perch-admin status`.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AgentState {
    pub pid: u32,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds of this report.
    pub updated_at: i64,
    /// Unix seconds of the last push the server accepted.
    pub last_push_ok: Option<i64>,
    /// The last failure, if the last push failed.
    pub last_error: Option<String>,
    pub buffered_batches: u64,
    pub buffered_bytes: u64,
    /// Batches dropped because the buffer was full (oldest first).
    pub dropped_batches: u64,
    pub interval_s: u64,
    /// Each exporter's and service's health at its last scrape.
    #[serde(default)]
    pub targets: Vec<TargetHealth>,
    /// The exporters the agent started, stopped by the next agent if this one was killed.
    #[serde(default)]
    pub exporter_pids: Vec<u32>,
}

/// One scraped exporter or database service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetHealth {
    pub name: String,
    /// `exporter`, `mysql` or `postgresql`.
    pub kind: String,
    /// Where it is: the exporter's URL or the database's address.
    pub address: String,
    /// The last scrape answered and (for a service) the exporter reached the database.
    pub up: bool,
    /// Unix seconds since it has been up, or down.
    pub since: i64,
    /// Unix seconds of the last scrape.
    pub last_scrape: i64,
    /// Why it is down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The database's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl AgentState {
    pub fn read(path: &Path) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    /// Written to a temporary file and renamed, so a reader never sees half of it.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = path.with_extension("json.tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        std::io::Write::write_all(
            &mut file,
            &serde_json::to_vec_pretty(self).unwrap_or_default(),
        )?;
        std::fs::rename(&tmp, path)
    }

    /// The agent that wrote this is alive and reported within three intervals.
    pub fn running(&self, now: i64) -> bool {
        let alive = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.pid).unwrap_or(i32::MAX)),
            None,
        )
        .is_ok();
        alive && now - self.updated_at <= 3 * self.interval_s.max(1) as i64 + 5
    }
}
