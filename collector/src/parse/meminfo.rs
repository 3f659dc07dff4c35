//! `/proc/meminfo`, named as node_exporter names it.
//!
//! node_exporter's rule (collector/meminfo_linux.go, `parseMemInfo`): split the line on
//! white space; the key is the first field less its trailing `:`; the regexp `\((.*)\)`
//! becomes `_$1` (`Active(anon)` -> `Active_anon`); a line with a unit (always `kB`) is
//! multiplied by 1024 and its name gets `_bytes`; a line without one (`HugePages_Total`)
//! is a count and keeps its name. The metric is `node_memory_` + that name.

use super::ParseError;

/// One line of /proc/meminfo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MemEntry<'a> {
    /// The key as the kernel wrote it, without the colon: `Active(anon)`.
    pub key: &'a str,
    /// The value: bytes when `bytes`, else the bare number.
    pub value: f64,
    /// Whether the line had a unit (kB), so the value is in bytes.
    pub bytes: bool,
}

impl<'a> MemEntry<'a> {
    /// The metric name in pieces to concatenate: `node_memory_`, the key with its
    /// parenthesis rewritten, and `_bytes` when the line had a unit. `None` when the key
    /// would not make a valid metric name (such a line is left out).
    pub(crate) fn name_parts(&self) -> Option<[&'a str; 6]> {
        let (head, mid, inner, tail) = match self.key.find('(') {
            // The regexp is leftmost-first and greedy: from the first `(` that has a `)`
            // after it, to the last `)`.
            Some(open) => match self.key.rfind(')') {
                Some(close) if close > open => (
                    &self.key[..open],
                    "_",
                    &self.key[open + 1..close],
                    &self.key[close + 1..],
                ),
                _ => (self.key, "", "", ""),
            },
            None => (self.key, "", "", ""),
        };
        let valid = [head, inner, tail]
            .iter()
            .all(|s| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        if !valid || self.key.is_empty() {
            return None;
        }
        let suffix = if self.bytes { "_bytes" } else { "" };
        Some(["node_memory_", head, mid, inner, tail, suffix])
    }
}

/// The entries of /proc/meminfo in file order. Blank lines are skipped; a line with a
/// value that is not a number, or with more than a unit after it, is an error.
pub(crate) fn entries(text: &str) -> impl Iterator<Item = Result<MemEntry<'_>, ParseError>> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let n = i + 1;
        let mut fields = line.split_ascii_whitespace();
        let key = fields.next()?;
        Some(parse_line(key, fields, n))
    })
}

fn parse_line<'a>(
    key: &'a str,
    mut fields: std::str::SplitAsciiWhitespace<'a>,
    line: usize,
) -> Result<MemEntry<'a>, ParseError> {
    let key = key.strip_suffix(':').ok_or(ParseError {
        line,
        reason: "key without a colon",
    })?;
    let value = fields.next().ok_or(ParseError {
        line,
        reason: "key without a value",
    })?;
    let mut value: f64 = value
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or(ParseError {
            line,
            reason: "value is not a number",
        })?;
    let bytes = fields.next().is_some();
    if fields.next().is_some() {
        return Err(ParseError {
            line,
            reason: "more than a value and a unit",
        });
    }
    if bytes {
        value *= 1024.0;
    }
    Ok(MemEntry { key, value, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str = include_str!("../../tests/data/proc/meminfo");

    fn name(e: &MemEntry) -> Option<String> {
        e.name_parts().map(|p| p.concat())
    }

    #[test]
    fn sample() {
        let all: Vec<MemEntry> = entries(MEMINFO).collect::<Result<_, _>>().unwrap();
        assert_eq!(all.len(), 56);
        let find = |n: &str| {
            all.iter()
                .find(|e| name(e).as_deref() == Some(n))
                .map(|e| e.value)
        };
        assert_eq!(
            find("node_memory_MemTotal_bytes"),
            Some(65_768_940.0 * 1024.0)
        );
        assert_eq!(
            find("node_memory_MemAvailable_bytes"),
            Some(41_253_804.0 * 1024.0)
        );
        assert_eq!(
            find("node_memory_Active_anon_bytes"),
            Some(18_104_968.0 * 1024.0)
        );
        assert_eq!(
            find("node_memory_Inactive_file_bytes"),
            Some(27_070_312.0 * 1024.0)
        );
        assert_eq!(find("node_memory_NFS_Unstable_bytes"), Some(0.0));
        assert_eq!(
            find("node_memory_Committed_AS_bytes"),
            Some(39_478_332.0 * 1024.0)
        );
        assert_eq!(
            find("node_memory_VmallocTotal_bytes"),
            Some(34_359_738_367.0 * 1024.0)
        );
        assert_eq!(find("node_memory_HugePages_Total"), Some(16.0));
        assert_eq!(find("node_memory_HugePages_Free"), Some(12.0));
        assert_eq!(find("node_memory_HugePages_Rsvd"), Some(2.0));
        assert_eq!(
            find("node_memory_Hugepagesize_bytes"),
            Some(2048.0 * 1024.0)
        );
        assert_eq!(
            find("node_memory_DirectMap1G_bytes"),
            Some(25_165_824.0 * 1024.0)
        );
        assert_eq!(find("node_memory_HugePages_Total_bytes"), None);
        assert_eq!(find("node_memory_Active(anon)_bytes"), None);
    }

    #[test]
    fn parenthesis_rule_is_the_greedy_regexp() {
        let e = |key| MemEntry {
            key,
            value: 1.0,
            bytes: true,
        };
        assert_eq!(
            name(&e("Active(anon)")).unwrap(),
            "node_memory_Active_anon_bytes"
        );
        // The regexp would give `A_b)c(d`, not a valid metric name: left out.
        assert_eq!(name(&e("A(b)c(d)")), None);
        assert_eq!(name(&e("A)b(c")), None);
        assert_eq!(name(&e("X(y)z")).unwrap(), "node_memory_X_yz_bytes");
        assert_eq!(name(&e("Bad-Name")), None);
        let count = MemEntry {
            key: "HugePages_Surp",
            value: 0.0,
            bytes: false,
        };
        assert_eq!(name(&count).unwrap(), "node_memory_HugePages_Surp");
    }

    #[test]
    fn bad_lines() {
        let first = |t| entries(t).next().unwrap();
        assert_eq!(
            first("MemTotal 5 kB"),
            Err(ParseError {
                line: 1,
                reason: "key without a colon"
            })
        );
        assert_eq!(
            first("MemTotal:"),
            Err(ParseError {
                line: 1,
                reason: "key without a value"
            })
        );
        assert_eq!(
            first("MemTotal: x kB"),
            Err(ParseError {
                line: 1,
                reason: "value is not a number"
            })
        );
        assert_eq!(
            first("MemTotal: 5 kB extra"),
            Err(ParseError {
                line: 1,
                reason: "more than a value and a unit"
            })
        );
        assert_eq!(entries("\n\n").count(), 0);
    }
}
