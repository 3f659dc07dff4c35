//! `perch-bench attack KIND --addr A --ca PEM --pid PID [--probe /v1/readyz] [--seconds 20]
//! [--count N] [--token T] [--path P]`: one attack from 127.0.0.1 while a client on
//! 127.0.0.2 reads `--probe` every 10 ms; prints the probe's p50/p99/max and failures, the
//! peak resident memory of PID (sampled every 50 ms) during the attack, and its resident
//! memory 5 s after the attack let go. KIND:
//!
//! - `h2-idle`: `--count` (8000) TLS connections with the h2 preface and nothing more
//!   (their drivers answer the server's pings), opened as fast as they go and held;
//! - `hold-body`: `--count` (100) HTTP/1.1 POSTs to `--path` (/v1/metrics/write) declaring
//!   8 MiB and sending all of it but the last byte, then held (`--token`: with that bearer);
//! - `hold-body-h2`: one h2 connection with `--count` (60) such streams;
//! - `huge-password`: `--count` (20) clients logging in with a 1 MB password of U+FDFA, in
//!   a loop.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncWriteExt;

use crate::login::{Common, connect, connect_to, exchange_raw, parse};

const MIB: usize = 1024 * 1024;
const PROBE_FROM: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// What the attackers hold; dropped to let go.
type Held = Vec<Box<dyn std::any::Any + Send>>;

pub async fn run(args: Vec<String>) -> anyhow::Result<()> {
    let kind = args.first().cloned().context("attack needs a KIND")?;
    let mut c = parse(args.into_iter().skip(1).collect())?;
    let pid: u32 = c.rest.remove("pid").context("--pid is required")?.parse()?;
    let probe_path = c
        .rest
        .remove("probe")
        .unwrap_or_else(|| "/v1/readyz".into());
    let seconds: u64 = c.rest.remove("seconds").map_or(Ok(20), |v| v.parse())?;
    let count: Option<usize> = c.rest.remove("count").map(|v| v.parse()).transpose()?;
    let token = c.rest.remove("token");
    let path = c
        .rest
        .remove("path")
        .unwrap_or_else(|| "/v1/metrics/write".into());
    let c = Arc::new(c);
    let rss_before = rss_kb(pid);
    let deadline = Instant::now() + Duration::from_secs(seconds);

    // Memory, sampled all along.
    let sampler = tokio::spawn(async move {
        let mut peak = 0;
        while Instant::now() < deadline {
            peak = peak.max(rss_kb(pid));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        peak
    });
    let probe = tokio::spawn(probe(c.clone(), probe_path, deadline));
    let attack = {
        let c = c.clone();
        tokio::spawn(async move {
            match kind.as_str() {
                "h2-idle" => h2_idle(&c, count.unwrap_or(8000), deadline).await,
                "hold-body" => {
                    hold_body(&c, count.unwrap_or(100), token.as_deref(), &path, deadline).await
                }
                "hold-body-h2" => {
                    hold_body_h2(&c, count.unwrap_or(60), token.as_deref(), &path).await
                }
                "huge-password" => huge_password(&c, count.unwrap_or(20), deadline).await,
                other => bail!("unknown attack {other}"),
            }
        })
    };
    let (held, tally) = attack.await??;
    let (times, failures) = probe.await??;
    let peak = sampler.await?;
    drop(held);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = rss_kb(pid);
    let tally: Vec<String> = tally.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    println!(
        "probe_p50_ms={:.2} probe_p99_ms={:.2} probe_max_ms={:.2} probe_n={} probe_failures={failures} rss_before_kb={rss_before} peak_rss_kb={peak} rss_5s_after_kb={after} attack={}",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times.last().copied().unwrap_or(f64::NAN),
        times.len(),
        tally.join(",")
    );
    Ok(())
}

/// The probe: `path` on its own keep-alive connection from 127.0.0.2 every 10 ms; a
/// request that fails or takes over 5 s counts as a failure (and 5 s).
async fn probe(
    c: Arc<Common>,
    path: String,
    deadline: Instant,
) -> anyhow::Result<(Vec<f64>, usize)> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut times = Vec::new();
    let mut failures = 0;
    let mut conn = None;
    while Instant::now() < deadline {
        let start = Instant::now();
        let attempt = async {
            if conn.is_none() {
                conn = Some(connect_to(&c, c.addr, Some(PROBE_FROM)).await?);
            }
            let tls = conn.as_mut().context("connected")?;
            exchange_raw(tls, "GET", &path, "", b"").await
        };
        match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(200)) => times.push(start.elapsed().as_secs_f64() * 1000.0),
            _ => {
                failures += 1;
                times.push(start.elapsed().as_secs_f64() * 1000.0);
                conn = None;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    times.sort_by(f64::total_cmp);
    Ok((times, failures))
}

fn count(tally: &mut BTreeMap<String, u64>, what: &str) {
    *tally.entry(what.to_owned()).or_default() += 1;
}

async fn h2_idle(
    c: &Common,
    n: usize,
    deadline: Instant,
) -> anyhow::Result<(Held, BTreeMap<String, u64>)> {
    let mut config = (*c.config).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let c = Common {
        addr: c.addr,
        config: Arc::new(config),
        rest: BTreeMap::new(),
    };
    let mut held: Held = Vec::new();
    let mut tally = BTreeMap::new();
    for _ in 0..n {
        if Instant::now() >= deadline {
            break;
        }
        let opened = async {
            let tls = connect(&c, None).await?;
            let (sender, conn) = hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(
                TokioExecutor::new(),
                TokioIo::new(tls),
            )
            .await?;
            anyhow::Ok((sender, tokio::spawn(conn)))
        };
        match tokio::time::timeout(Duration::from_secs(2), opened).await {
            Ok(Ok((sender, driver))) => {
                count(&mut tally, "opened");
                held.push(Box::new(sender));
                held.push(Box::new(AbortOnDrop(driver)));
            }
            _ => count(&mut tally, "refused"),
        }
    }
    let open = held
        .iter()
        .filter_map(|h| h.downcast_ref::<AbortOnDrop>())
        .filter(|d| !d.0.is_finished())
        .count();
    tally.insert("open_after_opening".into(), open as u64);
    tokio::time::sleep(deadline.saturating_duration_since(Instant::now())).await;
    let open = held
        .iter()
        .filter_map(|h| h.downcast_ref::<AbortOnDrop>())
        .filter(|d| !d.0.is_finished())
        .count();
    tally.insert("open_at_end".into(), open as u64);
    Ok((held, tally))
}

struct AbortOnDrop(tokio::task::JoinHandle<Result<(), hyper::Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn auth_header(token: Option<&str>) -> String {
    token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"))
}

async fn hold_body(
    c: &Common,
    n: usize,
    token: Option<&str>,
    path: &str,
    deadline: Instant,
) -> anyhow::Result<(Held, BTreeMap<String, u64>)> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\n{}Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nContent-Length: {}\r\n\r\n",
        auth_header(token),
        8 * MIB
    );
    let chunk = vec![b'x'; 64 * 1024];
    let mut uploads = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (c_addr, head, chunk) = (c.addr, head.clone(), chunk.clone());
        let config = c.config.clone();
        uploads.spawn(async move {
            let c = Common {
                addr: c_addr,
                config,
                rest: BTreeMap::new(),
            };
            let Ok(mut tls) = connect(&c, None).await else {
                return ("refused", None);
            };
            if tls.write_all(head.as_bytes()).await.is_err() {
                return ("closed", None);
            }
            let mut left = 8 * MIB - 1;
            while left > 0 {
                let n = left.min(chunk.len());
                if tls.write_all(&chunk[..n]).await.is_err() {
                    return ("answered_early", None);
                }
                left -= n;
            }
            let _ = tls.flush().await;
            ("held", Some(tls))
        });
    }
    let mut held: Held = Vec::new();
    let mut tally = BTreeMap::new();
    while let Some(done) = uploads.join_next().await {
        let (what, tls) = done?;
        count(&mut tally, what);
        if let Some(tls) = tls {
            held.push(Box::new(tls));
        }
    }
    tokio::time::sleep(deadline.saturating_duration_since(Instant::now())).await;
    Ok((held, tally))
}

async fn hold_body_h2(
    c: &Common,
    n: usize,
    token: Option<&str>,
    path: &str,
) -> anyhow::Result<(Held, BTreeMap<String, u64>)> {
    let mut config = (*c.config).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let c2 = Common {
        addr: c.addr,
        config: Arc::new(config),
        rest: BTreeMap::new(),
    };
    let tls = connect(&c2, None).await?;
    let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(16 * MIB as u32)
        .initial_connection_window_size(64 * MIB as u32)
        .handshake::<_, ChannelBody>(TokioIo::new(tls))
        .await?;
    let driver = AbortOnDrop(tokio::spawn(conn));
    let mut held: Held = vec![Box::new(driver)];
    let mut tally = BTreeMap::new();
    for _ in 0..n {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let mut request = http::Request::post(format!("https://localhost{path}"))
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", "snappy")
            .header("content-length", 8 * MIB);
        if let Some(t) = token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        let request = request.body(ChannelBody(rx))?;
        let mut sender = sender.clone();
        let answer = tokio::spawn(async move {
            let resp = sender.send_request(request).await;
            if let Ok(resp) = resp {
                let _ = resp.into_body().collect().await;
            }
        });
        let feeder = tokio::spawn(async move {
            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
            let mut left = 8 * MIB - 1;
            while left > 0 {
                let n = left.min(chunk.len());
                if tx.send(chunk.slice(..n)).await.is_err() {
                    return false;
                }
                left -= n;
            }
            // The last byte is never sent; the stream stays open while `tx` lives.
            let _keep = tx;
            std::future::pending::<bool>().await
        });
        held.push(Box::new(AbortOnDropUnit(answer)));
        held.push(Box::new(AbortOnDropBool(feeder)));
        count(&mut tally, "streams");
    }
    held.push(Box::new(sender));
    Ok((held, tally))
}

struct AbortOnDropUnit(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDropUnit {
    fn drop(&mut self) {
        self.0.abort();
    }
}
struct AbortOnDropBool(tokio::task::JoinHandle<bool>);
impl Drop for AbortOnDropBool {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A request body fed through a channel: it ends only when the sender is dropped.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

async fn huge_password(
    c: &Common,
    n: usize,
    deadline: Instant,
) -> anyhow::Result<(Held, BTreeMap<String, u64>)> {
    let password: String = "\u{FDFA}".repeat(MIB / 3);
    let body = format!(r#"{{"name":"admin","password":"{password}"}}"#);
    let body = Arc::new(body.into_bytes());
    let tally: Arc<std::sync::Mutex<BTreeMap<String, u64>>> = Arc::default();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (addr, config, body, tally) = (c.addr, c.config.clone(), body.clone(), tally.clone());
        clients.spawn(async move {
            let c = Common {
                addr,
                config,
                rest: BTreeMap::new(),
            };
            while Instant::now() < deadline {
                let Ok(mut tls) = connect(&c, None).await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let status = exchange_raw(
                    &mut tls,
                    "POST",
                    "/v1/login",
                    "Content-Type: application/json\r\n",
                    &body,
                )
                .await
                .unwrap_or(0);
                count(
                    &mut tally.lock().unwrap_or_else(|e| e.into_inner()),
                    &status.to_string(),
                );
            }
        });
    }
    while clients.join_next().await.is_some() {}
    let tally = tally.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok((Vec::new(), tally))
}
