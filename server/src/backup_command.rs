//! `perch-server backup`: asks the running server (same --data-dir) for a backup over its
//! control socket and writes the archive as it arrives: to FILE.partial (0600), renamed
//! to FILE once the server says it is complete; or to standard output.

use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::backup::{self, control};
use crate::config::BackupArgs;

pub fn run(args: &BackupArgs) -> ExitCode {
    match backup_to(args) {
        Ok(summary) => {
            eprintln!("perch-server backup: {summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("perch-server backup: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The request for the server: the keys given here, checked before asking (none: the
/// server's own `--backup-*` keys).
fn request(args: &BackupArgs) -> Result<control::Request, String> {
    use perch_backup::{Encryption, ExposeSecret};
    Ok(match args.keys.encryption().map_err(|e| e.to_string())? {
        None => control::Request::default(),
        Some(Encryption::Recipients(recipients)) => control::Request {
            recipients,
            passphrase: None,
        },
        Some(Encryption::Passphrase(p)) => control::Request {
            recipients: Vec::new(),
            passphrase: Some(p.expose_secret().to_owned()),
        },
    })
}

/// Where the archive goes: standard output, or a file (in a folder, a new name).
enum Target {
    Stdout,
    File(PathBuf),
}

fn backup_to(args: &BackupArgs) -> Result<String, String> {
    let request = request(args)?;
    let target = if args.to == Path::new("-") {
        if std::io::stdout().is_terminal() {
            return Err("standard output is a terminal: redirect it to a file (> backup.age), or give --to FILE".into());
        }
        Target::Stdout
    } else if args.to.is_dir() {
        Target::File(
            args.to
                .join(backup::archive_name(&args.to, perch_time::unix_now())),
        )
    } else if args.to.exists() {
        return Err(format!(
            "{} exists: give a new name (or a folder), so that no backup is overwritten",
            args.to.display()
        ));
    } else {
        Target::File(args.to.clone())
    };
    let socket = control::socket_path(&args.data_dir);
    let mut stream = UnixStream::connect(&socket).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => format!(
            "no perch-server is running with --data-dir {} (no control socket at {}): start it, or give its --data-dir",
            args.data_dir.display(),
            socket.display()
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "{}: permission denied: run this as the server's user (docker exec does)",
            socket.display()
        ),
        _ => format!("{}: {e}", socket.display()),
    })?;
    let mut line = serde_json::to_vec(&request).unwrap_or_default();
    line.push(b'\n');
    stream
        .write_all(&line)
        .map_err(|e| format!("the server did not take the request: {e}"))?;
    match target {
        Target::Stdout => {
            let done = receive(&mut stream, &mut std::io::stdout().lock())?;
            Ok(summary(&done, "standard output"))
        }
        Target::File(path) => {
            let partial = PathBuf::from(format!("{}.partial", path.display()));
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&partial)
                .map_err(|e| format!("{}: {e}", partial.display()))?;
            let done = receive(&mut stream, &mut file).and_then(|done| {
                file.sync_all()
                    .and_then(|()| std::fs::rename(&partial, &path))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
                }
                Ok(done)
            });
            if done.is_err() {
                let _ = std::fs::remove_file(&partial);
            }
            Ok(summary(&done?, &path.display().to_string()))
        }
    }
}

/// Reads frames until the server's summary or error.
fn receive(stream: &mut UnixStream, out: &mut dyn Write) -> Result<control::Done, String> {
    let cut = "the server closed the connection before the backup was complete (see its log)";
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let mut head = [0u8; 5];
        stream.read_exact(&mut head).map_err(|_| cut.to_owned())?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if buf.len() < len {
            buf.resize(len, 0);
        }
        stream
            .read_exact(&mut buf[..len])
            .map_err(|_| cut.to_owned())?;
        let body = &buf[..len];
        match head[0] {
            control::DATA => out
                .write_all(body)
                .map_err(|e| format!("cannot write the backup: {e}"))?,
            control::DONE => {
                out.flush()
                    .map_err(|e| format!("cannot write the backup: {e}"))?;
                return serde_json::from_slice(body)
                    .map_err(|e| format!("the server's summary is unreadable: {e}"));
            }
            control::ERROR => return Err(String::from_utf8_lossy(body).into_owned()),
            _ => return Err("the server's answer is not understood".into()),
        }
    }
}

fn summary(done: &control::Done, to: &str) -> String {
    let a = &done.about;
    format!(
        "wrote {to}: {:.1} MiB, {} files in {:.1} s (users: {}, nodes: {}, API tokens: {}; metrics {})",
        done.bytes as f64 / (1024.0 * 1024.0),
        done.files,
        done.seconds,
        a["users"],
        a["nodes"],
        a["api_tokens"],
        if a["metrics"] == true {
            "included"
        } else {
            "not included: the external engine keeps them"
        },
    )
}
