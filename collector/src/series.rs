//! Writes series into a caller's `Vec<TimeSeries>`, reusing the label and sample
//! buffers left in it by the previous collection, so that a steady machine costs no
//! allocation per collection.

use perch_remote_write::{Label, Sample, TimeSeries};

/// Appends series to `out`, overwriting (not reallocating) the series already there.
/// Call [`Writer::finish`] to drop what a shorter collection left over.
pub(crate) struct Writer<'a> {
    out: &'a mut Vec<TimeSeries>,
    used: usize,
    timestamp_ms: i64,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(out: &'a mut Vec<TimeSeries>, timestamp_ms: i64) -> Self {
        Writer {
            out,
            used: 0,
            timestamp_ms,
        }
    }

    /// Writes one series. `name` is the metric name, given in pieces that are
    /// concatenated; `labels` must be sorted by name and have names that sort after
    /// `__name__` (all lower-case names do), so the series' labels come out sorted.
    pub(crate) fn push(&mut self, name: &[&str], labels: &[(&str, &str)], value: f64) {
        debug_assert!(
            labels.windows(2).all(|w| w[0].0 < w[1].0),
            "labels not sorted"
        );
        if self.used == self.out.len() {
            self.out.push(TimeSeries::default());
        }
        let Some(ts) = self.out.get_mut(self.used) else {
            return;
        };
        self.used += 1;

        let want = labels.len() + 1;
        ts.labels.truncate(want);
        while ts.labels.len() < want {
            ts.labels.push(Label::default());
        }
        for (slot, (label_name, label_value)) in ts.labels.iter_mut().zip(
            std::iter::once(("__name__", None)).chain(labels.iter().map(|(n, v)| (*n, Some(*v)))),
        ) {
            set(&mut slot.name, &[label_name]);
            match label_value {
                None => set(&mut slot.value, name),
                Some(v) => set(&mut slot.value, &[v]),
            }
        }

        ts.samples.truncate(1);
        match ts.samples.first_mut() {
            Some(sample) => {
                sample.value = value;
                sample.timestamp = self.timestamp_ms;
            }
            None => ts.samples.push(Sample {
                value,
                timestamp: self.timestamp_ms,
            }),
        }
    }

    /// How many series have been written; pass it to [`Writer::rollback`] to undo
    /// everything written after this point.
    pub(crate) fn mark(&self) -> usize {
        self.used
    }

    /// Forgets the series written after `mark` (their buffers stay for reuse).
    pub(crate) fn rollback(&mut self, mark: usize) {
        self.used = self.used.min(mark);
    }

    /// Drops the series beyond those written in this collection.
    pub(crate) fn finish(self) {
        self.out.truncate(self.used);
    }
}

fn set(s: &mut String, parts: &[&str]) {
    s.clear();
    for p in parts {
        s.push_str(p);
    }
}

/// Formats `n` in decimal into `buf` and returns the digits, without allocating.
pub(crate) fn fmt_u64(n: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        // n % 10 < 10, so the digit is ASCII.
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_and_truncates() {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out, 7);
        w.push(&["node_", "a"], &[("cpu", "0"), ("mode", "idle")], 1.5);
        w.push(&["node_b"], &[], 2.0);
        w.finish();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].labels.len(), 3);
        assert_eq!(out[0].labels[0].name, "__name__");
        assert_eq!(out[0].labels[0].value, "node_a");
        assert_eq!(out[0].labels[2].value, "idle");
        assert_eq!(out[0].samples[0].value, 1.5);
        assert_eq!(out[0].samples[0].timestamp, 7);

        let mut w = Writer::new(&mut out, 8);
        w.push(&["node_c"], &[], 3.0);
        let m = w.mark();
        w.push(&["node_d"], &[], 4.0);
        w.rollback(m);
        w.finish();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].labels.len(), 1);
        assert_eq!(out[0].labels[0].value, "node_c");
        assert_eq!(out[0].samples[0].timestamp, 8);
    }

    #[test]
    fn formats_numbers() {
        let mut b = [0u8; 20];
        assert_eq!(fmt_u64(0, &mut b), "0");
        assert_eq!(fmt_u64(17, &mut b), "17");
        assert_eq!(fmt_u64(u64::MAX, &mut b), "18446744073709551615");
    }
}
