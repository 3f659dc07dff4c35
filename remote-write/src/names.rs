//! Label and metric name syntax, and the byte order names are sorted in, on raw bytes.

use std::cmp::Ordering;

const LABEL_START: u8 = 1;
const LABEL_REST: u8 = 2;
const METRIC_START: u8 = 4;
const METRIC_REST: u8 = 8;

/// For each byte, which of the four classes it belongs to.
static CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let alpha = b.is_ascii_alphabetic() || b == b'_';
        let digit = b.is_ascii_digit();
        let mut flags = 0;
        if alpha {
            flags |= LABEL_START | LABEL_REST | METRIC_START | METRIC_REST;
        }
        if digit {
            flags |= LABEL_REST | METRIC_REST;
        }
        if b == b':' {
            flags |= METRIC_START | METRIC_REST;
        }
        t[c] = flags;
        c += 1;
    }
    t
};

/// The classes every byte of `b` belongs to.
#[inline]
fn common_classes(b: &[u8]) -> u8 {
    let mut acc = 0xff;
    for c in b {
        acc &= CLASSES[usize::from(*c)];
    }
    acc
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, 1 to `limit` bytes.
#[inline]
pub(crate) fn label_name_ok(b: &[u8], limit: usize) -> bool {
    match b.first() {
        Some(first) => {
            b.len() <= limit
                && CLASSES[usize::from(*first)] & LABEL_START != 0
                && common_classes(b) & LABEL_REST != 0
        }
        None => false,
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, at least 1 byte.
#[inline]
pub(crate) fn metric_name_ok(b: &[u8]) -> bool {
    match b.first() {
        Some(first) => {
            CLASSES[usize::from(*first)] & METRIC_START != 0 && common_classes(b) & METRIC_REST != 0
        }
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
