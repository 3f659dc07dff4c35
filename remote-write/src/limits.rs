//! What a write request may hold. A request is accepted whole or refused whole.

use crate::names::{self, is_metric_name_label, label_name_ok, metric_name_ok};
use crate::proto::{TimeSeries, WriteRequest};

/// Bounds on one write request. Sizes are inclusive upper bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Metric names that only the server itself writes (e.g. Query Analytics' series).
    pub reserved_names: &'static [&'static str],
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
            reserved_names: &[],
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
    #[error("series {index}: {name} is written by the server itself, not through remote write")]
    ReservedName { index: usize, name: String },
    #[error("series {index} has no samples")]
    NoSamples { index: usize },
    #[error("series {index}: a sample at {timestamp} ms is more than {limit_ms} ms in the future")]
    FromTheFuture {
        index: usize,
        timestamp: i64,
        limit_ms: i64,
    },
}

impl Limits {
    /// Checks every series; `now_ms` is the server's clock.
    pub fn check(&self, request: &WriteRequest, now_ms: i64) -> Result<(), Rejection> {
        self.check_series_count(request.timeseries.len())?;
        for (index, series) in request.timeseries.iter().enumerate() {
            self.check_owned(index, series, now_ms)?;
        }
        Ok(())
    }

    /// Checks one series as [`Limits::check`] checks each (the rejection names it as
    /// series 0): for a sender that leaves out what the server would refuse, so that one
    /// bad series does not cost the whole request.
    pub fn check_one(&self, series: &TimeSeries, now_ms: i64) -> Result<(), Rejection> {
        self.check_owned(0, series, now_ms)
    }

    fn check_owned(&self, index: usize, series: &TimeSeries, now_ms: i64) -> Result<(), Rejection> {
        let newest_allowed = self.newest_allowed(now_ms);
        self.check_series(
            index,
            SeriesFacts {
                label_count: series.labels.len(),
                sample_count: series.samples.len(),
                first_from_the_future: series
                    .samples
                    .iter()
                    .map(|s| s.timestamp)
                    .find(|t| *t > newest_allowed),
            },
            &series.labels,
            |l| (l.name.as_bytes(), l.value.as_bytes()),
        )
        .map(|_ascending| ())
    }

    /// The newest sample timestamp accepted when the server's clock reads `now_ms`.
    pub(crate) fn newest_allowed(&self, now_ms: i64) -> i64 {
        now_ms.saturating_add(self.max_future_ms)
    }

    /// The request-wide check, which comes before any series' own.
    pub(crate) fn check_series_count(&self, count: usize) -> Result<(), Rejection> {
        if count > self.max_series {
            return Err(Rejection::TooManySeries {
                count,
                limit: self.max_series,
            });
        }
        Ok(())
    }

    /// Checks one series, in this order: the number of labels; then each label in the
    /// sender's order (its name, its value's length, the metric name if it is
    /// `__name__`, then whether an earlier label had the same name); then that there is a
    /// `__name__`, that there are samples, and that none is from the future. `labels` are
    /// the series' labels in order (at least the first `max_labels_per_series` of them when
    /// there are more), `parts` gives a label's `(name, value)` as UTF-8 bytes. On success,
    /// tells whether the names came in strictly ascending byte order.
    pub(crate) fn check_series<T>(
        &self,
        index: usize,
        facts: SeriesFacts,
        labels: &[T],
        parts: impl Fn(&T) -> (&[u8], &[u8]),
    ) -> Result<bool, Rejection> {
        if facts.label_count > self.max_labels_per_series {
            return Err(Rejection::TooManyLabels {
                index,
                count: facts.label_count,
                limit: self.max_labels_per_series,
            });
        }
        // While the names come in strictly ascending order (as Prometheus sends them), a
        // name greater than the previous one cannot repeat an earlier one.
        let mut ascending = true;
        let mut has_name = false;
        let mut previous: &[u8] = &[];
        for (i, label) in labels.iter().enumerate() {
            let (name, value) = parts(label);
            if !label_name_ok(name, self.max_label_name_bytes) {
                return Err(Rejection::BadLabelName {
                    index,
                    name: text(name).chars().take(64).collect(),
                    limit: self.max_label_name_bytes,
                });
            }
            if value.len() > self.max_label_value_bytes {
                return Err(Rejection::LabelValueTooLong {
                    index,
                    name: text(name).into_owned(),
                    len: value.len(),
                    limit: self.max_label_value_bytes,
                });
            }
            if is_metric_name_label(name) {
                if !metric_name_ok(value) {
                    return Err(Rejection::BadMetricName {
                        index,
                        name: text(value).chars().take(64).collect(),
                    });
                }
                if self.reserved_names.iter().any(|r| r.as_bytes() == value) {
                    return Err(Rejection::ReservedName {
                        index,
                        name: text(value).into_owned(),
                    });
                }
                has_name = true;
            }
            // (A valid name is never empty, so the first one is above `previous`.)
            if !(ascending && names::cmp(name, previous).is_gt()) {
                ascending = false;
                let earlier = labels.get(..i).unwrap_or_default();
                if earlier.iter().any(|l| parts(l).0 == name) {
                    return Err(Rejection::DuplicateLabel {
                        index,
                        name: text(name).into_owned(),
                    });
                }
            }
            previous = name;
        }
        if !has_name {
            return Err(Rejection::NoName { index });
        }
        if facts.sample_count == 0 {
            return Err(Rejection::NoSamples { index });
        }
        if let Some(timestamp) = facts.first_from_the_future {
            return Err(Rejection::FromTheFuture {
                index,
                timestamp,
                limit_ms: self.max_future_ms,
            });
        }
        Ok(ascending)
    }
}

/// A label's name or value for an error message; callers pass UTF-8.
fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// What the checks need to know about a series' samples and label count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeriesFacts {
    /// Labels on the series, as sent.
    pub(crate) label_count: usize,
    /// Samples on the series.
    pub(crate) sample_count: usize,
    /// The timestamp of the first sample (in the sender's order) newer than
    /// [`Limits::newest_allowed`], if any.
    pub(crate) first_from_the_future: Option<i64>,
}
