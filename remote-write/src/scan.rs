//! Reading one `prometheus.TimeSeries` from its protobuf bytes without copying: labels as
//! borrowed bytes (checked to be UTF-8), samples re-encoded on the spot the way prost would encode them.
//! Everything prost refuses (bad wire types, truncation, invalid UTF-8 in a string, ...)
//! is refused here too, in every series, whether or not it is otherwise accepted.

use crate::limits::SeriesFacts;
use crate::wire::{
    FIXED64, LEN, Malformed, RECURSION_LIMIT, Reader, VARINT, put_sample, varint_len,
};

/// The recursion budget of a `TimeSeries`' fields (one below `WriteRequest`'s).
const SERIES_BUDGET: u32 = RECURSION_LIMIT - 1;
/// The recursion budget of a `Label`'s or a `Sample`'s fields.
const LEAF_BUDGET: u32 = RECURSION_LIMIT - 2;

/// One label as read, borrowed from the series' bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LabelRef<'a> {
    /// The name, UTF-8 (empty when absent).
    pub(crate) name: &'a [u8],
    /// The value, UTF-8 (empty when absent).
    pub(crate) value: &'a [u8],
    /// Where prost's encoding of the whole `TimeSeries.labels` field already is, if
    /// anywhere, so that it may be copied instead of encoded again.
    pub(crate) encoded: Encoded<'a>,
}

/// Where a label's encoding as a `TimeSeries.labels` field (key, length, payload) is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Encoded<'a> {
    /// At these `start..end` offsets in the series' bytes.
    InSeries(usize, usize),
    /// These bytes.
    Ready(&'a [u8]),
    /// Nowhere yet.
    No,
}

/// Where one series' parts go while it is read.
#[derive(Debug)]
pub(crate) struct SeriesSink<'s, 'a> {
    /// Receives the first `label_cap` labels, in order.
    pub(crate) labels: &'s mut Vec<LabelRef<'a>>,
    /// How many labels to keep in `labels`; the rest are only counted.
    pub(crate) label_cap: usize,
    /// When `Some`, receives every sample as prost encodes a `Sample` field of a
    /// `TimeSeries` (key, length, non-default fields).
    pub(crate) samples: Option<&'s mut Vec<u8>>,
    /// Timestamps above this (milliseconds) are from the future.
    pub(crate) newest_allowed: i64,
}

/// Reads the payload of one `TimeSeries` field. `labels` and `samples` are cleared first.
pub(crate) fn read_series<'a>(
    bytes: &'a [u8],
    sink: SeriesSink<'_, 'a>,
) -> Result<SeriesFacts, Malformed> {
    let SeriesSink {
        labels,
        label_cap,
        mut samples,
        newest_allowed,
    } = sink;
    labels.clear();
    if let Some(out) = samples.as_deref_mut() {
        out.clear();
    }
    let mut facts = SeriesFacts {
        label_count: 0,
        sample_count: 0,
        first_from_the_future: None,
    };
    let mut r = Reader::new(bytes);
    while !r.is_empty() {
        let start = r.offset();
        // The usual case first: a label or a sample field with one-byte key and length.
        let (is_label, payload, minimal) = if let Some(payload) = r.short_field(0x0a) {
            (true, payload, true)
        } else if let Some(payload) = r.short_field(0x12) {
            (false, payload, true)
        } else {
            let (tag, wire_type) = r.key()?;
            match (tag, wire_type) {
                (1 | 2, LEN) => {
                    let payload = r.len_delimited()?;
                    // One-byte key, minimal length: as prost writes it.
                    let minimal =
                        r.offset() - start == 1 + varint_len(payload.len() as u64) + payload.len();
                    (tag == 1, payload, minimal)
                }
                (1 | 2, _) => return Err(Malformed),
                _ => {
                    r.skip(wire_type, tag, SERIES_BUDGET)?;
                    continue;
                }
            }
        };
        if is_label {
            let (name, value, canonical) = read_label(payload)?;
            if labels.len() < label_cap {
                labels.push(LabelRef {
                    name,
                    value,
                    encoded: if canonical && minimal {
                        Encoded::InSeries(start, r.offset())
                    } else {
                        Encoded::No
                    },
                });
            }
            facts.label_count += 1;
        } else {
            let (value_bits, timestamp) = read_sample(payload)?;
            if timestamp > newest_allowed && facts.first_from_the_future.is_none() {
                facts.first_from_the_future = Some(timestamp);
            }
            if let Some(out) = samples.as_deref_mut() {
                put_sample(out, value_bits, timestamp);
            }
            facts.sample_count += 1;
        }
    }
    Ok(facts)
}

/// A string field's payload: valid UTF-8 or refused.
#[inline]
fn utf8(bytes: &[u8]) -> Result<&[u8], Malformed> {
    if bytes.is_ascii() || std::str::from_utf8(bytes).is_ok() {
        Ok(bytes)
    } else {
        Err(Malformed)
    }
}

/// `prometheus.Label`: `(name, value, canonical)`, name and value empty when absent, the
/// last occurrence winning; `canonical` when `bytes` are exactly prost's encoding of them.
#[inline]
fn read_label(bytes: &[u8]) -> Result<(&[u8], &[u8], bool), Malformed> {
    // The usual, canonical encoding: a name field, then a value field if the value is not
    // empty, each with a one-byte length.
    if let [0x0a, n, rest @ ..] = bytes
        && *n < 0x80
        && let Some((name, rest)) = rest.split_at_checked(usize::from(*n))
    {
        let value = match rest {
            [] => Some(&rest[..0]),
            [0x12, m, value @ ..] if *m < 0x80 && usize::from(*m) == value.len() => Some(value),
            _ => None,
        };
        if let Some(value) = value {
            // prost writes neither an empty name nor an empty value.
            let canonical = !name.is_empty() && (rest.is_empty() || !value.is_empty());
            // Keys and one-byte lengths are ASCII: one look covers both strings.
            if bytes.is_ascii() {
                return Ok((name, value, canonical));
            }
            return Ok((utf8(name)?, utf8(value)?, canonical));
        }
    }
    read_label_slowly(bytes).map(|(name, value)| (name, value, false))
}

fn read_label_slowly(bytes: &[u8]) -> Result<(&[u8], &[u8]), Malformed> {
    let mut r = Reader::new(bytes);
    let (mut name, mut value): (&[u8], &[u8]) = (&[], &[]);
    while !r.is_empty() {
        let (tag, wire_type) = r.key()?;
        match (tag, wire_type) {
            (1, LEN) => name = utf8(r.len_delimited()?)?,
            (2, LEN) => value = utf8(r.len_delimited()?)?,
            (1 | 2, _) => return Err(Malformed),
            _ => r.skip(wire_type, tag, LEAF_BUDGET)?,
        }
    }
    Ok((name, value))
}

/// `prometheus.Sample`: `(bits of the value, timestamp in ms)`, each 0 when absent, the
/// last occurrence winning. The timestamp is the varint's 64 bits read as two's complement.
#[inline]
fn read_sample(bytes: &[u8]) -> Result<(u64, i64), Malformed> {
    // The usual encoding: the value, then the timestamp, nothing else.
    if let [0x09, b0, b1, b2, b3, b4, b5, b6, b7, 0x10, tail @ ..] = bytes {
        let mut r = Reader::new(tail);
        if let Ok(timestamp) = r.varint()
            && r.is_empty()
        {
            let bits = u64::from_le_bytes([*b0, *b1, *b2, *b3, *b4, *b5, *b6, *b7]);
            return Ok((bits, timestamp as i64));
        }
    }
    read_sample_slowly(bytes)
}

fn read_sample_slowly(bytes: &[u8]) -> Result<(u64, i64), Malformed> {
    let mut r = Reader::new(bytes);
    let (mut value_bits, mut timestamp) = (0u64, 0i64);
    while !r.is_empty() {
        let (tag, wire_type) = r.key()?;
        match (tag, wire_type) {
            (1, FIXED64) => value_bits = r.fixed64()?,
            (2, VARINT) => timestamp = r.varint()? as i64,
            (1 | 2, _) => return Err(Malformed),
            _ => r.skip(wire_type, tag, LEAF_BUDGET)?,
        }
    }
    Ok((value_bits, timestamp))
}
