//! Prometheus remote write 1.0 (snappy block format around a protobuf `WriteRequest`):
//! decoding with limits, validation, stamping a node's identity on every series, encoding.
//!
//! The server decodes what an agent sends, refuses it whole if any part is out of bounds
//! ([`Limits`]), overwrites `node_id` and `node_name` on every series ([`WriteRequest::stamp`])
//! so that one machine cannot write as another, and encodes the result for the engine. The
//! agent uses [`WriteRequest::encode`] to send. Exemplars, native histograms and metadata
//! are not part of remote write 1.0 as Perch accepts it: fields it does not know are
//! skipped by the protobuf decoder and never forwarded.
//!
//! [`rewrite`] does the server's whole step (decode, check, stamp, encode) in one pass over
//! borrowed bytes, with the same outcome as the owned-value path above and several times
//! faster.
#![forbid(unsafe_code)]

mod emit;
mod fast;
mod fingerprint;
mod limits;
mod names;
mod proto;
mod recall;
mod rewrite;
mod scan;
mod transcode;
mod wire;

pub use limits::{Limits, Rejection};
pub use names::NodeStamp;
pub use proto::{Label, Sample, TimeSeries, WriteRequest};
pub use rewrite::{Rewriter, Rewritten, rewrite, rewrite_admitted};

use prost::Message;

/// The labels the server sets from a node's identity on every series a node token writes.
pub const IDENTITY_LABELS: [&str; 2] = ["node_id", "node_name"];

/// A series' fingerprint as a node's count of new series keys it (its labels, the
/// identity labels left out; keyed with this process's secret).
pub fn series_fingerprint(series: &TimeSeries) -> u64 {
    fingerprint::of_labels(
        series
            .labels
            .iter()
            .map(|l| (l.name.as_bytes(), l.value.as_bytes())),
    )
}

/// Whether `name` is a Prometheus label name, `[a-zA-Z_][a-zA-Z0-9_]*` (any length).
pub fn is_label_name(name: &str) -> bool {
    names::label_name_ok(name.as_bytes(), usize::MAX)
}

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("the body is {size} bytes compressed; the limit is {limit}")]
    CompressedTooLarge { size: usize, limit: usize },
    #[error("the body is not snappy block format: {0}")]
    Snappy(String),
    #[error("the body decompresses to {size} bytes; the limit is {limit}")]
    DecompressedTooLarge { size: usize, limit: usize },
    #[error("the body is not a protobuf WriteRequest: {0}")]
    Protobuf(String),
    #[error("{0}")]
    Invalid(#[from] Rejection),
}

impl WriteRequest {
    /// Decodes and validates a request body. Sizes are checked before any allocation
    /// proportional to them.
    pub fn decode_body(body: &[u8], limits: &Limits, now_ms: i64) -> Result<Self, DecodeError> {
        checked_decompressed_len(body, limits)?;
        let raw = snap::raw::Decoder::new()
            .decompress_vec(body)
            .map_err(|e| DecodeError::Snappy(e.to_string()))?;
        Self::decode_raw(&raw, limits, now_ms)
    }

    /// [`Self::decode_body`]'s steps after decompression: decodes and validates the
    /// protobuf `raw`.
    pub(crate) fn decode_raw(
        raw: &[u8],
        limits: &Limits,
        now_ms: i64,
    ) -> Result<Self, DecodeError> {
        let request =
            WriteRequest::decode(raw).map_err(|e| DecodeError::Protobuf(e.to_string()))?;
        limits.check(&request, now_ms)?;
        Ok(request)
    }

    /// Snappy-compressed protobuf, as sent on the wire.
    pub fn encode_body(&self) -> Vec<u8> {
        let raw = self.encode_to_vec();
        // Compressing a byte slice in memory cannot fail.
        snap::raw::Encoder::new()
            .compress_vec(&raw)
            .unwrap_or_default()
    }

    /// Sets `node_id` and `node_name` on every series to these values, replacing whatever
    /// the sender put there, and keeps each series' labels sorted by name.
    pub fn stamp(&mut self, node_id: &str, node_name: &str) {
        for series in &mut self.timeseries {
            series.stamp(node_id, node_name);
        }
    }

    /// The number of samples in the request.
    pub fn samples(&self) -> usize {
        self.timeseries.iter().map(|s| s.samples.len()).sum()
    }
}

impl TimeSeries {
    /// [`WriteRequest::stamp`] for one series.
    pub fn stamp(&mut self, node_id: &str, node_name: &str) {
        self.labels
            .retain(|l| !names::is_identity_label(l.name.as_bytes()));
        self.labels.push(Label {
            name: "node_id".into(),
            value: node_id.into(),
        });
        self.labels.push(Label {
            name: "node_name".into(),
            value: node_name.into(),
        });
        self.labels.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

/// The size `body` decompresses to (bytes), from its snappy header, once the compressed
/// and decompressed sizes are known to be within `limits`.
fn checked_decompressed_len(body: &[u8], limits: &Limits) -> Result<usize, DecodeError> {
    if body.len() > limits.max_compressed_bytes {
        return Err(DecodeError::CompressedTooLarge {
            size: body.len(),
            limit: limits.max_compressed_bytes,
        });
    }
    let size = snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    if size > limits.max_decompressed_bytes {
        return Err(DecodeError::DecompressedTooLarge {
            size,
            limit: limits.max_decompressed_bytes,
        });
    }
    Ok(size)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_rewrite;
