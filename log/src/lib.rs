//! The log format both Perch binaries write: one JSON object a line (`timestamp`, `level`,
//! `message` and the event's fields, flattened), so that one parser reads the server's and
//! the agent's logs.
#![forbid(unsafe_code)]

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Sends `tracing` events to `writer` as JSON lines, filtered by `filter` (`error`, `warn`,
/// `info`, `debug`, or per-module directives; `info` when it does not parse). A second call
/// in the same process changes nothing.
pub fn init<W>(filter: &str, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    // No filter (an unset PERCH_LOG) means info, not only errors.
    let filter = Some(filter.trim())
        .filter(|f| !f.is_empty())
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .try_init();
}
