//! The common case of one series, decided in one pass over its bytes: labels in prost's
//! encoding with one-byte lengths, names valid and strictly ascending, all of them ASCII,
//! then samples in prost's encoding (the value 0.0 left out, as prost leaves it), none from
//! the future. Such a series comes out as a straight copy of its bytes, with any
//! `node_id`/`node_name` the sender put left out and the stamp's two labels inserted at
//! their places. Anything else is left to the
//! general path (`scan`, `Limits::check_series`, `emit`), which reads it again from the
//! start: this module only ever says "accepted" (and writes the series when asked) or "not
//! the common case". An accepted series whose `node_id`/`node_name` already are the stamp's
//! is marked unchanged, so that the caller can keep its bytes where they are.

use crate::emit::put_label;
use crate::names::{self, HIGH, all_name_bytes, metric_name_ok, name_bytes};
use crate::scan::{Encoded, LabelRef};
use crate::wire::{put_varint, varint_len};
use crate::{Limits, NodeStamp};

/// The stamp's two labels, each encoded as a whole `TimeSeries.labels` field (key, length,
/// payload), as `emit::put_label` writes them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StampFields<'a> {
    pub(crate) node_id: &'a [u8],
    pub(crate) node_name: &'a [u8],
    /// `node_id` followed by `node_name`.
    pub(crate) both: &'a [u8],
    /// Whether a sender's labels equal to these pass `limits` as the common case reads
    /// them (one-byte lengths, names and values within their limits, values not empty):
    /// then [`read_series`] takes them in one look.
    fits: bool,
}

impl<'a> StampFields<'a> {
    /// Encodes `stamp`'s two labels into `buf`, which is cleared first.
    pub(crate) fn encode(stamp: NodeStamp<'_>, limits: &Limits, buf: &'a mut Vec<u8>) -> Self {
        fn label<'l>(name: &'l [u8], value: &'l str) -> LabelRef<'l> {
            LabelRef {
                name,
                value: value.as_bytes(),
                encoded: Encoded::No,
            }
        }
        buf.clear();
        put_label(buf, &label(b"node_id", stamp.node_id));
        let id_len = buf.len();
        put_label(buf, &label(b"node_name", stamp.node_name));
        let both: &'a [u8] = buf;
        let (node_id, node_name) = both.split_at(id_len);
        let name_limit = limits.max_label_name_bytes.min(0x7f);
        let value_limit = limits.max_label_value_bytes.min(0x7f);
        let fits = [
            (node_id, "node_id", stamp.node_id),
            (node_name, "node_name", stamp.node_name),
        ]
        .iter()
        .all(|(field, name, value)| {
            field.len() < 2 + 0x80
                && name.len() <= name_limit
                && (1..=value_limit).contains(&value.len())
        });
        Self {
            node_id,
            node_name,
            both,
            fits,
        }
    }
}

/// The first 8 bytes of `node_id`, zero-padded, big-endian (see [`name_key`]).
const NODE_ID_KEY: u64 = u64::from_be_bytes(*b"node_id\0");
/// `__name__`.
const METRIC_NAME_KEY: u64 = u64::from_be_bytes(*b"__name__");
/// The first 8 bytes of `node_name`.
const NODE_NAME_KEY: u64 = u64::from_be_bytes(*b"node_nam");

/// Where a stamp label goes in the series' bytes: before the label starting at `at` (or at
/// the end of the labels), replacing the first `skip` bytes there (the sender's own label
/// of that name, 0 when there is none).
#[derive(Debug, Clone, Copy)]
struct Slot {
    at: usize,
    skip: usize,
}

/// A series [`read_series`] accepted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FastSeries {
    /// Its samples.
    pub(crate) samples: usize,
    /// Its labels, the first `labels.end` bytes of the series.
    pub(crate) labels: FastLabels,
}

/// The labels of a series [`read_labels`] accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FastLabels {
    /// Where they end: the series' first `end` bytes are its labels.
    pub(crate) end: usize,
    /// Whether they already are what [`FastSeries::write`] would write: no stamp, or the
    /// sender's `node_id` and `node_name` are the stamp's, byte for byte, side by side.
    pub(crate) unchanged: bool,
}

/// Reads the payload of one `WriteRequest.timeseries` field, `series`, and accepts it when it
/// is the common case described in the module's documentation and passes `limits` (with
/// `newest_allowed` the newest timestamp accepted, milliseconds); `None` otherwise.
#[inline]
pub(crate) fn read_series<'a>(
    series: &'a [u8],
    limits: &Limits,
    newest_allowed: i64,
    stamp: Option<StampFields<'_>>,
    seen: &mut SeenNames<'a>,
) -> Option<FastSeries> {
    let labels = read_labels(series, limits, stamp, seen)?;
    let samples = read_samples(series.get(labels.end..)?, newest_allowed)?;
    Some(FastSeries { samples, labels })
}

/// [`read_series`]'s checks of the labels: all of them, or `None` when they are not the
/// common case or do not pass. The outcome depends on the labels' bytes, `limits` and
/// `stamp` alone.
///
/// The label loop keeps little state, as it runs for every label of every request: where
/// the stamp goes is found again by [`FastSeries::write`], and only for a series that
/// changes.
#[inline]
pub(crate) fn read_labels<'a>(
    series: &'a [u8],
    limits: &Limits,
    stamp: Option<StampFields<'_>>,
    seen: &mut SeenNames<'a>,
) -> Option<FastLabels> {
    // Lengths here are below 0x80: limits above that cannot be reached.
    let name_limit = limits.max_label_name_bytes.min(0x7f);
    let value_limit = limits.max_label_value_bytes.min(0x7f);
    // The stamp's two labels, when a sender's equal to them pass the checks as they are.
    let own = stamp.filter(|s| s.fits).map(|s| s.both);
    let mut at = 0;
    let mut count = 0;
    let mut has_name = false;
    let mut kept = false;
    let (mut previous_key, mut previous): (u64, &[u8]) = (0, &[]);
    // Labels: [0x0a, len, 0x0a, n, name, 0x12, m, value], len < 0x80, n and m > 0. With
    // samples after them, at least 12 bytes remain wherever a label starts.
    while let Some(head) = series.get(at..).and_then(|b| b.first_chunk::<12>()) {
        let [key_byte, len, name_key_byte, n, word @ ..] = *head;
        if key_byte != 0x0a {
            break;
        }
        if len >= 0x80 || name_key_byte != 0x0a {
            return None;
        }
        let (len, n) = (usize::from(len), usize::from(n));
        let key = name_key(u64::from_be_bytes(word), n);
        // The stamp's own two labels, as an agent that stamps its series sends them, right
        // after names below `node_id` (a valid name has no zero byte, so `key ==
        // NODE_ID_KEY` there means `node_id` itself or nothing before it): one look.
        if key == NODE_ID_KEY
            && let Some(both) = own
            && previous_key < NODE_ID_KEY
            && series.get(at..).is_some_and(|rest| rest.starts_with(both))
        {
            kept = true;
            (previous_key, previous) = (NODE_NAME_KEY, b"node_name");
            count += 2;
            at += both.len();
            continue;
        }
        let field = series.get(at..at + 2 + len)?;
        // The value's length, if the value field comes right after the name.
        let m = len.wrapping_sub(4 + n);
        if n.wrapping_sub(1) >= name_limit || m.wrapping_sub(1) >= value_limit {
            return None;
        }
        let [0x12, m_byte] = *field.get(4 + n..6 + n)?.first_chunk::<2>()? else {
            return None;
        };
        let name = field.get(4..4 + n)?;
        if usize::from(m_byte) != m || !(seen.has(name, key) || seen.check(name, key)) {
            return None;
        }
        // Strictly ascending; names are valid, so never empty and the first is above "".
        let ascending =
            key > previous_key || (key == previous_key && names::cmp(name, previous).is_gt());
        if !ascending {
            return None;
        }
        if key == METRIC_NAME_KEY && n == 8 {
            if !seen.metric_name_ok(field.get(6 + n..)?, limits.reserved_names) {
                return None;
            }
            has_name = true;
        }
        (previous_key, previous) = (key, name);
        count += 1;
        at += 2 + len;
    }
    let labels_end = at;
    // Keys and one-byte lengths are ASCII too: one look covers every name and value.
    if !has_name || count > limits.max_labels_per_series || !ascii(series.get(..labels_end)?) {
        return None;
    }
    Some(FastLabels {
        end: labels_end,
        unchanged: stamp.is_none() || kept,
    })
}

/// The number of samples in `samples`, the bytes of a series after its labels, when they
/// are [`read_series`]'s common case and none is newer than `newest_allowed`; `None`
/// otherwise.
#[inline]
pub(crate) fn read_samples(samples: &[u8], newest_allowed: i64) -> Option<usize> {
    // Samples: [0x12, len, 0x09, value (8 bytes), 0x10, timestamp varint], the value not
    // ±0.0, or [0x12, len, 0x10, timestamp varint] for the value 0.0, the timestamp positive
    // (a minimal varint): what `wire::put_sample` writes.
    let mut count = 0;
    let mut at = 0;
    while let Some(rest @ [_, ..]) = samples.get(at..) {
        let [0x12, len, field @ ..] = rest else {
            return None;
        };
        let len = usize::from(*len);
        let (value_ok, ts) = match field.get(..len)? {
            [0x09, b0, b1, b2, b3, b4, b5, b6, b7, 0x10, ts @ ..] => {
                let bits = u64::from_le_bytes([*b0, *b1, *b2, *b3, *b4, *b5, *b6, *b7]);
                (bits & !(1 << 63) != 0, ts)
            }
            [0x10, ts @ ..] => (true, ts),
            _ => return None,
        };
        // Up to 8 bytes of timestamp (milliseconds until the year 4199 take 6) are read as
        // one word: the 8 bytes that end where the field does, when the field has 8.
        let word = field
            .get(len.wrapping_sub(8)..len)
            .and_then(|w| w.first_chunk::<8>());
        let at_ms = match word {
            Some(w) if (1..=8).contains(&ts.len()) => {
                short_timestamp(u64::from_le_bytes(*w) >> (8 * (8 - ts.len())), ts.len())
            }
            _ => timestamp(ts),
        };
        if len >= 0x80 || !value_ok || at_ms? > newest_allowed {
            return None;
        }
        count += 1;
        at += 2 + len;
    }
    (count > 0).then_some(count)
}

impl FastSeries {
    /// Writes `series`, which [`read_series`] accepted as `self` with the same `stamp`, into
    /// `out` as a whole `timeseries` field (key, length, payload): the bytes the general path
    /// would write for it, with any `node_id`/`node_name` the sender put replaced by the
    /// stamp's.
    pub(crate) fn write(&self, series: &[u8], stamp: Option<StampFields<'_>>, out: &mut Vec<u8>) {
        let Some(stamp) = stamp.filter(|_| !self.labels.unchanged) else {
            out.push(0x0a);
            put_varint(out, series.len() as u64);
            out.extend_from_slice(series);
            return;
        };
        let (id, name) = slots(series);
        let before = series.get(..id.at).unwrap_or_default();
        let between = series.get(id.at + id.skip..name.at).unwrap_or_default();
        let after = series.get(name.at + name.skip..).unwrap_or_default();
        let len = before.len()
            + stamp.node_id.len()
            + between.len()
            + stamp.node_name.len()
            + after.len();
        out.reserve(1 + varint_len(len as u64) + len);
        out.push(0x0a);
        put_varint(out, len as u64);
        out.extend_from_slice(before);
        if between.is_empty() {
            out.extend_from_slice(stamp.both);
        } else {
            out.extend_from_slice(stamp.node_id);
            out.extend_from_slice(between);
            out.extend_from_slice(stamp.node_name);
        }
        out.extend_from_slice(after);
    }
}

/// Where `node_id` and `node_name` go among the labels of `series`, which [`read_series`]
/// accepted (labels in its encoding, names ascending): each before the first label whose
/// name is not below it, replacing that label when it is the same name.
fn slots(series: &[u8]) -> (Slot, Slot) {
    let mut at = 0;
    let mut id = None;
    while let Some([0x0a, len, _, n, rest @ ..]) = series.get(at..) {
        let field = 2 + usize::from(*len);
        let name = rest.get(..usize::from(*n)).unwrap_or_default();
        let skip = |own: &[u8]| if name == own { field } else { 0 };
        if id.is_none() && names::cmp(name, b"node_id").is_ge() {
            id = Some(Slot {
                at,
                skip: skip(b"node_id"),
            });
        }
        if names::cmp(name, b"node_name").is_ge() {
            let id = id.unwrap_or(Slot { at, skip: 0 });
            return (
                id,
                Slot {
                    at,
                    skip: skip(b"node_name"),
                },
            );
        }
        at += field;
    }
    let end = Slot { at, skip: 0 };
    (id.unwrap_or(end), end)
}

/// For a name of `n` bytes, `n` up to 8, indexed by `n`: the bits of a word that hold the
/// name's first bytes (big-endian), bit 7 of each of the word's other bytes, and the bits
/// of the name's last byte (0 for `n` = 0).
const NAME_WORD: [(u64, u64, u64); 9] = {
    let mut t = [(0, 0, 0); 9];
    let mut n = 0;
    while n <= 8 {
        let name = if n == 8 {
            u64::MAX
        } else {
            !(u64::MAX >> (8 * n))
        };
        let last = if n == 0 { 0 } else { 0xff << (8 * (8 - n)) };
        t[n] = (name, !name & HIGH, last);
        n += 1;
    }
    t
};

/// Label names of 1 to 16 bytes already found valid in this request, and metric names
/// likewise: a request repeats a few names on most series, and looking one up costs less
/// than checking it again.
#[derive(Debug)]
pub(crate) struct SeenNames<'a> {
    /// Names of up to 8 bytes, by key (see [`name_key`]).
    labels: [u64; 64],
    /// Names of 9 to 16 bytes: the key, the last 8 bytes (little-endian) and the length.
    long: [(u64, u64, usize); 32],
    /// A name, and its last 8 bytes as `metric_name_ok` reads them.
    metrics: [(&'a [u8], u64); 64],
}

impl<'a> SeenNames<'a> {
    pub(crate) fn new() -> Self {
        Self {
            labels: [0; 64],
            long: [(0, 0, 0); 32],
            metrics: [(&[], 0); 64],
        }
    }

    /// `names::metric_name_ok` and not one of `reserved`, remembering a name that passes
    /// (at most one per slot: its length and last 8 bytes pick the slot).
    #[inline]
    fn metric_name_ok(&mut self, name: &'a [u8], reserved: &[&str]) -> bool {
        let tail = match name.last_chunk::<8>() {
            Some(last) => u64::from_le_bytes(*last),
            None => name.iter().fold(0, |w, b| w << 8 | u64::from(*b)),
        };
        let slot = Self::slot(tail ^ name.len() as u64);
        let (known, known_tail) = self.metrics[slot];
        // The tail holds every byte of a name of up to 8; longer ones compare the rest.
        if known.len() == name.len() && known_tail == tail && same_head(known, name) {
            return true;
        }
        let ok = metric_name_ok(name) && !reserved.iter().any(|r| r.as_bytes() == name);
        if ok {
            self.metrics[slot] = (name, tail);
        }
        ok
    }

    #[inline]
    fn slot(key: u64) -> usize {
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize & 63
    }

    /// Whether `name`, whose key is `key`, is one found valid before. For up to 8 bytes, a
    /// key stands for one name of each length (its bytes past the length are 0); of those,
    /// only one has no zero byte, and only that one can have been found valid: the one
    /// whose last byte, byte `n - 1`, is not 0. From 9 to 16 bytes, the first 8 and the
    /// last 8 bytes cover the name.
    #[inline]
    fn has(&self, name: &[u8], key: u64) -> bool {
        let n = name.len();
        if n <= 8 {
            return self.labels[Self::slot(key)] == key && key & NAME_WORD[n].2 != 0;
        }
        let Some(tail) = name.last_chunk::<8>().map(|t| u64::from_le_bytes(*t)) else {
            return false;
        };
        n <= 16 && self.long[Self::slot(key ^ tail) & 31] == (key, tail, n)
    }

    /// [`label_name_ok`], remembering a valid name of up to 16 bytes.
    #[inline]
    fn check(&mut self, name: &[u8], key: u64) -> bool {
        let ok = label_name_ok(name, key);
        if ok && name.len() <= 8 {
            self.labels[Self::slot(key)] = key;
        } else if ok
            && name.len() <= 16
            && let Some(tail) = name.last_chunk::<8>().map(|t| u64::from_le_bytes(*t))
        {
            self.long[Self::slot(key ^ tail) & 31] = (key, tail, name.len());
        }
        ok
    }
}

/// Whether `a` and `b`, of the same length, agree on all but their last 8 bytes: 8 bytes at
/// a time from the start, the last word reaching into the tail (a metric name is a few words
/// long, and a call to `memcmp` costs more than comparing it here).
#[inline]
fn same_head(a: &[u8], b: &[u8]) -> bool {
    let head = a.len().saturating_sub(8);
    let word = |s: &[u8], at: usize| {
        s.get(at..at + 8)
            .and_then(|w| w.first_chunk::<8>())
            .map(|w| u64::from_le_bytes(*w))
    };
    // With 8 bytes of tail after the head, every word read is within both.
    let mut at = 0;
    while at < head {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    true
}

/// A name's key: its first 8 bytes (`word`, big-endian, read where the name starts) with
/// those past its length `n` zeroed. For names without zero bytes, a greater key means a
/// greater name and equal keys mean an equal first 8 bytes.
#[inline]
fn name_key(word: u64, n: usize) -> u64 {
    word & NAME_WORD[n.min(8)].0
}

/// `names::label_name_ok` without the length limit, for a `name` whose [`name_key`] is
/// `key`: its first 8 bytes checked at once.
#[inline]
fn label_name_ok(name: &[u8], key: u64) -> bool {
    // The key's bytes past a shorter name are padding, which passes.
    let padding = NAME_WORD[name.len().min(8)].1;
    let rest = name.get(8..).unwrap_or_default();
    !name.is_empty()
        && !((key >> 56) as u8).is_ascii_digit()
        && name_bytes(key, false) | padding == HIGH
        && (rest.is_empty() || all_name_bytes(rest, false))
}

/// A timestamp varint as prost writes a positive one (milliseconds): minimal, 1 to 9 bytes.
/// `None` for anything else (0, negative, padded, cut short), which the general path reads.
#[inline]
fn timestamp(varint: &[u8]) -> Option<i64> {
    let (last, body) = varint.split_last()?;
    if *last == 0 || *last >= 0x80 || body.len() > 8 || body.iter().any(|b| *b < 0x80) {
        return None;
    }
    // At most 8 * 7 + 7 = 63 bits: positive as an i64.
    let value = body
        .iter()
        .rev()
        .fold(u64::from(*last), |v, b| v << 7 | u64::from(b & 0x7f));
    i64::try_from(value).ok()
}

/// [`timestamp`] for a varint of `n` bytes, 1 to 8, held in the low bytes of `word`
/// (little-endian; the bytes above are 0): its continuation bits checked at once, its 7-bit
/// groups packed together in three steps.
#[inline]
fn short_timestamp(word: u64, n: usize) -> Option<i64> {
    let body = (1u64 << (8 * (n - 1))).wrapping_sub(1);
    let last = (word >> (8 * (n - 1))) & 0xff;
    if word & HIGH != body & HIGH || last == 0 {
        return None;
    }
    let v = word & !HIGH;
    let v = (v & 0x007f_007f_007f_007f) | ((v & 0x7f00_7f00_7f00_7f00) >> 1);
    let v = (v & 0x0000_3fff_0000_3fff) | ((v & 0x3fff_0000_3fff_0000) >> 2);
    let v = (v & 0x0000_0000_0fff_ffff) | ((v & 0x0fff_ffff_0000_0000) >> 4);
    // At most 56 bits: positive as an i64.
    i64::try_from(v).ok()
}

/// Whether every byte is below 0x80, a word at a time (`<[u8]>::is_ascii` goes byte by byte
/// over the last up to 63 bytes, most of a series' labels).
#[inline]
fn ascii(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    let mut acc = 0;
    for word in &mut words {
        acc |= u64::from_le_bytes(word.try_into().unwrap_or([0x80; 8]));
    }
    // The last bytes: as the last 8 of all (read twice in part), or one by one when fewer.
    match bytes.last_chunk::<8>() {
        Some(last) => acc |= u64::from_le_bytes(*last),
        None => acc |= words.remainder().iter().fold(0, |a, b| a | u64::from(*b)),
    }
    acc & HIGH == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_a_word_at_a_time_as_byte_by_byte() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut varints: Vec<Vec<u8>> = Vec::new();
        for i in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Values of every length, minimal; now and then padded, cut or with a zero end.
            let value = x >> (x % 64);
            let mut v = Vec::new();
            crate::wire::put_varint(&mut v, value);
            match i % 7 {
                0 => {
                    let last = v.len() - 1;
                    v[last] |= 0x80;
                    v.push(0);
                }
                1 => {
                    v.pop();
                }
                2 => v.insert(0, 0x80 | (x as u8)),
                _ => {}
            }
            varints.push(v);
        }
        varints.extend([vec![], vec![0], vec![0x80], vec![0x7f], vec![0x80, 0x01]]);
        for v in varints.iter().filter(|v| (1..=8).contains(&v.len())) {
            // As read in place: the bytes before are the rest of the sample field.
            let mut field = vec![0xaa; 8];
            field.extend_from_slice(v);
            let end = field.len();
            let word = u64::from_le_bytes(field[end - 8..].try_into().unwrap());
            let got = short_timestamp(word >> (8 * (8 - v.len())), v.len());
            assert_eq!(got, timestamp(v), "{v:02x?}");
        }
    }

    #[test]
    fn remembered_names_answer_as_the_checks_do() {
        // More valid metric names than slots, then invalid ones of the same length and last
        // 8 bytes (so, the same slots), then the valid ones again.
        // Names of 10 to 33 bytes; the invalid ones differ in one byte before the last 8
        // (the first, or the one just before them).
        let valid: Vec<Vec<u8>> = (0..200)
            .map(|i| format!("metric_{}{i:03}", "x".repeat(i % 24)).into_bytes())
            .collect();
        let invalid: Vec<Vec<u8>> = valid
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let mut bad = v.clone();
                let at = if i % 2 == 0 { 0 } else { v.len() - 9 };
                bad[at] = if at == 0 { b'9' } else { b'-' };
                bad
            })
            .collect();
        let mut seen = SeenNames::new();
        for _ in 0..2 {
            for (good, bad) in valid.iter().zip(&invalid) {
                assert!(seen.metric_name_ok(good, &[]));
                assert!(!seen.metric_name_ok(bad, &[]), "{bad:?}");
            }
        }
        // Label names: each valid one remembered, then names with the same key that are
        // not it (longer, padded with zero bytes) refused.
        let key_of = |name: &[u8]| {
            let word = name
                .iter()
                .take(8)
                .enumerate()
                .fold(0, |w, (i, b)| w | u64::from(*b) << (56 - 8 * i));
            name_key(word, name.len())
        };
        for name in [&b"a"[..], b"job", b"node_id", b"instance"] {
            let key = key_of(name);
            assert!(!seen.has(name, key));
            assert!(seen.check(name, key));
            assert!(seen.has(name, key));
            for longer in name.len() + 1..=8 {
                let mut padded = name.to_vec();
                padded.resize(longer, 0);
                assert_eq!(key_of(&padded), key);
                assert!(!seen.has(&padded, key), "{name:?} padded to {longer}");
            }
        }
        // From 9 to 16 bytes: remembered by first and last 8 bytes and length; a name that
        // shares both with a remembered one but not its length, or one differing in a
        // middle byte of 17, is not taken for it.
        for name in [
            &b"node_name"[..],
            b"mountpoint",
            b"aaaaaaaaa",
            b"abcdefgh_ijklmno",
        ] {
            let key = key_of(name);
            assert!(!seen.has(name, key), "{name:?}");
            assert!(seen.check(name, key));
            assert!(seen.has(name, key), "{name:?}");
        }
        assert!(!seen.has(b"aaaaaaaaaa", key_of(b"aaaaaaaaaa")));
        assert!(!seen.has(b"aaaaaaaa-a", key_of(b"aaaaaaaa-a")));
        let long = b"abcdefgh_ijklmnop";
        assert!(seen.check(long, key_of(long)));
        assert!(!seen.has(long, key_of(long)), "17 bytes are not remembered");
        // An invalid name is never remembered.
        assert!(!seen.check(b"node-name", key_of(b"node-name")));
        assert!(!seen.has(b"node-name", key_of(b"node-name")));
    }
}
