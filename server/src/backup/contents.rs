//! What a backup holds, and where each part is in the archive: the user store as of one
//! moment (`perch/store.records`, sessions left out), Perch's other files under
//! `<data>/perch` (the local CA, the second factor's key), the certificate directory
//! (`nginx/`), operators' dashboards (`dashboards/`), the routes file (`config/`), Query
//! Analytics' texts (`qan.texts`), and the bundled engine's snapshot (`victoriametrics/`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use perch_auth::Auth;
use perch_backup::{ArchiveError, ArchiveWriter, Encryption, Manifest};

use super::BackupError;

/// The store's copy in the archive; `restore` builds the database from it.
pub const STORE_RECORDS: &str = "perch/store.records";
/// Query Analytics' texts in the archive, as JSON lines; `restore` builds `<data>/qan` from
/// them.
pub const QAN_TEXTS: &str = "qan.texts";
/// Under `<data>/perch`, what is not copied as files: the database (copied as records) and
/// the control socket.
const NOT_FILES: &[&str] = &["db", super::control::SOCKET];

/// Everything one backup reads.
#[derive(Debug, Clone)]
pub struct Sources {
    pub data_dir: PathBuf,
    pub cert_dir: PathBuf,
    pub dashboards_dir: PathBuf,
    pub config_file: Option<PathBuf>,
    pub auth: Arc<Auth>,
    pub qan: Arc<perch_qan::Store>,
}

impl Sources {
    /// Writes the archive to `sink`: blocking, so run it off the async workers. `snapshot`
    /// is the engine snapshot's folder, when the engine is bundled.
    pub fn write<W: Write>(
        &self,
        encryption: &Encryption,
        sink: W,
        created_at: i64,
        snapshot: Option<&Path>,
    ) -> Result<(Manifest, W), BackupError> {
        let store = self
            .auth
            .export_store()
            .map_err(|e| BackupError::Store(e.to_string()))?;
        let mut archive = ArchiveWriter::new(encryption, sink, created_at)?;
        archive.add_bytes(STORE_RECORDS, &store.records)?;
        drop(store.records);
        let perch = self.data_dir.join("perch");
        add_tree(&mut archive, &perch, "perch", &|rel| {
            !NOT_FILES.iter().any(|n| rel.starts_with(n))
        })?;
        add_tree(&mut archive, &self.cert_dir, "nginx", &|_| true)?;
        add_tree(&mut archive, &self.dashboards_dir, "dashboards", &|_| true)?;
        // Alerting: the rules' settings and the contact points (`alerting/`), the operator's
        // rule files (`alerts/`), and Alertmanager's silences and notification log with its
        // configuration (`alertmanager/`; it replaces its files whole, by renaming).
        for part in ["alerting", "alerts", "alertmanager"] {
            add_tree(&mut archive, &self.data_dir.join(part), part, &|rel| {
                rel.extension().is_none_or(|e| e != "tmp")
            })?;
        }
        let texts = self
            .qan
            .export()
            .map_err(|e| BackupError::Store(e.to_string()))?;
        archive.add_bytes(QAN_TEXTS, &texts)?;
        drop(texts);
        if let Some(file) = &self.config_file {
            let name = file
                .file_name()
                .map_or("routes.toml".into(), |n| n.to_string_lossy().into_owned());
            archive.add_file(&format!("config/{name}"), file)?;
        }
        if let Some(dir) = snapshot {
            add_tree(&mut archive, dir, "victoriametrics", &|_| true)?;
        }
        let files = archive.files().len();
        let about = serde_json::json!({
            "users": store.users,
            "nodes": store.nodes,
            "api_tokens": store.api_tokens,
            "query_texts": self.qan.size().0,
            "files": files,
            "metrics": snapshot.is_some(),
            "config_file": self.config_file.as_ref().map(|f| f.display().to_string()),
        });
        Ok(archive.finish(created_at, about)?)
    }
}

/// Adds every regular file under `root` (following symbolic links, as the engine's snapshot
/// is made of them) as `prefix/<relative path>`, in name order; `keep` is asked of each
/// relative path. A missing root adds nothing.
fn add_tree<W: Write>(
    archive: &mut ArchiveWriter<W>,
    root: &Path,
    prefix: &str,
    keep: &dyn Fn(&Path) -> bool,
) -> Result<(), BackupError> {
    let mut files = Vec::new();
    list(root, root, keep, &mut files)?;
    files.sort();
    for (rel, path) in files {
        archive.add_file(&format!("{prefix}/{rel}"), &path)?;
    }
    Ok(())
}

fn list(
    root: &Path,
    dir: &Path,
    keep: &dyn Fn(&Path) -> bool,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), BackupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir == root => return Ok(()),
        Err(e) => return Err(BackupError::Io(dir.display().to_string(), e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| BackupError::Io(dir.display().to_string(), e))?;
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        // Dot files are editors' and Kubernetes' (`..data`), and unfinished writes.
        if entry.file_name().to_string_lossy().starts_with('.') || !keep(&rel) {
            continue;
        }
        let Ok(meta) = std::fs::metadata(&path) else {
            continue; // a dangling link
        };
        if meta.is_dir() {
            list(root, &path, keep, out)?;
        } else if meta.is_file() {
            let Some(rel) = rel.to_str() else {
                return Err(BackupError::Archive(ArchiveError::Source(
                    path.display().to_string(),
                    std::io::Error::other("the name is not UTF-8"),
                )));
            };
            out.push((rel.to_owned(), path));
        }
    }
    Ok(())
}
