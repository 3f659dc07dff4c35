//! `perch-bench write --addr A --ca PEM --token-file F --direct HOST:PORT [--series 1000]
//! [--clients 4] [--seconds 10]`: samples per second through Perch's write path (TLS,
//! bearer token, decode, validate, re-encode, forward) and, in the same run, straight to
//! the engine's own `/api/v1/write` over plain HTTP on loopback. Each client sends agent-like
//! pushes (`--series` series, one sample each, fresh timestamps) on a keep-alive connection.

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

fn bodies(series: usize, count: usize) -> Vec<Vec<u8>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    (0..count)
        .map(|k| push(series, k, now).encode_body())
        .collect()
}

const HEADERS: &str = "Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n";

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
    let bodies = Arc::new(bodies(series, 64));

    // Rounds alternate Perch and direct, so that the engine's own drift (growing data,
    // background merges) falls on both sides alike; the medians are compared.
    let mut perch_rates = Vec::new();
    let mut direct_rates = Vec::new();
    for through_perch in (0..rounds).flat_map(|_| [true, false]) {
        let sent = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = tokio::task::JoinSet::new();
        for client in 0..clients {
            let (c, bodies, sent, token) = (c.clone(), bodies.clone(), sent.clone(), token.clone());
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
                            &bodies[k % bodies.len()],
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
        let rate = sent.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
        if through_perch {
            perch_rates.push(rate);
        } else {
            direct_rates.push(rate);
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
    let (perch_all, direct_all) = (rounds_text(&perch_rates), rounds_text(&direct_rates));
    let (perch, direct) = (median(&mut perch_rates), median(&mut direct_rates));
    println!(
        "series_per_request={series} clients={clients} rounds={rounds} through_perch_samples_per_s={perch:.0} direct_samples_per_s={direct:.0} perch_cost_pct={:.1} perch_rounds=[{perch_all}] direct_rounds=[{direct_all}]",
        (1.0 - perch / direct) * 100.0
    );
    Ok(())
}
