//! `/proc/diskstats` (Documentation/admin-guide/iostats.rst).

use super::{ParseError, uint};

/// node_exporter's names for the counters of a diskstats line, in column order, with
/// the factor that turns each into the metric's unit: sectors are 512 bytes whatever
/// the device ("standard UNIX 512-byte sectors"), times are milliseconds; discarded
/// sectors stay sectors, as in node_exporter.
pub(crate) const DISK_METRICS: [(&str, f64); 17] = [
    ("node_disk_reads_completed_total", 1.0),
    ("node_disk_reads_merged_total", 1.0),
    ("node_disk_read_bytes_total", 512.0),
    ("node_disk_read_time_seconds_total", MS),
    ("node_disk_writes_completed_total", 1.0),
    ("node_disk_writes_merged_total", 1.0),
    ("node_disk_written_bytes_total", 512.0),
    ("node_disk_write_time_seconds_total", MS),
    ("node_disk_io_now", 1.0),
    ("node_disk_io_time_seconds_total", MS),
    ("node_disk_io_time_weighted_seconds_total", MS),
    ("node_disk_discards_completed_total", 1.0),
    ("node_disk_discards_merged_total", 1.0),
    ("node_disk_discarded_sectors_total", 1.0),
    ("node_disk_discard_time_seconds_total", MS),
    ("node_disk_flush_requests_total", 1.0),
    ("node_disk_flush_requests_time_seconds_total", MS),
];

/// Seconds per millisecond tick, the constant node_exporter multiplies by (so that
/// values come out bit-for-bit the same).
const MS: f64 = 1.0 / 1000.0;

/// One device's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DiskLine<'a> {
    pub name: &'a str,
    /// The counters in column order; only the first `count` are present.
    pub values: [u64; 17],
    /// How many counters the line has: 11 (before Linux 4.18), 15 (4.18+: discards)
    /// or 17 (5.5+: flushes); at most 17 are kept.
    pub count: usize,
}

/// The device lines of /proc/diskstats in file order. A line with fewer than 11
/// counters or a counter that is not a whole number is an error.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = Result<DiskLine<'_>, ParseError>> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let n = i + 1;
        let mut fields = line.split_ascii_whitespace();
        let _major = fields.next()?;
        Some(parse_line(fields, n))
    })
}

fn parse_line<'a>(
    mut fields: std::str::SplitAsciiWhitespace<'a>,
    line: usize,
) -> Result<DiskLine<'a>, ParseError> {
    let short = ParseError {
        line,
        reason: "fewer than 11 counters",
    };
    let _minor = fields.next().ok_or(short)?;
    let name = fields.next().ok_or(short)?;
    let mut values = [0u64; 17];
    let mut count = 0;
    for (slot, field) in values.iter_mut().zip(fields) {
        *slot = uint(field, line, "counter is not a whole number")?;
        count += 1;
    }
    if count < 11 {
        return Err(short);
    }
    Ok(DiskLine {
        name,
        values,
        count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample() {
        let text = include_str!("../../tests/data/proc/diskstats");
        let all: Vec<DiskLine> = lines(text).collect::<Result<_, _>>().unwrap();
        assert_eq!(all.len(), 15);
        let nvme = all.iter().find(|d| d.name == "nvme0n1").unwrap();
        assert_eq!(nvme.count, 17);
        assert_eq!(nvme.values[2], 325_768_402);
        assert_eq!(nvme.values[16], 590_185);
        let sda = all.iter().find(|d| d.name == "sda").unwrap();
        assert_eq!(sda.count, 11);
        assert_eq!(sda.values[8], 2);
        assert_eq!(sda.values[11..], [0; 6]);
        let xvdb = all.iter().find(|d| d.name == "xvdb").unwrap();
        assert_eq!(xvdb.count, 15);
    }

    #[test]
    fn bad_lines() {
        let first = |t| lines(t).next().unwrap();
        assert_eq!(
            first("8 0 sda 1 2 3"),
            Err(ParseError {
                line: 1,
                reason: "fewer than 11 counters"
            })
        );
        assert_eq!(
            first("8 0"),
            Err(ParseError {
                line: 1,
                reason: "fewer than 11 counters"
            })
        );
        assert_eq!(
            first("8 0 sda 1 2 3 4 5 6 7 8 9 10 -1"),
            Err(ParseError {
                line: 1,
                reason: "counter is not a whole number"
            })
        );
        assert_eq!(lines("\n").count(), 0);
    }

    #[test]
    fn factors_match_node_exporter() {
        // node_exporter: float64(ReadTicks) * (1.0 / 1000.0); 12258 ms prints as
        // 12.258000000000001 in its output.
        assert_eq!(12258.0 * MS, 12.258000000000001);
    }
}
