//! The control socket, `<data>/perch/control.sock`: how `perch-server backup` (as in
//! `docker exec perch perch-server backup --to ...`) asks the running server for a backup.
//! Only the server's own user (or root) may connect: the socket is 0600 in a 0700 folder,
//! and the peer's uid is checked.
//!
//! The client sends one JSON line ([`Request`]); the server answers with frames of one
//! kind byte and a big-endian u32 length: `D` archive bytes, then `F` the summary as JSON
//! ([`Done`]), or `E` an error's text at any point.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};

use super::{Backups, Trigger};
use perch_backup::Encryption;

/// The socket's name under `<data>/perch`.
pub const SOCKET: &str = "control.sock";
/// Frame kinds.
pub const DATA: u8 = b'D';
pub const DONE: u8 = b'F';
pub const ERROR: u8 = b'E';
/// Largest request line.
const MAX_REQUEST: usize = 64 * 1024;
/// How long a client has to send its request line.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Archive bytes are sent in frames of up to this much.
const CHUNK: usize = 256 * 1024;

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("perch").join(SOCKET)
}

/// What the client asks for: a backup to these recipients or this passphrase, or, with
/// neither, to what the server's `--backup-*` flags name.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Request {
    #[serde(default)]
    pub recipients: Vec<String>,
    #[serde(default)]
    pub passphrase: Option<String>,
}

/// The summary after the last archive byte.
#[derive(Debug, Serialize, Deserialize)]
pub struct Done {
    pub bytes: u64,
    pub files: usize,
    pub seconds: f64,
    pub created_at: i64,
    pub about: serde_json::Value,
}

/// Listens on the control socket until `stop` turns true.
pub fn spawn(
    backups: Arc<Backups>,
    data_dir: &Path,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let path = socket_path(data_dir);
    // A socket left by a server that was killed: the store's lock proves none runs now.
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(&path)?;
    let owner = std::fs::metadata(&path)?.uid();
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let allowed = stream
                        .peer_cred()
                        .is_ok_and(|c| c.uid() == owner || c.uid() == 0);
                    if !allowed {
                        tracing::warn!("refused a control-socket connection from another user");
                        continue;
                    }
                    tokio::spawn(serve(backups.clone(), stream));
                }
            }
        }
        let _ = std::fs::remove_file(&path);
    }))
}

async fn serve(backups: Arc<Backups>, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    let read = tokio::time::timeout(
        REQUEST_TIMEOUT,
        BufReader::new(read)
            .take(MAX_REQUEST as u64)
            .read_until(b'\n', &mut line),
    )
    .await;
    let request = match read {
        Ok(Ok(_)) => serde_json::from_slice::<Request>(&line)
            .map_err(|e| format!("the request is not understood: {e}")),
        Ok(Err(e)) => Err(format!("the request could not be read: {e}")),
        Err(_) => Err("no request came within 10 s".to_owned()),
    };
    let encryption = request.and_then(|r| {
        if let Some(p) = r.passphrase {
            Encryption::passphrase(p).map_err(|e| e.to_string())
        } else if !r.recipients.is_empty() {
            Encryption::to_recipients(&r.recipients).map_err(|e| e.to_string())
        } else {
            backups.encryption().cloned().ok_or_else(|| {
                "name who can open the backup: --recipient (age1... or an SSH public key), --recipients-file or --passphrase-file (the server has no --backup-recipient of its own)".to_owned()
            })
        }
    });
    let encryption = match encryption {
        Ok(e) => e,
        Err(why) => {
            let _ = frame(&mut write, ERROR, why.as_bytes()).await;
            return;
        }
    };
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(8);
    let sender = tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            if frame(&mut write, DATA, &chunk).await.is_err() {
                return None;
            }
        }
        Some(write)
    });
    // The writer is dropped once the archive is written: the sender then ends when it has
    // sent the rest.
    let result = backups
        .take(&encryption, ChannelWriter::new(tx), Trigger::Command)
        .await
        .map(|(taken, writer)| {
            drop(writer);
            taken
        });
    let Ok(Some(mut write)) = sender.await else {
        return;
    };
    let _ = match result {
        Ok(taken) => {
            let done = Done {
                bytes: taken.bytes,
                files: taken.manifest.files.len(),
                seconds: taken.duration.as_secs_f64(),
                created_at: taken.manifest.created_at,
                about: taken.manifest.about,
            };
            frame(
                &mut write,
                DONE,
                &serde_json::to_vec(&done).unwrap_or_default(),
            )
            .await
        }
        Err(e) => frame(&mut write, ERROR, e.to_string().as_bytes()).await,
    };
    let _ = write.shutdown().await;
}

async fn frame(
    out: &mut (impl tokio::io::AsyncWrite + Unpin),
    kind: u8,
    bytes: &[u8],
) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.write_all(&[kind]).await?;
    out.write_all(&len.to_be_bytes()).await?;
    out.write_all(bytes).await
}

/// A blocking writer whose bytes go to an async task in chunks; it fails once that task
/// is gone (the client went away), which stops the backup.
pub struct ChannelWriter {
    tx: mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    pub fn new(tx: mpsc::Sender<Vec<u8>>) -> Self {
        Self {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client left"))
    }
}
