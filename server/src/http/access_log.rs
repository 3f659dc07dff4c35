//! The access log: one JSON line per response, to stdout and optionally to a file.
//!
//! Requests append their line to a shared buffer under a short lock; a writer thread takes
//! the buffer every 100 ms (sooner once 256 KiB are waiting) and writes it out. So a
//! request never waits for a terminal or a disk, and no request wakes a thread. If the
//! writer falls 8 MiB behind, further lines are dropped and counted
//! (`perch_access_log_dropped_total`) rather than held in memory.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use serde::Serialize;

const WRITE_EVERY: Duration = Duration::from_millis(100);
const WAKE_AT: usize = 256 * 1024;
const MAX_PENDING: usize = 8 * 1024 * 1024;

/// One response, as logged. The path never carries the query string (it may hold secrets).
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    pub time: String,
    pub client: IpAddr,
    /// The signed-in user or token, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
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

#[derive(Debug, Default)]
struct Pending {
    lines: Vec<u8>,
    flush_acks: Vec<mpsc::Sender<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
}

#[derive(Debug, Clone)]
pub struct AccessLog {
    shared: Arc<Shared>,
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
            })
            .transpose()?;
        let shared = Arc::new(Shared::default());
        let theirs = shared.clone();
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || writer(&theirs, file))?;
        Ok(Self { shared, dropped })
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
        let mut pending = self.lock();
        if pending.lines.len() + line.len() > MAX_PENDING {
            drop(pending);
            self.dropped.inc();
            return;
        }
        let was_below = pending.lines.len() < WAKE_AT;
        pending.lines.extend_from_slice(&line);
        let now_above = pending.lines.len() >= WAKE_AT;
        drop(pending);
        if was_below && now_above {
            self.shared.wake.notify_one();
        }
    }

    /// Waits (up to a second) until every line logged so far is written out.
    pub fn flush(&self) {
        let (ack_tx, ack_rx) = mpsc::channel();
        self.lock().flush_acks.push(ack_tx);
        self.shared.wake.notify_one();
        let _ = ack_rx.recv_timeout(Duration::from_secs(1));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn writer(shared: &Shared, mut file: Option<std::fs::File>) {
    let mut spare = Vec::new();
    loop {
        let acks = {
            let mut pending = shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if pending.lines.len() < WAKE_AT && pending.flush_acks.is_empty() {
                pending = shared
                    .wake
                    .wait_timeout(pending, WRITE_EVERY)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            std::mem::swap(&mut pending.lines, &mut spare);
            std::mem::take(&mut pending.flush_acks)
        };
        if !spare.is_empty() {
            let _ = io::stdout().lock().write_all(&spare);
            if let Some(f) = file.as_mut() {
                let _ = f.write_all(&spare);
            }
            spare.clear();
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}
