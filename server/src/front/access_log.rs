//! The access log: one JSON line per response, to stdout and optionally to a file.
//!
//! Requests append their line to a shared buffer under a short lock; a writer thread takes
//! the buffer every 100 ms (sooner once 32 KiB are waiting) and writes it out. So a
//! request never waits for a terminal or a disk, and no request wakes a thread. If the
//! writer falls 8 MiB behind, further lines are dropped and counted
//! (`perch_access_log_dropped_total`) rather than held in memory.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use prometheus_client::metrics::counter::Counter;

const WRITE_EVERY: Duration = Duration::from_millis(100);
/// Small enough that a busy server writes often and briefly rather than in bursts that
/// hold up requests (about every 5 ms at 35,000 requests/s).
const WAKE_AT: usize = 32 * 1024;
const MAX_PENDING: usize = 8 * 1024 * 1024;

/// One response, as logged. The path never carries the query string (it may hold secrets).
#[derive(Debug)]
pub struct Entry<'a> {
    pub client: IpAddr,
    /// The signed-in user or token, when there is one.
    pub user: Option<&'a str>,
    pub method: &'a str,
    pub path: &'a str,
    pub proto: &'static str,
    pub status: u16,
    pub bytes: u64,
    pub duration: Duration,
}

impl Entry<'_> {
    /// Appends the JSON line (with its newline) for this entry, stamped `now`:
    /// `{"log":"access","time":"…","client":"…","user":"…","method":"…","path":"…",
    /// "proto":"…","status":…,"bytes":…,"duration_ms":…}` (`user` only when there is one,
    /// the time in UTC to the millisecond, the duration to the microsecond).
    fn write_line(&self, now: SystemTime, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"log\":\"access\",\"time\":\"");
        push_time(now, out);
        out.extend_from_slice(b"\",\"client\":\"");
        perch_upstream::push_ip(out, self.client);
        out.push(b'"');
        if let Some(user) = self.user {
            out.extend_from_slice(b",\"user\":");
            push_json_str(user, out);
        }
        out.extend_from_slice(b",\"method\":");
        push_json_str(self.method, out);
        out.extend_from_slice(b",\"path\":");
        push_json_str(self.path, out);
        out.extend_from_slice(b",\"proto\":\"");
        out.extend_from_slice(self.proto.as_bytes());
        out.extend_from_slice(b"\",\"status\":");
        push_u64(u64::from(self.status), out);
        out.extend_from_slice(b",\"bytes\":");
        push_u64(self.bytes, out);
        let micros = u64::try_from(self.duration.as_micros()).unwrap_or(u64::MAX);
        out.extend_from_slice(b",\"duration_ms\":");
        push_u64(micros / 1000, out);
        push_thousandths(micros % 1000, out);
        out.extend_from_slice(b"}\n");
    }
}

fn push_u64(n: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends `.` and `n` (below 1000) as three digits: the fraction of a millisecond count.
fn push_thousandths(n: u64, out: &mut Vec<u8>) {
    let n = n % 1000;
    out.extend_from_slice(&[
        b'.',
        b'0' + (n / 100) as u8,
        b'0' + (n / 10 % 10) as u8,
        b'0' + (n % 10) as u8,
    ]);
}

/// `now` as RFC 3339 in UTC to the millisecond: `2026-11-24T14:05:09.042Z`. The part up to
/// the second is formatted once a second per thread.
fn push_time(now: SystemTime, out: &mut Vec<u8>) {
    thread_local! {
        static SECOND: std::cell::Cell<(u64, [u8; 19])> = const { std::cell::Cell::new((u64::MAX, [0; 19])) };
    }
    let since = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let second = since.as_secs();
    match SECOND.get() {
        (cached, text) if cached == second => out.extend_from_slice(&text),
        _ => {
            let start = out.len();
            let text = i64::try_from(second).map_or_else(|_| String::new(), perch_time::rfc3339);
            out.extend_from_slice(text.trim_end_matches('Z').as_bytes());
            // Kept only in the usual 19-byte shape (a five-digit year is written, not kept).
            if let Ok(text) = <[u8; 19]>::try_from(&out[start..]) {
                SECOND.set((second, text));
            }
        }
    }
    push_thousandths(u64::from(since.subsec_millis()), out);
    out.push(b'Z');
}

/// `s` as a JSON string: quotes, backslashes and control characters escaped.
fn push_json_str(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f | 0x7f => &[],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
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
    /// Starts the writer; `file` is opened now, so a bad path fails start. A new file is
    /// made 0640 (for a log shipper in the group), whatever the process's mask; an existing
    /// one keeps its mode.
    pub fn start(file: Option<&Path>, dropped: Counter) -> io::Result<Self> {
        let file = file
            .map(|path| -> io::Result<std::fs::File> {
                match OpenOptions::new()
                    .create_new(true)
                    .append(true)
                    .mode(0o640)
                    .open(path)
                {
                    Ok(file) => {
                        file.set_permissions(std::fs::Permissions::from_mode(0o640))?;
                        Ok(file)
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        OpenOptions::new().append(true).open(path)
                    }
                    Err(e) => Err(e),
                }
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
        let now = SystemTime::now();
        let mut pending = self.lock();
        let before = pending.lines.len();
        entry.write_line(now, &mut pending.lines);
        let after = pending.lines.len();
        if after > MAX_PENDING {
            pending.lines.truncate(before);
            drop(pending);
            self.dropped.inc();
            return;
        }
        drop(pending);
        if before < WAKE_AT && after >= WAKE_AT {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn line(entry: &Entry<'_>, now: SystemTime) -> serde_json::Value {
        let mut out = Vec::new();
        entry.write_line(now, &mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn lines_are_json_with_every_field() {
        let entry = Entry {
            client: "2001:db8::1".parse().unwrap(),
            user: Some("ann \"the\" admin\\\n\u{1}é"),
            method: "GET",
            path: "/app/a\"b\\c\td",
            proto: "HTTP/2",
            status: 204,
            bytes: 1234,
            duration: Duration::from_micros(12_345_678),
        };
        // 2026-11-24T14:05:09.042Z
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_529_109_042);
        let v = line(&entry, now);
        assert_eq!(v["log"], "access");
        assert_eq!(v["time"], "2026-11-24T14:05:09.042Z");
        assert_eq!(v["client"], "2001:db8::1");
        assert_eq!(v["user"], "ann \"the\" admin\\\n\u{1}é");
        assert_eq!(v["method"], "GET");
        assert_eq!(v["path"], "/app/a\"b\\c\td");
        assert_eq!(v["proto"], "HTTP/2");
        assert_eq!(v["status"], 204);
        assert_eq!(v["bytes"], 1234);
        assert_eq!(v["duration_ms"], 12345.678);
        // The next second, and no user.
        let later = Entry {
            user: None,
            duration: Duration::from_micros(7),
            ..entry
        };
        let v = line(&later, now + Duration::from_millis(1_000));
        assert_eq!(v["time"], "2026-11-24T14:05:10.042Z");
        assert!(v.get("user").is_none());
        assert_eq!(v["duration_ms"], 0.007);
    }
}
