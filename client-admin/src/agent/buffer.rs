//! The on-disk buffer of batches the server has not accepted yet: a directory of files,
//! one remote-write body each, named by an increasing sequence number. Bounded in bytes:
//! when a new batch does not fit, the oldest are dropped (and counted). Batches leave in
//! the order they came (a Prometheus receiver refuses samples older than what it holds).
//! Survives a restart of the agent: the directory is read again at start.

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{}: {error}", path.display())]
pub struct BufferError {
    pub path: PathBuf,
    pub error: std::io::Error,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    seq: u64,
    bytes: u64,
}

#[derive(Debug)]
pub struct DiskBuffer {
    dir: PathBuf,
    max_bytes: u64,
    entries: VecDeque<Entry>,
    total: u64,
    next_seq: u64,
    /// Batches dropped to stay within `max_bytes`, since start.
    pub dropped: u64,
}

fn file_name(seq: u64) -> String {
    format!("{seq:020}.rw")
}

impl DiskBuffer {
    /// Opens (creating, mode 0700) the buffer directory and finds the batches already in it.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, BufferError> {
        let err = |error| BufferError {
            path: dir.to_owned(),
            error,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err)?;
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(err)? {
            let entry = entry.map_err(err)?;
            let name = entry.file_name();
            let Some(seq) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".rw"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                // A temporary file from a write cut short.
                let _ = std::fs::remove_file(entry.path());
                continue;
            };
            let bytes = entry.metadata().map_err(err)?.len();
            entries.push(Entry { seq, bytes });
        }
        entries.sort_by_key(|e| e.seq);
        let total = entries.iter().map(|e| e.bytes).sum();
        let next_seq = entries.last().map_or(0, |e| e.seq + 1);
        Ok(Self {
            dir: dir.to_owned(),
            max_bytes,
            entries: entries.into(),
            total,
            next_seq,
            dropped: 0,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.total
    }

    /// Appends a batch, dropping the oldest ones while it would not fit. A batch larger
    /// than the whole buffer is dropped itself.
    pub fn push(&mut self, body: &[u8]) -> Result<(), BufferError> {
        let size = body.len() as u64;
        if size > self.max_bytes {
            self.dropped += 1;
            return Ok(());
        }
        while self.total + size > self.max_bytes {
            self.drop_oldest()?;
        }
        let seq = self.next_seq;
        let path = self.dir.join(file_name(seq));
        let tmp = self.dir.join(format!("{seq:020}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(body)?;
            f.sync_data()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|error| {
            let _ = std::fs::remove_file(&tmp);
            BufferError {
                path: path.clone(),
                error,
            }
        })?;
        self.next_seq += 1;
        self.entries.push_back(Entry { seq, bytes: size });
        self.total += size;
        Ok(())
    }

    /// The oldest batch, without removing it.
    pub fn front(&self) -> Result<Option<Vec<u8>>, BufferError> {
        let Some(e) = self.entries.front() else {
            return Ok(None);
        };
        let path = self.dir.join(file_name(e.seq));
        std::fs::read(&path)
            .map(Some)
            .map_err(|error| BufferError { path, error })
    }

    /// Removes the oldest batch (after the server accepted it).
    pub fn pop(&mut self) -> Result<(), BufferError> {
        if let Some(e) = self.entries.pop_front() {
            self.total -= e.bytes;
            let path = self.dir.join(file_name(e.seq));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(BufferError { path, error }),
            }
        }
        Ok(())
    }

    fn drop_oldest(&mut self) -> Result<(), BufferError> {
        self.pop()?;
        self.dropped += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_bounded_and_persistent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("buf");
        let mut b = DiskBuffer::open(&path, 100).unwrap();
        for i in 0..5u8 {
            b.push(&[i; 30]).unwrap();
        }
        // 5 x 30 bytes into 100: the two oldest were dropped.
        assert_eq!((b.len(), b.bytes(), b.dropped), (3, 90, 2));
        assert_eq!(b.front().unwrap().unwrap(), vec![2u8; 30]);
        b.pop().unwrap();
        drop(b);
        // A restart finds what is left, in order, and keeps numbering after it.
        std::fs::write(path.join("00000000000000000009.tmp"), b"half").unwrap();
        let mut b = DiskBuffer::open(&path, 100).unwrap();
        assert_eq!((b.len(), b.bytes()), (2, 60));
        b.push(&[9; 10]).unwrap();
        let mut seen = Vec::new();
        while let Some(body) = b.front().unwrap() {
            seen.push(body[0]);
            b.pop().unwrap();
        }
        assert_eq!(seen, vec![3, 4, 9]);
        assert!(b.is_empty());
        assert_eq!(std::fs::read_dir(&path).unwrap().count(), 0);
        // Too large for the whole buffer: dropped, counted.
        b.push(&[0; 101]).unwrap();
        assert_eq!((b.len(), b.dropped), (0, 1));
    }
}
