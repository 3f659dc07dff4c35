//! `perch-bench write --addr A --ca PEM --token-file F --direct HOST:PORT --node-id ID
//! --node-name NAME [--series 1000] [--clients 4] [--seconds 10]`: samples per second
//! through Perch's write path (TLS, bearer token, decode, validate, stamp, re-encode,
//! forward) and, in the same run, straight to the engine's own `/api/v1/write` over plain
//! HTTP on loopback. Each client sends agent-like pushes (`--series` series, one sample
//! each, fresh timestamps) on a keep-alive connection. The pushes to Perch carry no node
//! identity (Perch stamps `node_id`/`node_name` from the node token); the pushes straight to
//! the engine carry the same two labels already, as an agent that labels its own series
//! must (vmagent's `-remoteWrite.label`), so that the engine stores the same series on both
//! sides and only Perch's own cost is compared.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use perch_remote_write::{Label, Sample, TimeSeries, WriteRequest};

use crate::login::{connect, exchange_raw, parse};

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
    let series: usize = c.rest.get("series").map_or(Ok(1000), |v| v.parse())?;
    let clients: usize = c.rest.get("clients").map_or(Ok(4), |v| v.parse())?;
    let seconds: u64 = c.rest.get("seconds").map_or(Ok(10), |v| v.parse())?;
    let rounds: usize = c.rest.get("rounds").map_or(Ok(1), |v| v.parse())?;
    let node_id = c.rest.get("node-id").context("--node-id is required")?;
    let node_name = c.rest.get("node-name").context("--node-name is required")?;
    let stamped = Arc::new(bodies(series, 64, Some((node_id, node_name))));
    let bodies = Arc::new(bodies(series, 64, None));

    // Whose CPU is counted per 1000 samples: perch-server, the engine, this load generator.
    let pids: Vec<String> = ["perch-pid", "engine-pid"]
        .iter()
        .map(|k| c.rest.get(*k).cloned().unwrap_or_default())
        .chain([std::process::id().to_string()])
        .collect();

    // Rounds alternate Perch and direct, so that the engine's own drift (growing data,
    // background merges) falls on both sides alike; the medians are compared.
    let mut perch_rates = Vec::new();
    let mut direct_rates = Vec::new();
    let (mut perch_cpu, mut direct_cpu) = (Vec::new(), Vec::new());
    for through_perch in (0..rounds).flat_map(|_| [true, false]) {
        let cpu_before: Vec<f64> = pids.iter().map(|p| cpu_ms(p)).collect();
        let sent = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = tokio::task::JoinSet::new();
        for client in 0..clients {
            let (c, sent, token) = (c.clone(), sent.clone(), token.clone());
            let (bodies, stamped) = (bodies.clone(), stamped.clone());
            tasks.spawn(async move {
                let auth = format!("Authorization: Bearer {token}\r\n{HEADERS}");
                let mut k = client;
                if through_perch {
                    let mut tls = connect(&c, None).await?;
                    while Instant::now() < deadline {
                        let status = exchange_raw(
                            &mut tls,
                            "POST",
                            "/v1/metrics/write",
                            &auth,
                            &bodies[k % bodies.len()],
                        )
                        .await?;
                        if status != 204 {
                            bail!("perch answered {status}");
                        }
                        sent.fetch_add(series as u64, Ordering::Relaxed);
                        k += clients;
                    }
                } else {
                    let mut tcp = tokio::net::TcpStream::connect(direct).await?;
                    tcp.set_nodelay(true)?;
                    while Instant::now() < deadline {
                        let status = exchange_raw(
                            &mut tcp,
                            "POST",
                            "/api/v1/write",
                            HEADERS,
                            &stamped[k % stamped.len()],
                        )
                        .await?;
                        if !(200..300).contains(&status) {
                            bail!("the engine answered {status}");
                        }
                        sent.fetch_add(series as u64, Ordering::Relaxed);
                        k += clients;
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
        let rate = samples / start.elapsed().as_secs_f64();
        let per_thousand: Vec<f64> = pids
            .iter()
            .zip(&cpu_before)
            .map(|(p, before)| (cpu_ms(p) - before) * 1000.0 / samples.max(1.0))
            .collect();
        if through_perch {
            perch_rates.push(rate);
            perch_cpu.push(per_thousand);
        } else {
            direct_rates.push(rate);
            direct_cpu.push(per_thousand);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let rounds_text = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    // Medians of each process's CPU milliseconds per 1000 samples, one path's rounds.
    let cpu_text = |rounds: &[Vec<f64>]| {
        ["perch", "engine", "client"]
            .iter()
            .enumerate()
            .map(|(i, who)| {
                let mut v: Vec<f64> = rounds.iter().map(|r| r[i]).collect();
                format!("{who}={:.3}", median(&mut v))
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let (perch_all, direct_all) = (rounds_text(&perch_rates), rounds_text(&direct_rates));
    let (perch, direct) = (median(&mut perch_rates), median(&mut direct_rates));
    println!(
        "series_per_request={series} clients={clients} rounds={rounds} through_perch_samples_per_s={perch:.0} direct_samples_per_s={direct:.0} perch_cost_pct={:.1} perch_rounds=[{perch_all}] direct_rounds=[{direct_all}] cpu_ms_per_1000_through_perch=[{}] cpu_ms_per_1000_direct=[{}]",
        (1.0 - perch / direct) * 100.0,
        cpu_text(&perch_cpu),
        cpu_text(&direct_cpu),
    );
    Ok(())
}
