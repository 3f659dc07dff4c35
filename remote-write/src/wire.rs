//! Protobuf wire format primitives over borrowed bytes, reading exactly what prost 0.14
//! reads and refusing exactly what it refuses: keys, varints, fixed 64-bit values,
//! length-delimited fields and skipping unknown fields (groups included, with prost's
//! recursion limit).

/// The bytes are not valid protobuf (as prost judges it). Which fault it is does not matter
/// here: the caller asks prost for its wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

pub(crate) const VARINT: u8 = 0;
pub(crate) const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// prost's `RECURSION_LIMIT`: the budget a top-level message's fields are decoded with.
/// Each nested message or group costs one; skipping a field with a budget of 0 fails.
pub(crate) const RECURSION_LIMIT: u32 = 100;

/// A cursor over the bytes not read yet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    /// The length of the bytes read from.
    len: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self {
            rest: bytes,
            len: bytes.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// How many bytes have been read.
    pub(crate) fn offset(&self) -> usize {
        self.len - self.rest.len()
    }

    /// A LEB128 varint of at most 10 bytes; a 10th byte must be 0 or 1 (no overflow).
    /// Non-minimal encodings are accepted, as prost accepts them.
    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64, Malformed> {
        let Some((&first, tail)) = self.rest.split_first() else {
            return Err(Malformed);
        };
        if first < 0x80 {
            self.rest = tail;
            return Ok(u64::from(first));
        }
        // Two bytes: lengths from 128 to 16383, most series.
        if let [second, rest @ ..] = tail
            && *second < 0x80
        {
            self.rest = rest;
            return Ok(u64::from(first & 0x7f) | u64::from(*second) << 7);
        }
        self.varint_long()
    }

    fn varint_long(&mut self) -> Result<u64, Malformed> {
        let mut value = 0u64;
        for (count, &byte) in self.rest.iter().take(10).enumerate() {
            value |= u64::from(byte & 0x7f) << (count * 7);
            if byte < 0x80 {
                if count == 9 && byte >= 0x02 {
                    return Err(Malformed);
                }
                self.rest = self.rest.get(count + 1..).ok_or(Malformed)?;
                return Ok(value);
            }
        }
        Err(Malformed)
    }

    /// A length-delimited field whose key is `key` (one byte) and whose length fits in one
    /// byte: its payload, consumed. `None`, consuming nothing, when the next field is not
    /// that (including when it is cut short: the general path then says why).
    #[inline]
    pub(crate) fn short_field(&mut self, key: u8) -> Option<&'a [u8]> {
        match self.rest {
            [k, len, tail @ ..] if *k == key && *len < 0x80 => {
                let (payload, rest) = tail.split_at_checked(usize::from(*len))?;
                self.rest = rest;
                Some(payload)
            }
            _ => None,
        }
    }

    /// A field key: `(field number, wire type)`. Keys above `u32::MAX`, wire types 6 and
    /// 7 and field number 0 are refused.
    #[inline]
    pub(crate) fn key(&mut self) -> Result<(u32, u8), Malformed> {
        let key = self.varint()?;
        let key = u32::try_from(key).map_err(|_| Malformed)?;
        let wire_type = (key & 7) as u8;
        if wire_type > FIXED32 {
            return Err(Malformed);
        }
        let tag = key >> 3;
        if tag == 0 {
            return Err(Malformed);
        }
        Ok((tag, wire_type))
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], Malformed> {
        let len = usize::try_from(len).map_err(|_| Malformed)?;
        if len > self.rest.len() {
            return Err(Malformed);
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    /// The payload of a length-delimited field (its length varint already read here).
    #[inline]
    pub(crate) fn len_delimited(&mut self) -> Result<&'a [u8], Malformed> {
        let len = self.varint()?;
        self.take(len)
    }

    /// A little-endian 64-bit value (`double`, `fixed64`).
    #[inline]
    pub(crate) fn fixed64(&mut self) -> Result<u64, Malformed> {
        let bytes: [u8; 8] = self.take(8)?.try_into().map_err(|_| Malformed)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// Skips the value of a field this decoder does not know, as prost's `skip_field`
    /// does: `budget` is the recursion budget the enclosing message's fields are decoded
    /// with, and a group's fields are skipped with one less.
    pub(crate) fn skip(&mut self, wire_type: u8, tag: u32, budget: u32) -> Result<(), Malformed> {
        if budget == 0 {
            return Err(Malformed);
        }
        match wire_type {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            FIXED32 => self.take(4).map(drop),
            LEN => self.len_delimited().map(drop),
            START_GROUP => loop {
                let (inner_tag, inner_type) = self.key()?;
                if inner_type == END_GROUP {
                    return if inner_tag == tag {
                        Ok(())
                    } else {
                        Err(Malformed)
                    };
                }
                self.skip(inner_type, inner_tag, budget - 1)?;
            },
            _ => Err(Malformed),
        }
    }
}

/// Appends `value` as a minimal LEB128 varint (1 to 10 bytes).
#[inline]
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The number of bytes `put_varint` writes for `value`: 1 to 10.
#[inline]
pub(crate) fn varint_len(value: u64) -> usize {
    if value < 0x80 {
        1
    } else {
        let bits = 64 - value.leading_zeros() as usize;
        bits.div_ceil(7)
    }
}

/// Appends a `TimeSeries.samples` field: the value only when it is not `0.0` or `-0.0`
/// (NaN is written, bits unchanged), the timestamp only when it is not 0.
#[inline]
pub(crate) fn put_sample(out: &mut Vec<u8>, value_bits: u64, timestamp: i64) {
    let has_value = value_bits & !(1 << 63) != 0;
    let ts = timestamp as u64;
    let len = if has_value { 9 } else { 0 } + if ts != 0 { 1 + varint_len(ts) } else { 0 };
    // Key 2, wire type 2; the length is at most 9 + 11 = 20, one byte.
    out.push(0x12);
    out.push(len as u8);
    if has_value {
        out.push(0x09);
        out.extend_from_slice(&value_bits.to_le_bytes());
    }
    if ts != 0 {
        out.push(0x10);
        put_varint(out, ts);
    }
}
