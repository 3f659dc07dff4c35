//! The access log: one JSON line per response, to stdout and optionally to a file.
//!
//! Lines are handed to a writer thread through a bounded queue, so a slow terminal or disk
//! never stalls a request; when the queue is full a line is dropped and counted
//! (`perch_access_log_dropped_total`). The writer flushes whenever the queue runs empty.

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use serde::Serialize;

const QUEUE: usize = 16 * 1024;

/// One response, as logged. The path never carries the query string (it may hold secrets).
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    pub time: String,
    pub client: IpAddr,
    pub method: &'a str,
    pub path: &'a str,
    pub proto: &'static str,
    pub status: u16,
    pub bytes: u64,
    pub duration_ms: f64,
}

#[derive(Serialize)]
struct Line<'a> {
    log: &'static str,
    #[serde(flatten)]
    entry: &'a Entry<'a>,
}

enum Msg {
    Line(Vec<u8>),
    Flush(mpsc::Sender<()>),
}

#[derive(Debug, Clone)]
pub struct AccessLog {
    tx: SyncSender<Msg>,
    dropped: Counter,
}

impl AccessLog {
    /// Starts the writer; `file` is opened (created 0640) now, so a bad path fails start.
    pub fn start(file: Option<&Path>, dropped: Counter) -> io::Result<Self> {
        let file = file
            .map(|path| {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o640)
                    .open(path)
                    .map(BufWriter::new)
            })
            .transpose()?;
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || writer(rx, file))?;
        Ok(Self { tx, dropped })
    }

    pub fn log(&self, entry: &Entry<'_>) {
        let mut line = Vec::with_capacity(256);
        if serde_json::to_writer(
            &mut line,
            &Line {
                log: "access",
                entry,
            },
        )
        .is_err()
        {
            return;
        }
        line.push(b'\n');
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.tx.try_send(Msg::Line(line))
        {
            self.dropped.inc();
        }
    }

    /// Waits (up to a second) until every line logged so far is written out.
    pub fn flush(&self) {
        let (ack_tx, ack_rx) = mpsc::channel();
        if self.tx.send(Msg::Flush(ack_tx)).is_ok() {
            let _ = ack_rx.recv_timeout(Duration::from_secs(1));
        }
    }
}

fn writer(rx: Receiver<Msg>, mut file: Option<BufWriter<std::fs::File>>) {
    let mut out = BufWriter::with_capacity(64 * 1024, io::stdout());
    let flush = |out: &mut BufWriter<io::Stdout>, file: &mut Option<BufWriter<std::fs::File>>| {
        let _ = out.flush();
        if let Some(f) = file.as_mut() {
            let _ = f.flush();
        }
    };
    while let Ok(mut msg) = rx.recv() {
        loop {
            match msg {
                Msg::Line(line) => {
                    let _ = out.write_all(&line);
                    if let Some(f) = file.as_mut() {
                        let _ = f.write_all(&line);
                    }
                }
                Msg::Flush(ack) => {
                    flush(&mut out, &mut file);
                    let _ = ack.send(());
                }
            }
            match rx.try_recv() {
                Ok(next) => msg = next,
                Err(_) => break,
            }
        }
        flush(&mut out, &mut file);
    }
}
