//! The write path's CPU cost, without the network: how many samples per second one core
//! pushes through (a) stamping the node's identity alone, (b) the whole step the server
//! runs per request (decompress, decode, validate, stamp, encode, compress) on owned values
//! (`decode_body`, `stamp`, `encode_body`), (c) the same step on the one-pass fast path
//! (`perch_remote_write::rewrite`), whose output is first checked to be (b)'s byte for byte,
//! (d) the fast path without a stamp (an Editor token's write: check, drop unknown
//! fields, forward), and (e) the fast path on the request as perch-admin sends it, every
//! series carrying the node's own `node_id`/`node_name` already (checked, then forwarded as
//! sent).
//!
//! (c), (d) and (e) send the same request over and over, as an agent's pushes repeat their
//! series' labels: after the first, the server compares each series' labels with the bytes
//! that passed before instead of checking them again (samples are always checked). The
//! `_first_sight` figures of (c) and (e) forget the earlier requests each time: every label
//! checked, as for a sender's first push or series never seen.
//!
//! `perch-bench relabel [--series 1000] [--seconds 5] [--write-shape]
//! [--iterations N [--unstamped | --agent-stamped]]`
//!
//! The request imitates one agent push: `--series` series (default 1000) of node_exporter
//! shape (`node_cpu_seconds_total{cpu,mode}`, `node_filesystem_avail_bytes{device,fstype,
//! mountpoint}`, ...) with one sample each, the forged `node_name` a malicious agent might
//! send; with `--write-shape`, one of `perch-bench write`'s pushes instead (four labels, no
//! forgery).
//!
//! With `--iterations N`, nothing is timed: the fast path rewrites the request `N` times,
//! stamped unless `--unstamped` (with `--agent-stamped`, the request as the agent sends it;
//! with `--first-sight`, forgetting the earlier ones each time), and the samples are
//! counted. That fixed amount of work is
//! for instruction counts under callgrind (`valgrind --tool=callgrind`) and for profiles.

use std::time::{Duration, Instant};

use anyhow::bail;
use perch_remote_write::{Label, Limits, NodeStamp, Rewriter, Sample, TimeSeries, WriteRequest};

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

/// `n` rewrites of `body` on the fast path by `rewriter`, forgetting the earlier ones each
/// time when `first_sight`: the samples they carried and the series whose labels were
/// recalled, all together. Stamped (a node's push), through admission as the server does,
/// which works out the fingerprints of the series not recalled for the node's limit of new
/// series.
fn rewrites(
    rewriter: &mut Rewriter,
    n: usize,
    body: &[u8],
    (limits, now_ms, stamp): (&Limits, i64, Option<NodeStamp<'_>>),
    first_sight: bool,
) -> anyhow::Result<(usize, usize)> {
    let (mut samples, mut recalled) = (0, 0);
    for _ in 0..n {
        if first_sight {
            rewriter.forget();
        }
        let out = match stamp {
            Some(_) => {
                let admitted = rewriter.rewrite_admitted(body, limits, now_ms, stamp, |fresh| {
                    std::hint::black_box(fresh);
                    Ok::<(), std::convert::Infallible>(())
                })?;
                let Ok(out) = admitted;
                out
            }
            None => rewriter.rewrite(body, limits, now_ms, stamp)?,
        };
        samples += out.samples;
        recalled += out.recalled;
        std::hint::black_box(&out);
    }
    Ok((samples, recalled))
}

pub fn run(args: Vec<String>) -> anyhow::Result<()> {
    let mut series = 1000;
    let mut seconds = 5u64;
    let mut write_shape = false;
    let mut iterations = None;
    let mut unstamped = false;
    let mut agent_stamped = false;
    let mut first_sight = false;
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--series" => series = it.next().unwrap_or_default().parse()?,
            "--seconds" => seconds = it.next().unwrap_or_default().parse()?,
            "--write-shape" => write_shape = true,
            "--iterations" => iterations = Some(it.next().unwrap_or_default().parse()?),
            "--unstamped" => unstamped = true,
            "--agent-stamped" => agent_stamped = true,
            "--first-sight" => first_sight = true,
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
    // What perch-admin sends: the node's own identity on every series already.
    let agent_body = {
        let mut req = template.clone();
        req.stamp("n-42", "web-1");
        req.encode_body()
    };
    match (iterations, unstamped, agent_stamped) {
        (Some(_), true, true) => bail!("--unstamped or --agent-stamped, not both"),
        (Some(n), _, _) => {
            let stamp = stamp.filter(|_| !unstamped);
            let sent = if agent_stamped { &agent_body } else { &body };
            let mut rewriter = Rewriter::new();
            let (samples, recalled) = rewrites(
                &mut rewriter,
                n,
                sent,
                (&limits, now_ms, stamp),
                first_sight,
            )?;
            println!(
                "series_per_request={series} iterations={n} unstamped={unstamped} agent_stamped={agent_stamped} first_sight={first_sight} samples={samples} recalled_series={recalled}"
            );
            return Ok(());
        }
        (None, false, false) => {}
        (None, ..) => bail!(
            "--unstamped and --agent-stamped go with --iterations (the timed run measures all)"
        ),
    }
    if first_sight && iterations.is_none() {
        bail!("--first-sight goes with --iterations (the timed run measures both)");
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
    let fast_rate = |body: &[u8], stamp, first_sight| -> anyhow::Result<f64> {
        let mut rewriter = Rewriter::new();
        let mut samples = 0;
        let start = Instant::now();
        while start.elapsed() < budget {
            let params = (&limits, now_ms, stamp);
            samples += rewrites(&mut rewriter, 16, body, params, first_sight)?.0;
        }
        Ok(rate(samples, start.elapsed()))
    };
    let fast = fast_rate(&body, stamp, false)?;
    let fast_first = fast_rate(&body, stamp, true)?;
    // (d)
    let unstamped = fast_rate(&body, None, false)?;
    // (e), once it is known to come out as sent.
    if perch_remote_write::rewrite(&agent_body, &limits, now_ms, stamp)?.body != agent_body {
        bail!("the agent-stamped request was not forwarded as sent");
    }
    let agent = fast_rate(&agent_body, stamp, false)?;
    let agent_first = fast_rate(&agent_body, stamp, true)?;
    println!(
        "series_per_request={series} body_bytes={} out_bytes={out_bytes} stamp_samples_per_s={:.0} full_step_samples_per_s={:.0} fast_step_samples_per_s={fast:.0} fast_step_first_sight_samples_per_s={fast_first:.0} fast_unstamped_samples_per_s={unstamped:.0} fast_agent_stamped_samples_per_s={agent:.0} fast_agent_stamped_first_sight_samples_per_s={agent_first:.0}",
        body.len(),
        rate(stamped, stamp_time),
        rate(full, full_time),
    );
    Ok(())
}
