//! `perch-bench write --addr A --ca PEM --token-file F --direct HOST:PORT --node-id ID
//! --node-name NAME [--series 1000] [--clients 4] [--seconds 10] [--rounds 1]
//! [--perch-pid P --engine-pid P] [--peer HOST:PORT --peer-pids P,P,...]`: samples per
//! second through Perch's write path (TLS, bearer token, decode, validate, stamp, re-encode,
//! forward) and, in the same rounds, straight to the engine's own `/api/v1/write` over plain
//! HTTP on loopback, and with `--peer` through a TLS pass-through proxy (nginx) that
//! forwards `POST /v1/metrics/write` to the same engine unread. Each client sends
//! agent-like pushes (`--series` series, one sample each, fresh timestamps) on a
//! keep-alive connection.
//!
//! Perch is measured twice a round. `perch` is sent what perch-admin sends: every series
//! carries the node's own `node_id`/`node_name` already, so Perch checks them and forwards
//! the body as sent. `perch_bare` is sent the same series without the two labels (as a
//! remote-write client that does not know its node's identity would send them), so Perch
//! stamps and re-encodes every series. The engine and the peer are sent the stamped bodies,
//! so that the engine stores the same series every way and only the front door's cost is
//! compared.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use perch_remote_write::{Label, Sample, TimeSeries, WriteRequest};

use crate::login::{connect_to, exchange_raw, parse};

/// The `k`th of the agent-like pushes this benchmark sends: `series` series
/// (`bench_metric_{i % 50}` with `instance`, `job` and `series` labels, names ascending), one
/// sample each, the value `k` at `now_ms - 60_000 + k` (milliseconds).
pub(crate) fn push(series: usize, k: usize, now_ms: i64) -> WriteRequest {
    WriteRequest {
        timeseries: (0..series)
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
                    value: k as f64,
                    timestamp: now_ms - 60_000 + k as i64,
                }],
            })
            .collect(),
    }
}

/// `count` pushes of `series` series, stamped with `identity` (node id, node name) when
/// given.
fn bodies(series: usize, count: usize, identity: Option<(&str, &str)>) -> Vec<Vec<u8>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    (0..count)
        .map(|k| {
            let mut push = push(series, k, now);
            if let Some((id, name)) = identity {
                push.stamp(id, name);
            }
            push.encode_body()
        })
        .collect()
}

const HEADERS: &str = "Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n";

/// CPU milliseconds (user + system) process `pid` has used, from `/proc/PID/stat`; 0 when
/// it cannot be read (no pid given).
fn cpu_ms(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces), from the last ')': utime and
    // stime are the 14th and 15th fields of the line, the 12th and 13th after it.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: f64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    // Linux's USER_HZ is 100 on every architecture Perch builds for.
    ticks * 10.0
}

pub async fn run(args: Vec<String>) -> anyhow::Result<()> {
    let c = Arc::new(parse(args)?);
    let token = std::fs::read_to_string(
        c.rest
            .get("token-file")
            .context("--token-file is required")?,
    )?
    .trim()
    .to_owned();
    let direct: std::net::SocketAddr = c
        .rest
        .get("direct")
        .context("--direct HOST:PORT is required")?
        .parse()?;
    // The bundled engine's per-start credential (`Basic ...`), as bench/lib.sh reads it.
    let direct_headers = Arc::new(match c.rest.get("engine-authorization") {
        Some(value) => format!("{HEADERS}Authorization: {value}\r\n"),
        None => HEADERS.to_owned(),
    });
    let series: usize = c.rest.get("series").map_or(Ok(1000), |v| v.parse())?;
    let clients: usize = c.rest.get("clients").map_or(Ok(4), |v| v.parse())?;
    let seconds: u64 = c.rest.get("seconds").map_or(Ok(10), |v| v.parse())?;
    let rounds: usize = c.rest.get("rounds").map_or(Ok(1), |v| v.parse())?;
    let node_id = c.rest.get("node-id").context("--node-id is required")?;
    let node_name = c.rest.get("node-name").context("--node-name is required")?;
    let stamped = Arc::new(bodies(series, 64, Some((node_id, node_name))));
    let bodies = Arc::new(bodies(series, 64, None));

    // With `--peer HOST:PORT`, a third path: a TLS-terminating proxy in front of the same
    // engine that passes bodies through unread (nginx, as PMM's front door), sent the
    // stamped bodies; `--peer-pids` are its processes, for its CPU.
    let peer: Option<std::net::SocketAddr> = c.rest.get("peer").map(|v| v.parse()).transpose()?;
    let peer_pids: Vec<String> = c
        .rest
        .get("peer-pids")
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default();

    // Whose CPU is counted per 1000 samples: perch-server, the engine, this load generator,
    // the peer.
    let pids: Vec<Vec<String>> = ["perch-pid", "engine-pid"]
        .iter()
        .map(|k| c.rest.get(*k).cloned().into_iter().collect())
        .chain([vec![std::process::id().to_string()], peer_pids])
        .collect();
    let cpu_now = || -> Vec<f64> {
        pids.iter()
            .map(|group| group.iter().map(|p| cpu_ms(p)).sum())
            .collect()
    };

    // Each round runs every path once, back to back (Perch, direct, the peer), so that the
    // engine's own drift (growing data, background merges) and the machine's fall on all
    // alike; per-round ratios to the direct path and medians are reported.
    let paths: Vec<Path> = [Path::Perch, Path::Direct, Path::PerchBare]
        .into_iter()
        .chain(peer.map(|_| Path::Peer))
        .collect();
    let mut results: Vec<Vec<Run>> = vec![Vec::new(); paths.len()];
    for _ in 0..rounds {
        for (slot, path) in paths.iter().enumerate() {
            let before = cpu_now();
            let sent = Arc::new(AtomicU64::new(0));
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let mut tasks = tokio::task::JoinSet::new();
            for client in 0..clients {
                let (c, sent, token, path) = (c.clone(), sent.clone(), token.clone(), *path);
                let (bodies, stamped, direct_headers) =
                    (bodies.clone(), stamped.clone(), direct_headers.clone());
                tasks.spawn(async move {
                    let mut k = client;
                    match path {
                        Path::Perch | Path::PerchBare | Path::Peer => {
                            let perch = format!("Authorization: Bearer {token}\r\n{HEADERS}");
                            let (addr, auth, bodies) = match (path, peer) {
                                (Path::Peer, Some(peer)) => (peer, HEADERS.to_owned(), stamped),
                                (Path::PerchBare, _) => (c.addr, perch, bodies),
                                _ => (c.addr, perch, stamped),
                            };
                            let mut tls = connect_to(&c, addr, None).await?;
                            while Instant::now() < deadline {
                                let body = &bodies[k % bodies.len()];
                                let status = exchange_raw(
                                    &mut tls,
                                    "POST",
                                    "/v1/metrics/write",
                                    &auth,
                                    body,
                                )
                                .await?;
                                if !(200..300).contains(&status) {
                                    bail!("{path:?} answered {status}");
                                }
                                sent.fetch_add(series as u64, Ordering::Relaxed);
                                k += clients;
                            }
                        }
                        Path::Direct => {
                            let mut tcp = tokio::net::TcpStream::connect(direct).await?;
                            tcp.set_nodelay(true)?;
                            while Instant::now() < deadline {
                                let body = &stamped[k % stamped.len()];
                                let status = exchange_raw(
                                    &mut tcp,
                                    "POST",
                                    "/api/v1/write",
                                    &direct_headers,
                                    body,
                                )
                                .await?;
                                if !(200..300).contains(&status) {
                                    bail!("the engine answered {status}");
                                }
                                sent.fetch_add(series as u64, Ordering::Relaxed);
                                k += clients;
                            }
                        }
                    }
                    anyhow::Ok(())
                });
            }
            let start = Instant::now();
            while let Some(r) = tasks.join_next().await {
                r??;
            }
            let samples = sent.load(Ordering::Relaxed) as f64;
            let after = cpu_now();
            results[slot].push(Run {
                rate: samples / start.elapsed().as_secs_f64(),
                cpu: after
                    .iter()
                    .zip(&before)
                    .map(|(a, b)| (a - b) * 1000.0 / samples.max(1.0))
                    .collect(),
            });
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let direct_runs = &results[1];
    let mut line = format!("series_per_request={series} clients={clients} rounds={rounds}");
    for (path, runs) in paths.iter().zip(&results) {
        let name = path.name();
        let rates: Vec<f64> = runs.iter().map(|r| r.rate).collect();
        let all = listed(&rates, 0);
        line += &format!(
            " {name}_samples_per_s={:.0} {name}_rounds=[{all}]",
            median(rates)
        );
        if *path != Path::Direct {
            // The cost in each round against that round's direct run, then the median.
            let costs: Vec<f64> = runs
                .iter()
                .zip(direct_runs)
                .map(|(r, d)| (1.0 - r.rate / d.rate) * 100.0)
                .collect();
            let all = listed(&costs, 1);
            line += &format!(" {name}_cost_pct={:.1} {name}_costs=[{all}]", median(costs));
        }
        // Medians of each process's CPU milliseconds per 1000 samples on this path.
        let cpu = ["perch", "engine", "client", "peer"]
            .iter()
            .enumerate()
            .take(if peer.is_some() { 4 } else { 3 })
            .map(|(i, who)| {
                let v = runs.iter().map(|r| r.cpu[i]).collect();
                format!("{who}={:.3}", median(v))
            })
            .collect::<Vec<_>>()
            .join(",");
        line += &format!(" cpu_ms_per_1000_{name}=[{cpu}]");
    }
    println!("{line}");
    Ok(())
}

/// `values` with `decimals` digits after the point, separated by commas.
fn listed(values: &[f64], decimals: usize) -> String {
    values
        .iter()
        .map(|v| format!("{v:.decimals$}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Where the pushes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Perch's write path, with the node token, sent bodies the agent stamped.
    Perch,
    /// Perch's write path, sent bodies without the node's identity: all of it re-encoded.
    PerchBare,
    /// Straight to the engine, plain HTTP.
    Direct,
    /// Through the `--peer` pass-through proxy.
    Peer,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Perch => "perch",
            Path::PerchBare => "perch_bare",
            Path::Direct => "direct",
            Path::Peer => "peer",
        }
    }
}

/// One path's run in one round: samples per second, and CPU milliseconds per 1000 samples
/// of each process group.
#[derive(Debug, Clone)]
struct Run {
    rate: f64,
    cpu: Vec<f64>,
}
