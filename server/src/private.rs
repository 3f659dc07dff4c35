//! Perch's own files under the data directory are for its user alone: the user store holds
//! argon2 hashes and session keys, the engine's folder every series. New files are made
//! private by the process's file mode mask (the bundled engine inherits it), and what an
//! older install left readable to others is corrected at start, with a log line.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, umask};

/// The folders under the data directory that Perch and its engine own, Perch's first.
pub const OWNED: &[&str] = &["perch", "victoriametrics"];

/// What [`make_private`] changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Corrected {
    pub folders: usize,
    pub files: usize,
}

/// Sets the file mode mask to 077, creates Perch's own folder (0700) and takes group and
/// other permissions off everything in the owned folders that exist (the engine's is made
/// by the engine's supervisor, under the same mask, only when an engine is bundled).
/// Symbolic links are left alone, never followed.
pub fn make_private(data_dir: &Path) -> io::Result<Corrected> {
    umask(Mode::from_bits_truncate(0o077));
    std::fs::create_dir_all(data_dir.join(OWNED[0]))?;
    let mut corrected = Corrected::default();
    for name in OWNED {
        let dir = data_dir.join(name);
        if dir.exists() {
            walk(dir, &mut corrected)?;
        }
    }
    Ok(corrected)
}

fn walk(root: PathBuf, corrected: &mut Corrected) -> io::Result<()> {
    let mut pending = vec![root];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.file_type().is_symlink() {
            continue;
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o700))?;
            if meta.is_dir() {
                corrected.folders += 1;
            } else {
                corrected.files += 1;
            }
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn an_older_install_is_made_private_and_new_files_are_born_private() {
        let data = tempfile::tempdir().unwrap();
        let db = data.path().join("perch/db");
        std::fs::create_dir_all(&db).unwrap();
        std::fs::write(db.join("conf"), "x").unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(db.join("conf"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let engine = data.path().join("victoriametrics");
        std::fs::create_dir_all(&engine).unwrap();
        std::fs::set_permissions(&engine, std::fs::Permissions::from_mode(0o755)).unwrap();
        let outside = data.path().join("dashboards");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o755)).unwrap();

        let corrected = make_private(data.path()).unwrap();
        assert!(
            corrected.files >= 1 && corrected.folders >= 1,
            "{corrected:?}"
        );
        assert_eq!(mode(&db), 0o700);
        assert_eq!(mode(&db.join("conf")), 0o600);
        assert_eq!(mode(&data.path().join("victoriametrics")), 0o700);
        assert_eq!(
            mode(&outside),
            0o755,
            "only Perch's own folders are touched"
        );

        std::fs::write(db.join("new"), "y").unwrap();
        assert_eq!(mode(&db.join("new")), 0o600);
        assert_eq!(make_private(data.path()).unwrap(), Corrected::default());

        // With an external engine, no engine folder is made.
        let bare = tempfile::tempdir().unwrap();
        make_private(bare.path()).unwrap();
        assert_eq!(mode(&bare.path().join("perch")), 0o700);
        assert!(!bare.path().join("victoriametrics").exists());
    }
}
