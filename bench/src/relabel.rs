//! The write path's CPU cost, without the network: how many samples per second one core
//! pushes through (a) stamping the node's identity alone, (b) the whole step the server
//! runs per request (decompress, decode, validate, stamp, encode, compress) on owned values
//! (`decode_body`, `stamp`, `encode_body`), (c) the same step on the one-pass fast path
//! (`perch_remote_write::rewrite`), whose output is first checked to be (b)'s byte for byte,
//! and (d) the fast path without a stamp (an Editor token's write: check, drop unknown
//! fields, forward).
//!
//! `perch-bench relabel [--series 1000] [--seconds 5] [--write-shape]
//! [--iterations N [--unstamped]]`
//!
//! The request imitates one agent push: `--series` series (default 1000) of node_exporter
//! shape (`node_cpu_seconds_total{cpu,mode}`, `node_filesystem_avail_bytes{device,fstype,
//! mountpoint}`, ...) with one sample each, the forged `node_name` a malicious agent might
//! send; with `--write-shape`, one of `perch-bench write`'s pushes instead (four labels, no
//! forgery).
//!
//! With `--iterations N`, nothing is timed: the fast path rewrites the request `N` times,
//! stamped unless `--unstamped`, and the samples are counted. That fixed amount of work is
//! for instruction counts under callgrind (`valgrind --tool=callgrind`) and for profiles.

use std::time::{Duration, Instant};

use anyhow::bail;
use perch_remote_write::{Label, Limits, NodeStamp, Sample, TimeSeries, WriteRequest};

fn push(series: usize, now_ms: i64) -> WriteRequest {
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
                    timestamp: now_ms,
                }],
            }
        })
        .collect();
    WriteRequest { timeseries }
}

fn rate(samples: usize, elapsed: Duration) -> f64 {
    samples as f64 / elapsed.as_secs_f64()
}

/// `n` rewrites of `body` on the fast path: the samples they carried, all together.
fn rewrites(
    n: usize,
    body: &[u8],
    limits: &Limits,
    now_ms: i64,
    stamp: Option<NodeStamp<'_>>,
) -> anyhow::Result<usize> {
    let mut samples = 0;
    for _ in 0..n {
        let out = perch_remote_write::rewrite(body, limits, now_ms, stamp)?;
        samples += out.samples;
        std::hint::black_box(&out);
    }
    Ok(samples)
}

pub fn run(args: Vec<String>) -> anyhow::Result<()> {
    let mut series = 1000;
    let mut seconds = 5u64;
    let mut write_shape = false;
    let mut iterations = None;
    let mut unstamped = false;
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--series" => series = it.next().unwrap_or_default().parse()?,
            "--seconds" => seconds = it.next().unwrap_or_default().parse()?,
            "--write-shape" => write_shape = true,
            "--iterations" => iterations = Some(it.next().unwrap_or_default().parse()?),
            "--unstamped" => unstamped = true,
            other => bail!("unknown argument {other}"),
        }
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let template = if write_shape {
        // Its second push (values 1.0): the first one's are all 0.0, which prost leaves out,
        // so that none of its series takes the fast path's common-series lane.
        crate::write::push(series, 1, now_ms)
    } else {
        push(series, now_ms)
    };
    let body = template.encode_body();
    let limits = Limits::default();
    let stamp = Some(NodeStamp {
        node_id: "n-42",
        node_name: "web-1",
    });
    match (iterations, unstamped) {
        (Some(n), _) => {
            let stamp = stamp.filter(|_| !unstamped);
            let samples = rewrites(n, &body, &limits, now_ms, stamp)?;
            println!(
                "series_per_request={series} iterations={n} unstamped={unstamped} samples={samples}"
            );
            return Ok(());
        }
        (None, true) => bail!("--unstamped goes with --iterations (the timed run measures both)"),
        (None, false) => {}
    }
    let budget = Duration::from_secs(seconds);

    // (a) Stamping alone, on copies prepared outside the timed section.
    let mut stamped = 0;
    let mut stamp_time = Duration::ZERO;
    while stamp_time < budget {
        let mut batch: Vec<WriteRequest> = (0..16).map(|_| template.clone()).collect();
        let start = Instant::now();
        for req in &mut batch {
            req.stamp("n-42", "web-1");
        }
        stamp_time += start.elapsed();
        stamped += 16 * series;
        std::hint::black_box(&batch);
    }

    // (b) The whole step.
    let mut full = 0;
    let start = Instant::now();
    let mut out_bytes = 0;
    while start.elapsed() < budget {
        let mut req = WriteRequest::decode_body(&body, &limits, now_ms)?;
        req.stamp("n-42", "web-1");
        out_bytes = req.encode_body().len();
        full += series;
    }
    let full_time = start.elapsed();

    // (c) The whole step on the fast path, once its output is known to be (b)'s.
    let mut slow = WriteRequest::decode_body(&body, &limits, now_ms)?;
    slow.stamp("n-42", "web-1");
    if perch_remote_write::rewrite(&body, &limits, now_ms, stamp)?.body != slow.encode_body() {
        bail!("the fast path's output differs from decode_body + stamp + encode_body");
    }
    let fast_rate = |stamp| -> anyhow::Result<f64> {
        let mut samples = 0;
        let start = Instant::now();
        while start.elapsed() < budget {
            samples += rewrites(16, &body, &limits, now_ms, stamp)?;
        }
        Ok(rate(samples, start.elapsed()))
    };
    let fast = fast_rate(stamp)?;
    // (d)
    let unstamped = fast_rate(None)?;
    println!(
        "series_per_request={series} body_bytes={} out_bytes={out_bytes} stamp_samples_per_s={:.0} full_step_samples_per_s={:.0} fast_step_samples_per_s={fast:.0} fast_unstamped_samples_per_s={unstamped:.0}",
        body.len(),
        rate(stamped, stamp_time),
        rate(full, full_time),
    );
    Ok(())
}
