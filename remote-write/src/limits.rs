//! What a write request may hold. A request is accepted whole or refused whole.

use crate::proto::WriteRequest;

/// Bounds on one write request. Sizes are inclusive upper bounds.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bytes of the snappy-compressed body.
    pub max_compressed_bytes: usize,
    /// Bytes after decompression.
    pub max_decompressed_bytes: usize,
    /// Series in one request.
    pub max_series: usize,
    /// Labels on one series (including `__name__`, before stamping).
    pub max_labels_per_series: usize,
    /// Bytes of a label name.
    pub max_label_name_bytes: usize,
    /// Bytes of a label value.
    pub max_label_value_bytes: usize,
    /// How far a sample's timestamp may lie in the future, in milliseconds.
    pub max_future_ms: i64,
}

impl Default for Limits {
    /// Generous for one machine's agent (node_exporter-like collectors send a few thousand
    /// series per push), tight enough that one request cannot take the server's memory.
    fn default() -> Self {
        Self {
            max_compressed_bytes: 8 * 1024 * 1024,
            max_decompressed_bytes: 64 * 1024 * 1024,
            max_series: 100_000,
            max_labels_per_series: 64,
            max_label_name_bytes: 256,
            max_label_value_bytes: 4096,
            max_future_ms: 10 * 60 * 1000,
        }
    }
}

/// The first thing found out of bounds, naming the series where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("{count} series in one request; the limit is {limit}")]
    TooManySeries { count: usize, limit: usize },
    #[error("series {index} has {count} labels; the limit is {limit}")]
    TooManyLabels {
        index: usize,
        count: usize,
        limit: usize,
    },
    #[error("series {index} has no __name__ label")]
    NoName { index: usize },
    #[error(
        "series {index}: label name {name:?} is not [a-zA-Z_][a-zA-Z0-9_]* of at most {limit} bytes"
    )]
    BadLabelName {
        index: usize,
        name: String,
        limit: usize,
    },
    #[error("series {index}: label {name} has a value of {len} bytes; the limit is {limit}")]
    LabelValueTooLong {
        index: usize,
        name: String,
        len: usize,
        limit: usize,
    },
    #[error("series {index}: label {name} appears twice")]
    DuplicateLabel { index: usize, name: String },
    #[error("series {index}: metric name {name:?} is not [a-zA-Z_:][a-zA-Z0-9_:]*")]
    BadMetricName { index: usize, name: String },
    #[error("series {index} has no samples")]
    NoSamples { index: usize },
    #[error("series {index}: a sample at {timestamp} ms is more than {limit_ms} ms in the future")]
    FromTheFuture {
        index: usize,
        timestamp: i64,
        limit_ms: i64,
    },
}

fn label_name_ok(name: &str, limit: usize) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= limit
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn metric_name_ok(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_' || b[0] == b':')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
}

impl Limits {
    /// Checks every series; `now_ms` is the server's clock.
    pub fn check(&self, request: &WriteRequest, now_ms: i64) -> Result<(), Rejection> {
        if request.timeseries.len() > self.max_series {
            return Err(Rejection::TooManySeries {
                count: request.timeseries.len(),
                limit: self.max_series,
            });
        }
        let newest_allowed = now_ms.saturating_add(self.max_future_ms);
        let mut names: Vec<&str> = Vec::with_capacity(16);
        for (index, series) in request.timeseries.iter().enumerate() {
            if series.labels.len() > self.max_labels_per_series {
                return Err(Rejection::TooManyLabels {
                    index,
                    count: series.labels.len(),
                    limit: self.max_labels_per_series,
                });
            }
            names.clear();
            let mut has_name = false;
            for label in &series.labels {
                if !label_name_ok(&label.name, self.max_label_name_bytes) {
                    return Err(Rejection::BadLabelName {
                        index,
                        name: label.name.chars().take(64).collect(),
                        limit: self.max_label_name_bytes,
                    });
                }
                if label.value.len() > self.max_label_value_bytes {
                    return Err(Rejection::LabelValueTooLong {
                        index,
                        name: label.name.clone(),
                        len: label.value.len(),
                        limit: self.max_label_value_bytes,
                    });
                }
                if label.name == "__name__" {
                    if !metric_name_ok(&label.value) {
                        return Err(Rejection::BadMetricName {
                            index,
                            name: label.value.chars().take(64).collect(),
                        });
                    }
                    has_name = true;
                }
                if names.contains(&label.name.as_str()) {
                    return Err(Rejection::DuplicateLabel {
                        index,
                        name: label.name.clone(),
                    });
                }
                names.push(&label.name);
            }
            if !has_name {
                return Err(Rejection::NoName { index });
            }
            if series.samples.is_empty() {
                return Err(Rejection::NoSamples { index });
            }
            if let Some(s) = series.samples.iter().find(|s| s.timestamp > newest_allowed) {
                return Err(Rejection::FromTheFuture {
                    index,
                    timestamp: s.timestamp,
                    limit_ms: self.max_future_ms,
                });
            }
        }
        Ok(())
    }
}
