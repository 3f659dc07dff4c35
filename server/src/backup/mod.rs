//! Backups of the running appliance: one archive, encrypted as it is written, of the user
//! store as of one moment, Perch's files and the bundled engine's snapshot (see
//! [`contents`]). Taken into `--backup-dir` on a schedule or from the Backups page, or
//! streamed to `perch-server backup` over the control socket; one at a time.

pub mod contents;
pub mod control;
mod history;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use perch_auth::AuditKind;
use perch_backup::{ArchiveError, Encryption, Manifest, Schedule};
use tokio::sync::watch;

use crate::engine::Engine;
use crate::selfmon::SelfMetrics;
pub use contents::Sources;
pub use history::Run;

/// Archive files in `--backup-dir`: `perch-backup-20261207T031500Z.age`.
const PREFIX: &str = "perch-backup-";
const SUFFIX: &str = ".age";

/// How scheduled and page-started backups are kept (the `--backup-*` flags).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub dir: Option<PathBuf>,
    pub schedule: Option<Schedule>,
    /// How many archives to keep in `dir` (0: all).
    pub keep: usize,
    pub encryption: Option<Encryption>,
}

/// Who asked for a backup.
#[derive(Debug, Clone)]
pub enum Trigger {
    Schedule,
    /// A signed-in admin, from this address.
    Admin {
        name: String,
        client: String,
    },
    /// `perch-server backup` on the control socket.
    Command,
}

impl Trigger {
    fn actor(&self) -> (&str, &str) {
        match self {
            Self::Schedule => ("schedule", ""),
            Self::Admin { name, client } => (name, client),
            Self::Command => ("perch-server backup", "local"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("a backup is already running; try again when it is done")]
    Busy,
    #[error(
        "no backup folder is set: start perch-server with --backup-dir (and --backup-recipient or --backup-passphrase-file), or use `perch-server backup --to FILE`"
    )]
    NoDir,
    #[error("the metrics engine's data cannot be copied now: {0}")]
    Engine(String),
    #[error("the user store cannot be copied: {0}")]
    Store(String),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

/// A backup that was written.
#[derive(Debug)]
pub struct Taken {
    pub manifest: Manifest,
    pub bytes: u64,
    pub duration: Duration,
}

#[derive(Debug)]
pub struct Backups {
    sources: Sources,
    engine: Arc<Engine>,
    /// The bundled engine's data folder (its snapshots are under it).
    engine_dir: PathBuf,
    metrics: Arc<SelfMetrics>,
    settings: Settings,
    running: tokio::sync::Mutex<()>,
    history: Mutex<history::History>,
}

impl Backups {
    pub fn new(
        sources: Sources,
        engine: Arc<Engine>,
        engine_dir: PathBuf,
        metrics: Arc<SelfMetrics>,
        settings: Settings,
    ) -> Self {
        let history = history::History::load(settings.dir.as_deref());
        if let Some(dir) = &settings.dir {
            remove_partials(dir);
        }
        Self {
            sources,
            engine,
            engine_dir,
            metrics,
            settings,
            running: tokio::sync::Mutex::new(()),
            history: Mutex::new(history),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// What the `--backup-*` flags encrypt to, if they name anything.
    pub fn encryption(&self) -> Option<&Encryption> {
        self.settings.encryption.as_ref()
    }

    /// Whether a backup is being taken now.
    pub fn is_running(&self) -> bool {
        self.running.try_lock().is_err()
    }

    /// Writes one backup to `sink` and gives it back, written and flushed. Fails at once
    /// when another backup is running.
    pub async fn take<W: Write + Send + 'static>(
        &self,
        encryption: &Encryption,
        sink: W,
        trigger: Trigger,
    ) -> Result<(Taken, W), BackupError> {
        let _one = self.running.try_lock().map_err(|_| BackupError::Busy)?;
        let started = Instant::now();
        let created_at = perch_time::unix_now();
        let result =
            self.write(encryption, sink, created_at)
                .await
                .map(|(manifest, bytes, sink)| {
                    let taken = Taken {
                        manifest,
                        bytes,
                        duration: started.elapsed(),
                    };
                    (taken, sink)
                });
        let (actor, _) = trigger.actor();
        match &result {
            Ok((taken, _)) => {
                self.metrics.backup_last_success.set(created_at);
                self.metrics
                    .backup_last_duration
                    .set(taken.duration.as_secs_f64());
                self.metrics
                    .backup_last_size
                    .set(i64::try_from(taken.bytes).unwrap_or(i64::MAX));
                tracing::info!(
                    by = actor,
                    bytes = taken.bytes,
                    files = taken.manifest.files.len(),
                    seconds = taken.duration.as_secs_f64(),
                    "backup taken"
                );
            }
            Err(e) => {
                self.metrics.backup_failures.inc();
                tracing::error!(by = actor, error = %e, "backup failed");
            }
        }
        result
    }

    async fn write<W: Write + Send + 'static>(
        &self,
        encryption: &Encryption,
        sink: W,
        created_at: i64,
    ) -> Result<(Manifest, u64, W), BackupError> {
        let snapshot = if self.engine.is_bundled() {
            Some(
                self.engine
                    .snapshot()
                    .await
                    .map_err(|e| BackupError::Engine(e.to_string()))?,
            )
        } else {
            None
        };
        let snapshot_dir = snapshot
            .as_ref()
            .map(|s| self.engine_dir.join("snapshots").join(&s.name));
        let sources = self.sources.clone();
        let encryption = encryption.clone();
        let written = tokio::task::spawn_blocking(move || {
            let counting = Counting { inner: sink, n: 0 };
            let (manifest, counting) =
                sources.write(&encryption, counting, created_at, snapshot_dir.as_deref())?;
            Ok::<_, BackupError>((manifest, counting))
        })
        .await;
        if let Some(snapshot) = &snapshot
            && let Err(e) = self.engine.drop_snapshot(snapshot).await
        {
            tracing::warn!(snapshot = %snapshot.name, error = %e, "could not remove the engine's snapshot after a backup");
        }
        let (manifest, counting) = written.map_err(|e| {
            BackupError::Io(
                "the backup task".into(),
                std::io::Error::other(e.to_string()),
            )
        })??;
        Ok((manifest, counting.n, counting.inner))
    }

    /// Takes a backup into `--backup-dir` (written as a hidden partial file, synced, then
    /// renamed), records it, audits it, and removes the oldest past `--backup-keep`.
    pub async fn to_dir(&self, trigger: Trigger) -> Result<Run, BackupError> {
        let (Some(dir), Some(encryption)) = (&self.settings.dir, &self.settings.encryption) else {
            return Err(BackupError::NoDir);
        };
        let started_at = perch_time::unix_now();
        let name = archive_name(dir, started_at);
        let partial = dir.join(format!(".{name}.partial"));
        let result = async {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&partial)
                .map_err(|e| BackupError::Io(partial.display().to_string(), e))?;
            let (taken, file) = self.take(encryption, file, trigger.clone()).await?;
            // Written, but not a backup until it is on disk under its name.
            let io = |e| {
                self.metrics.backup_failures.inc();
                BackupError::Io(dir.display().to_string(), e)
            };
            file.sync_all().map_err(io)?;
            drop(file);
            std::fs::rename(&partial, dir.join(&name)).map_err(io)?;
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
            Ok::<_, BackupError>(taken)
        }
        .await;
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        let (actor, client) = trigger.actor();
        let run = Run {
            file: result.as_ref().ok().map(|_| name.clone()),
            started_at,
            seconds: result.as_ref().map_or(0.0, |t| t.duration.as_secs_f64()),
            bytes: result.as_ref().map_or(0, |t| t.bytes),
            by: actor.to_owned(),
            error: result.as_ref().err().map(ToString::to_string),
        };
        self.history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(dir, run.clone());
        if result.is_ok() {
            if let Err(e) = self
                .sources
                .auth
                .audit_event(AuditKind::BackupTaken, actor, client, &name)
                .await
            {
                tracing::warn!(error = %e, "the backup could not be recorded in the audit trail");
            }
            self.prune(dir);
        }
        result.map(|_| run)
    }

    /// Removes the oldest archives past `--backup-keep`.
    fn prune(&self, dir: &Path) {
        if self.settings.keep == 0 {
            return;
        }
        let mut names: Vec<String> = self.files().into_iter().map(|f| f.name).collect();
        names.sort();
        let excess = names.len().saturating_sub(self.settings.keep);
        for name in &names[..excess] {
            match std::fs::remove_file(dir.join(name)) {
                Ok(()) => {
                    tracing::info!(file = %name, keep = self.settings.keep, "removed an old backup")
                }
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "could not remove an old backup")
                }
            }
        }
    }

    /// The archives in `--backup-dir`, newest first.
    pub fn files(&self) -> Vec<BackupFile> {
        let Some(dir) = &self.settings.dir else {
            return Vec::new();
        };
        let mut files: Vec<BackupFile> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let meta = entry.metadata().ok()?;
                let modified = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
                (is_archive_name(&name) && meta.is_file()).then_some(BackupFile {
                    name,
                    bytes: meta.len(),
                    modified,
                })
            })
            .collect();
        files.sort_by(|a, b| b.name.cmp(&a.name));
        files
    }

    /// The runs recorded in `--backup-dir`, newest first.
    pub fn runs(&self) -> Vec<Run> {
        self.history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .runs()
    }

    /// An archive of `--backup-dir` by its name, to download.
    pub fn open(&self, name: &str) -> Option<(std::fs::File, u64)> {
        let dir = self.settings.dir.as_ref()?;
        if !is_archive_name(name) {
            return None;
        }
        let file = std::fs::File::open(dir.join(name)).ok()?;
        let len = file.metadata().ok().filter(|m| m.is_file())?.len();
        Some((file, len))
    }

    /// Records a download in the audit trail.
    pub async fn downloaded(&self, name: &str, by: &str, client: &str) {
        if let Err(e) = self
            .sources
            .auth
            .audit_event(AuditKind::BackupDownloaded, by, client, name)
            .await
        {
            tracing::warn!(error = %e, "a backup download could not be recorded in the audit trail");
        }
    }
}

/// `perch-backup-<UTC time>.age` in `dir`, with `-2`, `-3`, ... when one of that second
/// exists.
pub fn archive_name(dir: &Path, at: i64) -> String {
    let stamp = time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| at.to_string());
    let mut name = format!("{PREFIX}{stamp}{SUFFIX}");
    let mut n = 2;
    while dir.join(&name).exists() {
        name = format!("{PREFIX}{stamp}-{n}{SUFFIX}");
        n += 1;
    }
    name
}

/// Removes what a backup cut off by a stop or a crash left: `.perch-backup-*.partial`.
fn remove_partials(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!(".{PREFIX}")) && name.ends_with(".partial") {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::info!(file = %name, "removed an unfinished backup"),
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "could not remove an unfinished backup")
                }
            }
        }
    }
}

/// An archive in `--backup-dir`.
#[derive(Debug, Clone)]
pub struct BackupFile {
    pub name: String,
    pub bytes: u64,
    /// Unix seconds.
    pub modified: i64,
}

/// `perch-backup-<stamp>[-n].age`, of safe characters only (it is used in a path).
fn is_archive_name(name: &str) -> bool {
    name.strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_suffix(SUFFIX))
        .is_some_and(|stamp| {
            !stamp.is_empty()
                && stamp
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Counts what passes to the sink.
struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Takes scheduled backups until `stop` turns true.
pub fn spawn_schedule(
    backups: Arc<Backups>,
    mut stop: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let schedule = backups.settings.schedule?;
    Some(tokio::spawn(async move {
        let mut last = None;
        loop {
            let now = perch_time::unix_now();
            let next = schedule.next(now, last);
            let wait = Duration::from_secs(u64::try_from(next - now).unwrap_or(0));
            tokio::select! {
                _ = stop.changed() => break,
                () = tokio::time::sleep(wait) => {}
            }
            last = Some(perch_time::unix_now());
            // Failures are logged, counted and listed by `to_dir`.
            let _ = backups.to_dir(Trigger::Schedule).await;
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::is_archive_name;

    #[test]
    fn only_archive_names_are_served() {
        assert!(is_archive_name("perch-backup-20261207T031500Z.age"));
        assert!(is_archive_name("perch-backup-20261207T031500Z-2.age"));
        for bad in [
            "perch-backup-.age",
            "perch-backup-../x.age",
            "perch-backup-a/b.age",
            ".perch-backup-1.age.partial",
            "perch-backups.json",
            "perch-backup-1.age.partial",
        ] {
            assert!(!is_archive_name(bad), "{bad}");
        }
    }
}
