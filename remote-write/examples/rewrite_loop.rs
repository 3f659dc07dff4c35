//! A fixed amount of work on the server's fast path, for instruction counts under
//! callgrind (`valgrind --tool=callgrind`) and for profiles: `ITERATIONS` rewrites of one
//! push of `SERIES` series, stamped unless the first argument is `unstamped`. The push is
//! shaped like bench/src/relabel.rs's (node_exporter-like, each series with a forged
//! `node_name`), or with `write` like bench/src/write.rs's (four labels, no forgery).
//!
//!   cargo run --release -p perch-remote-write --example rewrite_loop -- \
//!     [stamped|unstamped] [ITERATIONS] [relabel|write]

use perch_remote_write::{Label, Limits, NodeStamp, Sample, TimeSeries, WriteRequest, rewrite};

const SERIES: usize = 1000;
const NOW_MS: i64 = 1_800_000_000_000;

fn push(series: usize) -> WriteRequest {
    let shapes: [(&str, &[&str]); 4] = [
        ("node_cpu_seconds_total", &["cpu", "mode"]),
        (
            "node_filesystem_avail_bytes",
            &["device", "fstype", "mountpoint"],
        ),
        ("node_network_receive_bytes_total", &["device"]),
        ("node_disk_io_time_seconds_total", &["device"]),
    ];
    let timeseries = (0..series)
        .map(|i| {
            let (name, extra) = shapes[i % shapes.len()];
            let mut labels = vec![
                Label {
                    name: "__name__".into(),
                    value: name.into(),
                },
                Label {
                    name: "instance".into(),
                    value: "web-1:9100".into(),
                },
                Label {
                    name: "job".into(),
                    value: "node".into(),
                },
                Label {
                    name: "node_name".into(),
                    value: "forged".into(),
                },
            ];
            labels.extend(extra.iter().map(|l| Label {
                name: (*l).into(),
                value: format!("{l}{i}"),
            }));
            labels.sort_by(|a, b| a.name.cmp(&b.name));
            TimeSeries {
                labels,
                samples: vec![Sample {
                    value: i as f64 * 1.5,
                    timestamp: NOW_MS,
                }],
            }
        })
        .collect();
    WriteRequest { timeseries }
}

fn write_push(series: usize) -> WriteRequest {
    let timeseries = (0..series)
        .map(|i| TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: format!("bench_metric_{}", i % 50),
                },
                Label {
                    name: "instance".into(),
                    value: "bench:9100".into(),
                },
                Label {
                    name: "job".into(),
                    value: "bench".into(),
                },
                Label {
                    name: "series".into(),
                    value: i.to_string(),
                },
            ],
            samples: vec![Sample {
                value: 7.0,
                timestamp: NOW_MS - 60_000,
            }],
        })
        .collect();
    WriteRequest { timeseries }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let stamped = args.next().as_deref() != Some("unstamped");
    let iterations: usize = args.next().map_or(Ok(200), |n| n.parse())?;
    let body = match args.next().as_deref() {
        Some("write") => write_push(SERIES),
        _ => push(SERIES),
    }
    .encode_body();
    let limits = Limits::default();
    let stamp = stamped.then_some(NodeStamp {
        node_id: "n-42",
        node_name: "web-1",
    });
    let mut samples = 0;
    for _ in 0..iterations {
        let out = rewrite(&body, &limits, NOW_MS, stamp)?;
        samples += out.samples;
        std::hint::black_box(&out);
    }
    println!("samples={samples}");
    Ok(())
}
