//! Prometheus text exposition format 0.0.4 and OpenMetrics 1.0: parsing a scraped body into
//! series for remote write.
//!
//! The agent sends [`ACCEPT`], picks the [`Format`] from the response's `Content-Type`
//! ([`Format::from_content_type`]) and calls [`parse`] with the scrape's start time and the
//! target's [`ScrapeOptions`]. Out come [`perch_remote_write::TimeSeries`] (labels sorted by
//! name, `__name__` included, one sample each, timestamps in milliseconds) and the
//! [`MetricMetadata`] of every family. Any error refuses the whole body and names its line.
//!
//! Accepted beyond the strict grammars, as Prometheus accepts them: in text 0.0.4, blanks
//! around tokens and inside `{}`, a trailing comma in a label set, unknown escapes in label
//! values and HELP texts (kept verbatim), families that come back after another one.
//! OpenMetrics is parsed to its ABNF (single spaces, no blank lines, no free comments, only
//! the three escapes, `# EOF` last), with these checks on families: each descriptor once and
//! before the samples, no interleaving, sample names with the suffixes their type allows,
//! `le` and `quantile` present and numeric. Not checked: bucket order or the `+Inf` bucket,
//! value ranges (negative counters, info values), exemplar size.
#![forbid(unsafe_code)]

mod comment;
mod cursor;
mod error;
mod family;
mod format;
mod parser;
mod sample;
mod target;

pub use error::{EXCERPT_CHARS, ErrorKind, ParseError, TargetLabelError};
pub use family::{MetricMetadata, MetricType};
pub use format::{ACCEPT, Format};
pub use parser::{Exposition, ScrapeOptions, parse};
pub use target::TargetLabels;
