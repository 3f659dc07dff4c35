//! Label and metric name syntax, and the byte order names are sorted in, on raw bytes.

use std::cmp::Ordering;

/// One in every byte of a word.
const ONES: u64 = 0x0101_0101_0101_0101;
/// Bit 7 of every byte of a word.
pub(crate) const HIGH: u64 = 0x80 * ONES;

/// Bit 7 of each byte of `x` set where that byte lies in `lo..=hi`, for words whose bytes
/// are all below 0x80 (so that no sum carries into the next byte) and `lo <= hi < 0x80`.
#[inline]
const fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
    let at_least_lo = x.wrapping_add(ONES * (0x80 - lo as u64));
    let above_hi = x.wrapping_add(ONES * (0x7f - hi as u64));
    at_least_lo & !above_hi & HIGH
}

/// Bit 7 of each byte of `word` set where that byte is `[a-zA-Z0-9_]` (or `:` as well,
/// with `colon`), whatever the bytes (those from 0x80 up are never set).
#[inline]
pub(crate) const fn name_bytes(word: u64, colon: bool) -> u64 {
    let low = word & !HIGH;
    let alpha = in_range(low | (0x20 * ONES), b'a', b'z');
    let digit = in_range(low, b'0', if colon { b':' } else { b'9' });
    let underscore = in_range(low, b'_', b'_');
    (alpha | digit | underscore) & !word
}

/// Whether every byte of `b` is `[a-zA-Z0-9_]` (or `:` with `colon`), 8 at a time.
#[inline]
pub(crate) fn all_name_bytes(b: &[u8], colon: bool) -> bool {
    let mut words = b.chunks_exact(8);
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        if name_bytes(word, colon) != HIGH {
            return false;
        }
    }
    let rest = words.remainder();
    if rest.is_empty() {
        return true;
    }
    // The last up to 7 bytes: as the last 8 of all, or padded with valid bytes.
    let word = match b.last_chunk::<8>() {
        Some(last) => u64::from_le_bytes(*last),
        None => rest
            .iter()
            .rev()
            .fold(u64::from_le_bytes(*b"________"), |w, c| {
                w << 8 | u64::from(*c)
            }),
    };
    name_bytes(word, colon) == HIGH
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, 1 to `limit` bytes.
#[inline]
pub(crate) fn label_name_ok(b: &[u8], limit: usize) -> bool {
    match b.first() {
        Some(first) => b.len() <= limit && !first.is_ascii_digit() && all_name_bytes(b, false),
        None => false,
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, at least 1 byte.
#[inline]
pub(crate) fn metric_name_ok(b: &[u8]) -> bool {
    match b.first() {
        Some(first) => !first.is_ascii_digit() && all_name_bytes(b, true),
        None => false,
    }
}

/// Byte-wise lexicographic order, as `str`'s and `[u8]`'s `Ord`; inlined for the short
/// names it compares, which mostly differ in their first bytes.
#[inline]
pub(crate) fn cmp(a: &[u8], b: &[u8]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// Whether `name` is exactly `__name__`.
#[inline]
pub(crate) fn is_metric_name_label(name: &[u8]) -> bool {
    <[u8; 8]>::try_from(name).is_ok_and(|n| n == *b"__name__")
}

/// Whether `name` is `node_id` or `node_name`, the labels stamping replaces.
#[inline]
pub(crate) fn is_identity_label(name: &[u8]) -> bool {
    <[u8; 7]>::try_from(name).is_ok_and(|n| n == *b"node_id")
        || <[u8; 9]>::try_from(name).is_ok_and(|n| n == *b"node_name")
}

/// The identity stamped on every series: `node_id` and `node_name` label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeStamp<'a> {
    pub node_id: &'a str,
    pub node_name: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_match_the_documented_syntax() {
        for b in 0..=255u8 {
            let one = [b];
            let alpha = b.is_ascii_alphabetic() || b == b'_';
            assert_eq!(label_name_ok(&one, 1), alpha, "{b}");
            assert_eq!(metric_name_ok(&one), alpha || b == b':', "{b}");
            let two = [b'a', b];
            assert_eq!(label_name_ok(&two, 2), alpha || b.is_ascii_digit(), "{b}");
            assert_eq!(
                metric_name_ok(&two),
                alpha || b.is_ascii_digit() || b == b':',
                "{b}"
            );
        }
        // Every byte at every place of a word and of the bytes after the last whole word.
        for len in 1..=19 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut name = vec![b'a'; len];
                    name[at] = b;
                    let alpha = b.is_ascii_alphabetic() || b == b'_';
                    let digit = b.is_ascii_digit();
                    let label = alpha || (digit && at > 0);
                    let metric = alpha || b == b':' || (digit && at > 0);
                    assert_eq!(label_name_ok(&name, len), label, "{name:?}");
                    assert_eq!(metric_name_ok(&name), metric, "{name:?}");
                }
            }
        }
        assert!(!label_name_ok(b"", 10));
        assert!(!label_name_ok(b"abc", 2));
        assert!(!metric_name_ok(b""));
    }

    #[test]
    fn cmp_is_byte_order() {
        let words: [&[u8]; 9] = [
            b"",
            b"a",
            b"ab",
            b"b",
            b"a\0",
            b"node_id",
            b"node_id_x",
            b"node_name",
            b"\xff",
        ];
        for a in words {
            for b in words {
                assert_eq!(cmp(a, b), a.cmp(b));
            }
        }
    }
}
