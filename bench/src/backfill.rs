//! `perch-bench backfill --engine HOST:PORT [--engine-authorization 'Basic ...'] --nodes 1:web-01,2:web-02,... [--hours 24]
//! [--interval 15]`: writes `--hours` of node history for each node straight into the
//! engine's `/api/v1/write` (plain HTTP on loopback), with the series the node dashboard
//! reads (the agent's names and labels, `node_id`/`node_name` stamped as Perch does):
//! 4 CPUs × 8 modes, load, memory, 3 file systems, 2 disks, 3 interfaces, uptime, uname —
//! 71 series per node, one sample every `--interval` seconds. Counters grow, gauges wander
//! (deterministically), so that rates and charts have shape.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{Context, bail};
use perch_remote_write::{Label, Sample, TimeSeries, WriteRequest};

use crate::login::exchange_raw;

const HEADERS: &str = "Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n";
const MODES: [&str; 8] = [
    "idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice",
];

/// One series: its labels (name first) and how its value at step `k` is made.
struct Shape {
    labels: Vec<(String, String)>,
    value: Box<dyn Fn(u64) -> f64>,
}

fn wave(k: u64, period: f64, phase: f64) -> f64 {
    ((k as f64 / period + phase) * std::f64::consts::TAU).sin()
}

/// A counter at step `k` whose rate per second is `rate × (1 + amp × wave(k, period, phase))`
/// (the integral of that rate, so it only grows).
fn counter(k: u64, dt: f64, rate: f64, amp: f64, period: f64, phase: f64) -> f64 {
    let tau = std::f64::consts::TAU;
    let k = k as f64;
    let swing = period / tau * ((phase * tau).cos() - ((k / period + phase) * tau).cos());
    dt * rate * (k + amp * swing)
}

fn shapes(node: u64, interval: u64, boot: f64, first: f64) -> Vec<Shape> {
    let n = node as f64;
    let dt = interval as f64;
    let mut out: Vec<Shape> = Vec::new();
    let mut add = |name: &str, extra: &[(&str, String)], value: Box<dyn Fn(u64) -> f64>| {
        let mut labels = vec![("__name__".to_owned(), name.to_owned())];
        labels.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        out.push(Shape { labels, value });
    };
    for cpu in 0..4 {
        for (m, mode) in MODES.iter().enumerate() {
            // Shares of each second: busy modes wave around a node-specific level.
            let share = match *mode {
                "idle" => 0.0,
                "user" => 0.20,
                "system" => 0.06,
                "iowait" => 0.02,
                _ => 0.004,
            } * (1.0 + n % 5.0 / 5.0);
            let phase = (cpu as f64 + m as f64 + n) / 7.0;
            add(
                "node_cpu_seconds_total",
                &[("cpu", cpu.to_string()), ("mode", (*mode).to_owned())],
                Box::new(move |k| {
                    if share == 0.0 {
                        // Idle is what the others leave.
                        k as f64 * dt * 0.7
                    } else {
                        counter(k, dt, share, 0.3, 240.0, phase)
                    }
                }),
            );
        }
    }
    for (name, base) in [
        ("node_load1", 1.0),
        ("node_load5", 0.9),
        ("node_load15", 0.8),
    ] {
        add(
            name,
            &[],
            Box::new(move |k| (base * (1.0 + n % 3.0) * (1.2 + wave(k, 480.0, n / 10.0))).max(0.0)),
        );
    }
    let total = 16.0 * 1024.0 * 1024.0 * 1024.0;
    add("node_memory_MemTotal_bytes", &[], Box::new(move |_| total));
    add(
        "node_memory_MemAvailable_bytes",
        &[],
        Box::new(move |k| total * (0.5 + 0.2 * wave(k, 960.0, n / 3.0))),
    );
    add(
        "node_memory_Buffers_bytes",
        &[],
        Box::new(move |_| total * 0.02),
    );
    add(
        "node_memory_Cached_bytes",
        &[],
        Box::new(move |k| total * (0.25 + 0.05 * wave(k, 1440.0, 0.0))),
    );
    add(
        "node_memory_SwapTotal_bytes",
        &[],
        Box::new(|_| 2.0 * 1024.0 * 1024.0 * 1024.0),
    );
    add(
        "node_memory_SwapFree_bytes",
        &[],
        Box::new(|k| 2.0 * 1024.0 * 1024.0 * 1024.0 * (0.9 + 0.05 * wave(k, 2000.0, 0.2))),
    );
    for (i, mount) in ["/", "/var", "/home"].iter().enumerate() {
        let size = (100 + 200 * i as u64) as f64 * 1e9;
        let fs = [
            ("device", format!("/dev/sda{}", i + 1)),
            ("fstype", "ext4".to_owned()),
            ("mountpoint", (*mount).to_owned()),
        ];
        add("node_filesystem_size_bytes", &fs, Box::new(move |_| size));
        add(
            "node_filesystem_avail_bytes",
            &fs,
            Box::new(move |k| size * (0.6 - 0.1 * i as f64 - k as f64 * 1e-6)),
        );
    }
    for (i, device) in ["sda", "sdb"].iter().enumerate() {
        let d = [("device", (*device).to_owned())];
        let rate = 2e6 * (1.0 + i as f64);
        add(
            "node_disk_read_bytes_total",
            &d,
            Box::new(move |k| counter(k, dt, rate, 0.5, 300.0, 0.1)),
        );
        add(
            "node_disk_written_bytes_total",
            &d,
            Box::new(move |k| counter(k, dt, rate * 0.6, 0.5, 200.0, 0.4)),
        );
        add(
            "node_disk_io_time_seconds_total",
            &d,
            Box::new(move |k| k as f64 * dt * 0.05 * (1.0 + i as f64)),
        );
    }
    for (i, device) in ["eth0", "eth1", "lo"].iter().enumerate() {
        let d = [("device", (*device).to_owned())];
        let rate = 1e6 / (1.0 + i as f64);
        add(
            "node_network_receive_bytes_total",
            &d,
            Box::new(move |k| counter(k, dt, rate, 0.4, 360.0, 0.3)),
        );
        add(
            "node_network_transmit_bytes_total",
            &d,
            Box::new(move |k| counter(k, dt, rate * 0.4, 0.4, 360.0, 0.6)),
        );
        add(
            "node_network_receive_errs_total",
            &d,
            Box::new(move |k| (k / 500) as f64),
        );
        add("node_network_transmit_errs_total", &d, Box::new(|_| 0.0));
    }
    add("node_boot_time_seconds", &[], Box::new(move |_| boot));
    add(
        "node_time_seconds",
        &[],
        Box::new(move |k| first + k as f64 * dt),
    );
    add(
        "node_uname_info",
        &[
            ("machine", "x86_64".to_owned()),
            ("release", "6.1.0-bench".to_owned()),
            ("sysname", "Linux".to_owned()),
        ],
        Box::new(|_| 1.0),
    );
    out
}

pub async fn run(args: Vec<String>) -> anyhow::Result<()> {
    let mut engine: Option<SocketAddr> = None;
    let mut nodes: Vec<(u64, String)> = Vec::new();
    let mut hours: u64 = 24;
    let mut interval: u64 = 15;
    let mut authorization: Option<String> = None;
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--engine" => engine = Some(value.parse()?),
            "--nodes" => {
                for pair in value.split(',').filter(|p| !p.is_empty()) {
                    let (id, name) = pair.split_once(':').context("--nodes is id:name,...")?;
                    nodes.push((id.parse()?, name.to_owned()));
                }
            }
            "--hours" => hours = value.parse()?,
            "--interval" => interval = value.parse()?,
            // The bundled engine's per-start credential (`Basic ...`), as bench/lib.sh reads it.
            "--engine-authorization" => authorization = Some(value),
            _ => bail!("unknown flag {flag}"),
        }
    }
    let engine = engine.context("--engine HOST:PORT is required")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let steps = hours * 3600 / interval;
    let first = now - steps * interval;
    let started = Instant::now();
    let headers = match &authorization {
        Some(value) => format!("{HEADERS}Authorization: {value}\r\n"),
        None => HEADERS.to_owned(),
    };
    let mut tcp = tokio::net::TcpStream::connect(engine).await?;
    let mut samples: u64 = 0;
    for (id, name) in &nodes {
        let boot = (first - 86_400 * (id % 9 + 1)) as f64;
        let shapes = shapes(*id, interval, boot, first as f64);
        // An hour of one node per request.
        let per_request = (3600 / interval).max(1);
        let mut k0 = 0;
        while k0 < steps {
            let k1 = (k0 + per_request).min(steps);
            let timeseries = shapes
                .iter()
                .map(|s| {
                    let mut labels: Vec<Label> = s
                        .labels
                        .iter()
                        .map(|(k, v)| Label {
                            name: k.clone(),
                            value: v.clone(),
                        })
                        .collect();
                    for (k, v) in [
                        ("instance", name.clone()),
                        ("job", "node".to_owned()),
                        ("node_id", id.to_string()),
                        ("node_name", name.clone()),
                    ] {
                        labels.push(Label {
                            name: k.to_owned(),
                            value: v,
                        });
                    }
                    labels.sort_by(|a, b| a.name.cmp(&b.name));
                    TimeSeries {
                        labels,
                        samples: (k0..k1)
                            .map(|k| Sample {
                                value: (s.value)(k),
                                timestamp: ((first + k * interval) * 1000) as i64,
                            })
                            .collect(),
                    }
                })
                .collect();
            let body = WriteRequest { timeseries }.encode_body();
            let status = exchange_raw(&mut tcp, "POST", "/api/v1/write", &headers, &body).await?;
            if status / 100 != 2 {
                bail!("the engine answered {status}");
            }
            samples += (k1 - k0) * shapes.len() as u64;
            k0 = k1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "backfill nodes={} hours={hours} interval_s={interval} samples={samples} seconds={secs:.1} samples_per_s={:.0}",
        nodes.len(),
        samples as f64 / secs
    );
    Ok(())
}
