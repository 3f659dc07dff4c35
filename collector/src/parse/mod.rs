//! Pure parsers for the /proc files the collector reads. Each takes the file's whole
//! text and returns borrowed views or plain numbers, so tests feed them file contents
//! and the collector feeds them a reused buffer without allocating.

pub(crate) mod diskstats;
pub(crate) mod loadavg;
pub(crate) mod meminfo;
pub(crate) mod mounts;
pub(crate) mod netdev;
pub(crate) mod stat;

/// A line of a /proc file that is not in the expected shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number in the file.
    pub line: usize,
    /// What was wrong with it.
    pub reason: &'static str,
}

/// Parses a decimal unsigned integer field, naming `what` in the error.
pub(crate) fn uint(field: &str, line: usize, what: &'static str) -> Result<u64, ParseError> {
    field
        .parse::<u64>()
        .map_err(|_| ParseError { line, reason: what })
}
