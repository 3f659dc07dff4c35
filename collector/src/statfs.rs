//! statfs(2) with a time limit. A stat of a dead NFS server or a hung FUSE daemon can
//! block for ever in the kernel; node_exporter runs it beside a timer and stops
//! watching a mount point that did not answer until it does. Here a worker thread does
//! the call; when it does not answer in time it is set aside (still blocked), the mount
//! point is reported as failing until that call returns, and a new worker takes over.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::thread;
use std::time::Duration;

/// At most this many workers may be blocked at once; past it, stats are refused
/// rather than piling up threads.
const MAX_STUCK: usize = 8;

/// What statfs(2) says about one file system, converted as node_exporter converts it
/// (block counts times `f_bsize`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FsStats {
    pub size_bytes: f64,
    pub free_bytes: f64,
    pub avail_bytes: f64,
    pub files: f64,
    pub files_free: f64,
    /// The mount point is a file, not a folder: a single file bind-mounted (as Docker
    /// mounts /etc/hosts, /etc/hostname and /etc/resolv.conf into every container).
    pub is_file: bool,
}

/// Why a stat gave no numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatfsError {
    /// statfs(2) failed.
    #[error("statfs: {0}")]
    Errno(nix::errno::Errno),
    /// It did not answer within the timeout; the mount point is skipped until it does.
    #[error("statfs did not answer within {0:?}; skipped until it does")]
    Timeout(Duration),
    /// An earlier stat of this path has still not answered.
    #[error("an earlier statfs has not answered yet")]
    StillStuck,
    /// Too many stats are blocked at once, or no worker thread could be started.
    #[error("no statfs worker available ({0})")]
    NoWorker(&'static str),
}

type Reply = (PathBuf, Result<FsStats, nix::errno::Errno>);

#[derive(Debug)]
struct Worker {
    requests: SyncSender<PathBuf>,
    replies: Receiver<Reply>,
}

#[derive(Debug)]
struct StuckWorker {
    worker: Worker,
    path: PathBuf,
}

/// Runs statfs(2) on a worker thread with a time limit. Not shared between threads.
#[derive(Debug)]
pub(crate) struct Statter {
    timeout: Duration,
    idle: Option<Worker>,
    stuck: Vec<StuckWorker>,
    /// A path buffer handed back and forth with the worker, so a stat allocates nothing.
    spare: Option<PathBuf>,
}

impl Statter {
    pub(crate) fn new(timeout: Duration) -> Self {
        Statter {
            timeout,
            idle: None,
            stuck: Vec::new(),
            spare: Some(PathBuf::new()),
        }
    }

    /// Takes back the workers whose blocked call has returned. Call once per collection.
    pub(crate) fn reap(&mut self) {
        let mut i = 0;
        while i < self.stuck.len() {
            match self.stuck[i].worker.replies.try_recv() {
                Err(TryRecvError::Empty) => i += 1,
                Ok(_) => {
                    let back = self.stuck.swap_remove(i);
                    if self.idle.is_none() {
                        self.idle = Some(back.worker);
                    }
                }
                Err(TryRecvError::Disconnected) => {
                    self.stuck.swap_remove(i);
                }
            }
        }
    }

    /// statfs(2) of `root` joined with `mount_point` (whose leading `/` is ignored).
    pub(crate) fn stat(
        &mut self,
        root: &std::path::Path,
        mount_point: &str,
    ) -> Result<FsStats, StatfsError> {
        let mut path = self.spare.take().unwrap_or_default();
        path.clear();
        path.push(root);
        let relative = mount_point.trim_start_matches('/');
        if !relative.is_empty() {
            path.push(relative);
        }
        if self.stuck.iter().any(|s| s.path == path) {
            self.spare = Some(path);
            return Err(StatfsError::StillStuck);
        }
        let worker = match self.idle.take() {
            Some(w) => w,
            None if self.stuck.len() >= MAX_STUCK => {
                self.spare = Some(path);
                return Err(StatfsError::NoWorker("too many blocked statfs calls"));
            }
            None => match spawn_worker() {
                Some(w) => w,
                None => {
                    self.spare = Some(path);
                    return Err(StatfsError::NoWorker("cannot start a thread"));
                }
            },
        };
        if let Err(mpsc::SendError(p)) = worker.requests.send(path) {
            // The worker is gone; the next stat starts another.
            self.spare = Some(p);
            return Err(StatfsError::NoWorker("the worker thread ended"));
        }
        match worker.replies.recv_timeout(self.timeout) {
            Ok((p, result)) => {
                self.spare = Some(p);
                self.idle = Some(worker);
                result.map_err(StatfsError::Errno)
            }
            Err(RecvTimeoutError::Timeout) => {
                let mut path = PathBuf::from(root);
                if !relative.is_empty() {
                    path.push(relative);
                }
                self.stuck.push(StuckWorker { worker, path });
                Err(StatfsError::Timeout(self.timeout))
            }
            Err(RecvTimeoutError::Disconnected) => {
                Err(StatfsError::NoWorker("the worker thread ended"))
            }
        }
    }
}

fn spawn_worker() -> Option<Worker> {
    let (requests, rx) = mpsc::sync_channel::<PathBuf>(1);
    let (tx, replies) = mpsc::sync_channel::<Reply>(1);
    thread::Builder::new()
        .name("perch-statfs".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            while let Ok(path) = rx.recv() {
                let result = statfs(&path);
                if tx.send((path, result)).is_err() {
                    break;
                }
            }
        })
        .ok()?;
    Some(Worker { requests, replies })
}

fn statfs(path: &std::path::Path) -> Result<FsStats, nix::errno::Errno> {
    let s = nix::sys::statfs::statfs(path)?;
    let bsize = s.block_size() as f64;
    // On this worker too: a stat of a hung mount point blocks as statfs does.
    let is_file = std::fs::metadata(path).is_ok_and(|m| m.is_file());
    Ok(FsStats {
        is_file,
        size_bytes: s.blocks() as f64 * bsize,
        free_bytes: s.blocks_free() as f64 * bsize,
        avail_bytes: s.blocks_available() as f64 * bsize,
        files: s.files() as f64,
        files_free: s.files_free() as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn stats_root_and_reports_errors() {
        let mut s = Statter::new(Duration::from_secs(5));
        let root = s.stat(Path::new("/"), "/").unwrap();
        assert!(root.size_bytes > 0.0 && root.avail_bytes <= root.size_bytes);
        assert_eq!(
            s.stat(Path::new("/"), "/no/such/mount/point"),
            Err(StatfsError::Errno(nix::errno::Errno::ENOENT))
        );
        // The worker is reused: still one idle worker, nothing stuck.
        assert!(s.idle.is_some() && s.stuck.is_empty());
    }

    #[test]
    fn a_blocked_stat_times_out_and_is_skipped_until_it_answers() {
        // A worker blocked in the kernel looks, from here, like a worker that does not
        // reply: stand one in whose reply the test sends when it chooses.
        let (requests, _rx) = mpsc::sync_channel::<PathBuf>(1);
        let (tx, replies) = mpsc::sync_channel::<Reply>(1);
        let mut s = Statter::new(Duration::from_millis(50));
        s.idle = Some(Worker { requests, replies });
        assert_eq!(
            s.stat(Path::new("/"), "/"),
            Err(StatfsError::Timeout(Duration::from_millis(50)))
        );
        assert_eq!(s.stuck.len(), 1);
        assert_eq!(s.stat(Path::new("/"), "/"), Err(StatfsError::StillStuck));
        // Another mount point gets a fresh worker.
        assert!(s.stat(Path::new("/"), "/proc").is_ok());
        // The blocked call returns: the mount point is watched again.
        tx.send((PathBuf::from("/"), Err(nix::errno::Errno::EIO)))
            .unwrap();
        s.reap();
        assert!(s.stuck.is_empty());
        assert!(s.stat(Path::new("/"), "/").is_ok());
    }
}
