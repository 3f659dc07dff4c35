//! The record of backups taken into `--backup-dir`, failures included, kept beside them in
//! `perch-backups.json` (0600; no secret in it) so that the Backups page lists how long
//! each took and why one failed, across restarts.

use std::path::Path;

use serde::{Deserialize, Serialize};

const FILE: &str = "perch-backups.json";
/// Runs remembered.
const KEEP: usize = 100;

/// One backup run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// The archive's name; none when the run failed.
    pub file: Option<String>,
    pub started_at: i64,
    pub seconds: f64,
    pub bytes: u64,
    /// `schedule`, or the admin who started it.
    pub by: String,
    pub error: Option<String>,
}

#[derive(Debug, Default)]
pub struct History(Vec<Run>);

impl History {
    pub fn load(dir: Option<&Path>) -> Self {
        let runs = dir
            .and_then(|d| std::fs::read(d.join(FILE)).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Self(runs)
    }

    /// Adds a run and saves the record (a failure to save is logged: the backups
    /// themselves are what matters).
    pub fn record(&mut self, dir: &Path, run: Run) {
        self.0.push(run);
        if self.0.len() > KEEP {
            self.0.drain(..self.0.len() - KEEP);
        }
        let tmp = dir.join(format!(".{FILE}.tmp"));
        let saved = std::fs::write(&tmp, serde_json::to_vec_pretty(&self.0).unwrap_or_default())
            .and_then(|()| std::fs::rename(&tmp, dir.join(FILE)));
        if let Err(e) = saved {
            tracing::warn!(error = %e, dir = %dir.display(), "could not save the record of backups");
        }
    }

    /// Newest first.
    pub fn runs(&self) -> Vec<Run> {
        self.0.iter().rev().cloned().collect()
    }
}
