//! `perch-server restore`: a backup into a data directory. The whole archive is read and
//! checked first (age's authentication of every chunk, each file against the manifest);
//! only then is it written, into a hidden folder of the data directory, the user store
//! rebuilt from its records, and each part moved into place. A failure at any point
//! removes what was written.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use perch_auth::{Imported, Store, StoreError};
use perch_backup::{Identities, Manifest};

use crate::backup::contents::{QAN_TEXTS, STORE_RECORDS};
use crate::backup::control;
use crate::config::RestoreArgs;

pub fn run(args: &RestoreArgs) -> ExitCode {
    match restore(args) {
        Ok(summary) => {
            eprintln!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("perch-server restore: {e}");
            ExitCode::FAILURE
        }
    }
}

fn restore(args: &RestoreArgs) -> Result<String, String> {
    // What is written is Perch's alone, as the server makes it (see `private`).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let identities = match (&args.identity, &args.passphrase_file) {
        (Some(file), _) => Identities::key_file(file),
        (None, Some(file)) => Identities::passphrase_file(file),
        (None, None) => return Err("give --identity KEYFILE or --passphrase-file FILE".into()),
    }
    .map_err(|e| e.to_string())?;
    let dir = &args.data_dir;
    refuse_in_use(dir)?;
    let held = held_entries(dir);
    if !held.is_empty() && !args.force {
        return Err(format!(
            "{} is not empty (it holds {}): restore into an empty or new directory, or add --force to replace Perch's data in it",
            dir.display(),
            held.join(", ")
        ));
    }
    eprintln!(
        "perch-server restore: checking the whole of {} ...",
        args.from.display()
    );
    let manifest = perch_backup::verify(&args.from, &identities).map_err(|e| e.to_string())?;
    eprintln!(
        "perch-server restore: it checks out ({} files, taken {}); writing it into {}",
        manifest.files.len(),
        utc(manifest.created_at),
        dir.display()
    );
    let existed = dir.exists();
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let staging = dir.join(format!(".perch-restore-{}", std::process::id()));
    let written = write_staged(args, &identities, &staging);
    let result = written.and_then(|imported| {
        move_into_place(&staging, dir)?;
        Ok(imported)
    });
    let _ = std::fs::remove_dir_all(&staging);
    if result.is_err() && !existed {
        let _ = std::fs::remove_dir(dir);
    }
    let imported = result?;
    Ok(report(&manifest, &imported, dir))
}

/// A data directory a server is using: its store is locked, or its control socket answers.
fn refuse_in_use(dir: &Path) -> Result<(), String> {
    let in_use = || {
        Err(format!(
            "{} is in use by a running perch-server: stop it first (restore never writes under a running server)",
            dir.display()
        ))
    };
    if std::os::unix::net::UnixStream::connect(control::socket_path(dir)).is_ok() {
        return in_use();
    }
    let db = dir.join("perch").join("db");
    if db.exists() {
        match Store::open(&db) {
            Err(StoreError::Locked) => return in_use(),
            Ok(store) => drop(store),
            Err(_) => {} // a damaged store is replaced with --force
        }
    }
    Ok(())
}

/// What a data directory holds (but a file system's lost+found).
fn held_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lost+found")
        .collect();
    names.sort();
    names
}

/// Extracts the archive into `staging` (checked again as it is read) and builds the user
/// store from its records there.
fn write_staged(
    args: &RestoreArgs,
    identities: &Identities,
    staging: &Path,
) -> Result<Imported, String> {
    perch_backup::extract(&args.from, identities, staging).map_err(|e| e.to_string())?;
    let records_file = staging.join(STORE_RECORDS);
    let records = std::fs::read(&records_file)
        .map_err(|e| format!("the backup holds no user store ({e})"))?;
    let imported = Store::import(&staging.join("perch").join("db"), &records)
        .map_err(|e| format!("the user store: {e}"))?;
    std::fs::remove_file(&records_file).map_err(|e| format!("{}: {e}", records_file.display()))?;
    // Backups before Query Analytics hold no texts.
    let texts_file = staging.join(QAN_TEXTS);
    if let Ok(texts) = std::fs::read(&texts_file) {
        perch_qan::Store::import(&staging.join("qan"), &texts)
            .map_err(|e| format!("Query Analytics' texts: {e}"))?;
        std::fs::remove_file(&texts_file).map_err(|e| format!("{}: {e}", texts_file.display()))?;
    }
    Ok(imported)
}

/// Replaces each top-level part of `dir` with the staged one.
fn move_into_place(staging: &Path, dir: &Path) -> Result<(), String> {
    let entries = std::fs::read_dir(staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let target: PathBuf = dir.join(entry.file_name());
        if target.exists() {
            let removed = if target.is_dir() {
                std::fs::remove_dir_all(&target)
            } else {
                std::fs::remove_file(&target)
            };
            removed.map_err(|e| format!("{}: cannot replace it: {e}", target.display()))?;
        }
        std::fs::rename(entry.path(), &target).map_err(|e| format!("{}: {e}", target.display()))?;
    }
    // A setup code of the old install means nothing for the restored users.
    let _ = std::fs::remove_file(dir.join("setup-code"));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("{}: {e}", dir.display()))
}

fn report(manifest: &Manifest, imported: &Imported, dir: &Path) -> String {
    let config = manifest
        .files
        .iter()
        .find(|f| f.path.starts_with("config/"))
        .map(|f| format!(" --config {}", dir.join(&f.path).display()))
        .unwrap_or_default();
    let metrics = if manifest.about["metrics"] == true {
        format!("the metrics up to {}", utc(manifest.created_at))
    } else {
        "no metrics (the backup was taken with an external engine, which keeps them)".to_owned()
    };
    format!(
        "perch-server restore: restored into {}: {}, {}, {}, the certificates and local CA, and {metrics}.\n\
         Sessions are not restored: everyone signs in again.\n\
         Start perch-server with --data-dir {}{config}.",
        dir.display(),
        count(imported.users, "user"),
        count(imported.nodes, "node"),
        count(imported.api_tokens, "API token"),
        dir.display(),
    )
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn utc(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| at.to_string())
}
