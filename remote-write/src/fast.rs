//! The common case of one series, decided and written in one pass over its bytes: labels in
//! prost's encoding with one-byte lengths, names valid and strictly ascending, all of them
//! ASCII, then samples in prost's encoding, none from the future. Such a series comes out
//! as a straight copy of its bytes, with any `node_id`/`node_name` the sender put left out
//! and the stamp's two labels inserted at their places. Anything else is left to the
//! general path (`scan`, `Limits::check_series`, `emit`), which reads it again from the
//! start: this module only ever says "accepted, written" or "not the common case".

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
}

impl<'a> StampFields<'a> {
    /// Encodes `stamp`'s two labels into `buf`, which is cleared first.
    pub(crate) fn encode(stamp: NodeStamp<'_>, buf: &'a mut Vec<u8>) -> Self {
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
        Self {
            node_id,
            node_name,
            both,
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

/// Writes the payload of one `WriteRequest.timeseries` field, `series`, into `out` as a
/// whole `timeseries` field (key, length, payload) when it is the common case described in
/// the module's documentation and passes `limits` (with `newest_allowed` the newest
/// timestamp accepted, milliseconds): the bytes are exactly those the general path would
/// write for it. Returns the number of samples then; otherwise `None`, with `out`
/// untouched.
#[inline]
pub(crate) fn copy_series<'a>(
    series: &'a [u8],
    limits: &Limits,
    newest_allowed: i64,
    stamp: Option<StampFields<'_>>,
    seen: &mut SeenNames<'a>,
    out: &mut Vec<u8>,
) -> Option<usize> {
    // Lengths here are below 0x80: limits above that cannot be reached.
    let name_limit = limits.max_label_name_bytes.min(0x7f);
    let value_limit = limits.max_label_value_bytes.min(0x7f);
    let mut at = 0;
    let mut count = 0;
    let mut has_name = false;
    let (mut previous_key, mut previous): (u64, &[u8]) = (0, &[]);
    let (mut id_slot, mut name_slot): (Option<Slot>, Option<Slot>) = (None, None);
    // Labels: [0x0a, len, 0x0a, n, name, 0x12, m, value], len < 0x80, n and m > 0. With
    // samples after them, at least 12 bytes remain wherever a label starts.
    while let Some(head) = series.get(at..).and_then(|b| b.first_chunk::<12>()) {
        let [
            key_byte,
            len,
            name_key_byte,
            n,
            k0,
            k1,
            k2,
            k3,
            k4,
            k5,
            k6,
            k7,
        ] = *head;
        if key_byte != 0x0a {
            break;
        }
        if len >= 0x80 || name_key_byte != 0x0a {
            return None;
        }
        let (len, n) = (usize::from(len), usize::from(n));
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
        let value = field.get(6 + n..)?;
        let key = name_key(u64::from_be_bytes([k0, k1, k2, k3, k4, k5, k6, k7]), n);
        if usize::from(m_byte) != m || !(seen.has(key, n) || seen.check(name, key)) {
            return None;
        }
        // Strictly ascending; names are valid, so never empty and the first is above "".
        let ascending =
            key > previous_key || (key == previous_key && names::cmp(name, previous).is_gt());
        if !ascending {
            return None;
        }
        if key == METRIC_NAME_KEY && name.len() == 8 {
            if !seen.metric_name_ok(value) {
                return None;
            }
            has_name = true;
        }
        // A valid name has no zero byte, so `key == NODE_ID_KEY` exactly when the name is
        // `node_id`; `node_name` is longer than a key and needs the whole name. Names sort
        // before these two mostly.
        if stamp.is_some() && key >= NODE_ID_KEY {
            if id_slot.is_none() {
                let skip = if key == NODE_ID_KEY { 2 + len } else { 0 };
                id_slot = Some(Slot { at, skip });
            }
            // With the key equal, the name is `node_name` or after it exactly when its
            // ninth byte is there and at least `e`.
            let ninth = name.get(8).copied();
            if name_slot.is_none()
                && (key > NODE_NAME_KEY || (key == NODE_NAME_KEY && ninth >= Some(b'e')))
            {
                let exact = key == NODE_NAME_KEY && n == 9 && ninth == Some(b'e');
                let skip = if exact { 2 + len } else { 0 };
                name_slot = Some(Slot { at, skip });
            }
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
    // Samples: [0x12, len, 0x09, value (8 bytes), 0x10, timestamp varint], the value not
    // ±0.0, the timestamp positive (a minimal varint): what `emit::put_sample` writes.
    let mut samples = 0;
    while let Some(rest @ [_, ..]) = series.get(at..) {
        let [0x12, len, field @ ..] = rest else {
            return None;
        };
        let len = usize::from(*len);
        let [0x09, b0, b1, b2, b3, b4, b5, b6, b7, 0x10, ts @ ..] = field.get(..len)? else {
            return None;
        };
        let bits = u64::from_le_bytes([*b0, *b1, *b2, *b3, *b4, *b5, *b6, *b7]);
        if len >= 0x80 || bits & !(1 << 63) == 0 || timestamp(ts)? > newest_allowed {
            return None;
        }
        samples += 1;
        at += 2 + len;
    }
    if samples == 0 {
        return None;
    }
    match stamp {
        None => {
            out.push(0x0a);
            put_varint(out, series.len() as u64);
            out.extend_from_slice(series);
        }
        Some(stamp) => {
            let id = id_slot.unwrap_or(Slot {
                at: labels_end,
                skip: 0,
            });
            let name = name_slot.unwrap_or(Slot {
                at: labels_end,
                skip: 0,
            });
            let before = series.get(..id.at)?;
            let between = series.get(id.at + id.skip..name.at)?;
            let after = series.get(name.at + name.skip..)?;
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
    Some(samples)
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

/// Label names of 1 to 8 bytes already found valid in this request, by key (see
/// [`name_key`]), and metric names likewise: a request repeats a few names on most series,
/// and looking one up costs less than checking it again.
#[derive(Debug)]
pub(crate) struct SeenNames<'a> {
    labels: [u64; 64],
    /// A name, and its last 8 bytes as `metric_name_ok` reads them.
    metrics: [(&'a [u8], u64); 64],
}

impl<'a> SeenNames<'a> {
    pub(crate) fn new() -> Self {
        Self {
            labels: [0; 64],
            metrics: [(&[], 0); 64],
        }
    }

    /// `names::metric_name_ok`, remembering a valid name (at most one per slot: its
    /// length and last 8 bytes pick the slot).
    #[inline]
    fn metric_name_ok(&mut self, name: &'a [u8]) -> bool {
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
        let ok = metric_name_ok(name);
        if ok {
            self.metrics[slot] = (name, tail);
        }
        ok
    }

    #[inline]
    fn slot(key: u64) -> usize {
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize & 63
    }

    /// Whether the name of `n` bytes with key `key` is one found valid before. A key
    /// stands for one name of each length up to 8 (its bytes past the length are 0); of
    /// those, only one has no zero byte, and only that one can have been found valid: the
    /// one whose last byte, byte `n - 1`, is not 0.
    #[inline]
    fn has(&self, key: u64, n: usize) -> bool {
        n <= 8 && self.labels[Self::slot(key)] == key && key & NAME_WORD[n.min(8)].2 != 0
    }

    /// [`label_name_ok`], remembering a valid name of up to 8 bytes.
    #[inline]
    fn check(&mut self, name: &[u8], key: u64) -> bool {
        let ok = label_name_ok(name, key);
        if ok && name.len() <= 8 {
            self.labels[Self::slot(key)] = key;
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
                assert!(seen.metric_name_ok(good));
                assert!(!seen.metric_name_ok(bad), "{bad:?}");
            }
        }
        // Label names: each valid one remembered, then names with the same key that are
        // not it (longer, padded with zero bytes) refused.
        for name in [&b"a"[..], b"job", b"node_id", b"instance"] {
            let word = name
                .iter()
                .enumerate()
                .fold(0, |w, (i, b)| w | u64::from(*b) << (56 - 8 * i));
            let key = name_key(word, name.len());
            assert!(!seen.has(key, name.len()));
            assert!(seen.check(name, key));
            assert!(seen.has(key, name.len()));
            for longer in name.len() + 1..=8 {
                assert_eq!(name_key(word, longer), key);
                assert!(!seen.has(key, longer), "{name:?} padded to {longer}");
            }
        }
    }
}
