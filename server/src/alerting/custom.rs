//! Operators' own rule files, in `<data-dir>/alerts/*.yml`: each is checked with vmalert's
//! dry run before use. A good file is copied into the rule set vmalert reads; a bad one is
//! shown with vmalert's error, and the copy it last passed (if any) stays in force.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

/// The most custom rule files and the largest one.
const MAX_FILES: usize = 200;
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// One custom file as last checked.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CustomFile {
    pub name: String,
    /// `None`: in force. `Some`: refused, and why.
    pub error: Option<String>,
    #[serde(skip)]
    pub modified: Option<SystemTime>,
}

/// The copy vmalert reads for a custom file.
fn copy_path(rules_dir: &Path, name: &str) -> PathBuf {
    rules_dir.join(format!("custom-{name}"))
}

/// vmalert's complaint, from its dry run's output: the fatal line, without its prefix.
fn dry_run_error(output: &str) -> String {
    let line = output
        .lines()
        .find(|l| l.contains("\tfatal\t") || l.contains("\terror\t"))
        .unwrap_or_else(|| output.lines().last().unwrap_or("vmalert refused it"));
    let text = line.rsplit('\t').next().unwrap_or(line);
    let text = text.split_once("]: ").map_or(text, |(_, rest)| rest).trim();
    text.chars().take(1000).collect()
}

/// Checks `file` with `vmalert -dryRun`; the error is vmalert's.
pub async fn validate(vmalert: &Path, file: &Path) -> Result<(), String> {
    let out = tokio::process::Command::new(vmalert)
        .arg("-dryRun")
        .arg(format!("-rule={}", file.display()))
        .arg("-loggerOutput=stdout")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run vmalert: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Err(dry_run_error(&text))
}

/// Reads `path` once, checks what was read, and only then puts it in place as `copy` (by a
/// rename, so vmalert never reads half a file, nor one that changed after the check).
async fn take(vmalert: &Path, path: &Path, copy: &Path) -> Result<(), String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    // Not `*.yml` nor `*.yaml`: vmalert does not read it meanwhile.
    let trial = copy.with_extension("check");
    std::fs::write(&trial, &text).map_err(|e| format!("cannot copy it into the rule set: {e}"))?;
    let checked = validate(vmalert, &trial).await;
    if checked.is_ok() {
        if let Err(e) = std::fs::rename(&trial, copy) {
            let _ = std::fs::remove_file(&trial);
            return Err(format!("cannot copy it into the rule set: {e}"));
        }
    } else {
        let _ = std::fs::remove_file(&trial);
    }
    // vmalert names the file it read: the operator's own is meant.
    checked.map_err(|e| e.replace(&trial.display().to_string(), &path.display().to_string()))
}

/// Checks every file in `source` that changed since `known`, copies the good ones into
/// `rules_dir`, removes the copies of files that are gone, and returns the new list and
/// whether the rule set changed.
pub async fn sync(
    vmalert: &Path,
    source: &Path,
    rules_dir: &Path,
    known: &[CustomFile],
) -> (Vec<CustomFile>, bool) {
    let mut files = Vec::new();
    let mut changed = false;
    let mut names: Vec<(String, PathBuf, Option<SystemTime>, u64)> = std::fs::read_dir(source)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            let ok_name = (name.ends_with(".yml") || name.ends_with(".yaml"))
                && !name.starts_with('.')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            let meta = e.metadata().ok().filter(|m| m.is_file())?;
            ok_name.then(|| (name, e.path(), meta.modified().ok(), meta.len()))
        })
        .collect();
    names.sort();
    for (i, (name, path, modified, len)) in names.into_iter().enumerate() {
        if let Some(k) = known.iter().find(|k| k.name == name)
            && k.modified == modified
            && modified.is_some()
        {
            files.push(k.clone());
            continue;
        }
        let error = if i >= MAX_FILES {
            Some(format!(
                "more than {MAX_FILES} rule files; this one is not read"
            ))
        } else if len > MAX_FILE_BYTES {
            Some("larger than 1 MiB; not read".to_owned())
        } else {
            match take(vmalert, &path, &copy_path(rules_dir, &name)).await {
                Ok(()) => {
                    changed = true;
                    None
                }
                Err(e) => Some(e),
            }
        };
        if let Some(why) = &error {
            tracing::warn!(file = %name, error = %why, "a custom alert rule file was refused; its last good version stays in force");
        } else {
            tracing::info!(file = %name, "custom alert rule file loaded");
        }
        files.push(CustomFile {
            name,
            error,
            modified,
        });
    }
    for entry in std::fs::read_dir(rules_dir).into_iter().flatten().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if let Some(name) = file.strip_prefix("custom-")
            && !files.iter().any(|f| f.name == name)
        {
            let _ = std::fs::remove_file(entry.path());
            changed = true;
        }
    }
    (files, changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_is_vmalerts_own_words() {
        let out = "2026-12-07T11:00:10.954Z\tfatal\tVictoriaMetrics/app/vmalert/main.go:98\tfailed to parse [\"bad.yml\"]: errors(1): invalid group \"g\" in file \"bad.yml\": invalid expression";
        assert_eq!(
            dry_run_error(out),
            "errors(1): invalid group \"g\" in file \"bad.yml\": invalid expression"
        );
    }
}
