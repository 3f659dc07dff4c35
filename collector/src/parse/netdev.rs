//! `/proc/net/dev`: per-interface counters.

use super::{ParseError, uint};

/// node_exporter's names for the 16 columns of /proc/net/dev (its netdev collector
/// reading that file: `node_network_` + header + `_total`).
pub(crate) const NETDEV_METRICS: [&str; 16] = [
    "node_network_receive_bytes_total",
    "node_network_receive_packets_total",
    "node_network_receive_errs_total",
    "node_network_receive_drop_total",
    "node_network_receive_fifo_total",
    "node_network_receive_frame_total",
    "node_network_receive_compressed_total",
    "node_network_receive_multicast_total",
    "node_network_transmit_bytes_total",
    "node_network_transmit_packets_total",
    "node_network_transmit_errs_total",
    "node_network_transmit_drop_total",
    "node_network_transmit_fifo_total",
    "node_network_transmit_colls_total",
    "node_network_transmit_carrier_total",
    "node_network_transmit_compressed_total",
];

/// One interface's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NetDevLine<'a> {
    pub name: &'a str,
    pub values: [u64; 16],
}

/// The interface lines of /proc/net/dev (the two header lines skipped). The name is
/// everything before the last `:`, trimmed; a line without 16 whole numbers after it is
/// an error.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = Result<NetDevLine<'_>, ParseError>> {
    text.lines()
        .enumerate()
        .skip(2)
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let n = i + 1;
            let (name, rest) = line.rsplit_once(':').ok_or(ParseError {
                line: n,
                reason: "no colon after the name",
            })?;
            let mut values = [0u64; 16];
            let mut fields = rest.split_ascii_whitespace();
            for slot in &mut values {
                let field = fields.next().ok_or(ParseError {
                    line: n,
                    reason: "fewer than 16 counters",
                })?;
                *slot = uint(field, n, "counter is not a whole number")?;
            }
            Ok(NetDevLine {
                name: name.trim(),
                values,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample() {
        let text = include_str!("../../tests/data/proc/net/dev");
        let all: Vec<NetDevLine> = lines(text).collect::<Result<_, _>>().unwrap();
        let names: Vec<&str> = all.iter().map(|l| l.name).collect();
        assert_eq!(names, ["lo", "eth0", "docker0", "veth3a1b2c4", "wg0"]);
        assert_eq!(
            all[1].values,
            [
                98174218311,
                91358134,
                3,
                41,
                0,
                2,
                0,
                288314,
                23587140102,
                59872103,
                0,
                5,
                0,
                0,
                1,
                0
            ]
        );
        assert_eq!(all[4].values[0], u64::MAX);
    }

    #[test]
    fn bad_lines() {
        let hdr = "a\nb\n";
        let first = |t: &str| {
            lines(&format!("{hdr}{t}"))
                .next()
                .unwrap()
                .map(|l| l.values[0])
        };
        assert_eq!(
            first("eth0 1 2"),
            Err(ParseError {
                line: 3,
                reason: "no colon after the name"
            })
        );
        assert_eq!(
            first("eth0: 1 2"),
            Err(ParseError {
                line: 3,
                reason: "fewer than 16 counters"
            })
        );
        assert_eq!(
            first("eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x"),
            Err(ParseError {
                line: 3,
                reason: "counter is not a whole number"
            })
        );
    }
}
