//! Writing `TimeSeries` fields byte for byte as prost encodes them: fields in tag order,
//! default values (empty strings, `0.0`, `-0.0`, timestamp 0) left out, minimal varints.

use crate::scan::{Encoded, LabelRef};
use crate::wire::{put_varint, varint_len};

/// The encoded length of a string field (key, length, bytes), 0 for an empty string.
#[inline]
fn string_field_len(s: &[u8]) -> usize {
    if s.is_empty() {
        0
    } else {
        1 + varint_len(s.len() as u64) + s.len()
    }
}

#[inline]
fn put_string_field(out: &mut Vec<u8>, key: u8, s: &[u8]) {
    if !s.is_empty() {
        out.push(key);
        put_varint(out, s.len() as u64);
        out.extend_from_slice(s);
    }
}

/// The length of a `Label` message's payload.
#[inline]
fn label_len(l: &LabelRef<'_>) -> usize {
    string_field_len(l.name) + string_field_len(l.value)
}

/// Appends a `TimeSeries.labels` field, encoded here.
pub(crate) fn put_label(out: &mut Vec<u8>, l: &LabelRef<'_>) {
    out.push(0x0a);
    put_varint(out, label_len(l) as u64);
    put_string_field(out, 0x0a, l.name);
    put_string_field(out, 0x12, l.value);
}

/// Writes one `WriteRequest.timeseries` field into `out`: labels one by one in the order
/// given (copied from the series' bytes where those are prost's encoding already, runs of
/// them in one copy), then the samples, already encoded. The length prefix is filled in
/// at the end.
#[derive(Debug)]
pub(crate) struct SeriesWriter<'o, 's> {
    out: &'o mut Vec<u8>,
    /// The bytes the series was read from.
    series: &'s [u8],
    /// Where the two bytes set aside for the length prefix are in `out`.
    len_at: usize,
    /// Labels not copied yet: a `start..end` span of `series`.
    run: Option<(usize, usize)>,
}

/// The series' bytes do not hold a span the reader reported: not reachable, but the caller
/// can still fall back to encoding from decoded values.
#[derive(Debug)]
pub(crate) struct LostSpan;

impl<'o, 's> SeriesWriter<'o, 's> {
    pub(crate) fn begin(out: &'o mut Vec<u8>, series: &'s [u8]) -> Self {
        // Room for the series as it came plus two labels, in one go.
        out.reserve(series.len() + 64);
        out.push(0x0a);
        let len_at = out.len();
        out.extend_from_slice(&[0, 0]);
        Self {
            out,
            series,
            len_at,
            run: None,
        }
    }

    #[inline]
    pub(crate) fn label(&mut self, l: &LabelRef<'_>) -> Result<(), LostSpan> {
        match (l.encoded, &mut self.run) {
            (Encoded::InSeries(start, end), Some((_, run_end))) if *run_end == start => {
                *run_end = end;
            }
            (Encoded::InSeries(start, end), _) => {
                self.flush()?;
                self.run = Some((start, end));
            }
            (Encoded::Ready(bytes), _) => {
                self.flush()?;
                self.out.extend_from_slice(bytes);
            }
            (Encoded::No, _) => {
                self.flush()?;
                put_label(self.out, l);
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), LostSpan> {
        if let Some((start, end)) = self.run.take() {
            let bytes = self.series.get(start..end).ok_or(LostSpan)?;
            self.out.extend_from_slice(bytes);
        }
        Ok(())
    }

    /// Appends the samples and fills in the length.
    pub(crate) fn finish(mut self, samples: &[u8]) -> Result<(), LostSpan> {
        self.flush()?;
        self.out.extend_from_slice(samples);
        let body_at = self.len_at + 2;
        let len = self.out.len() - body_at;
        if len < 0x80 {
            self.out[self.len_at] = len as u8;
            self.out.copy_within(body_at.., self.len_at + 1);
            self.out.pop();
        } else if len < 0x4000 {
            self.out[self.len_at] = (len as u8) | 0x80;
            self.out[self.len_at + 1] = (len >> 7) as u8;
        } else {
            let mut prefix = Vec::with_capacity(10);
            put_varint(&mut prefix, len as u64);
            self.out.splice(self.len_at..body_at, prefix);
        }
        Ok(())
    }
}
