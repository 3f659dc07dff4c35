//! Login benchmarks.
//!
//! - `login --addr A --ca PEM --user U --password-file F [--n 50]`: N sequential logins on
//!   one keep-alive connection; prints the p50 and p99 latency of `POST /v1/login`.
//! - `flood --addr A --ca PEM [--clients 200] [--seconds 20] [--rotate]`: that many clients
//!   send wrong passwords as fast as they can while one client reads `/v1/readyz` every
//!   10 ms; prints the readyz p50/p99/max and the flood's answers by status. `--rotate`
//!   gives every flood connection a new source address in 127.1.0.0/16, so that no address
//!   reaches the throttle and every attempt costs a full argon2 check (the distributed
//!   attacker); without it all come from 127.0.0.1 and are throttled.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio_rustls::client::TlsStream;

pub struct Common {
    pub addr: SocketAddr,
    pub config: Arc<rustls::ClientConfig>,
    pub rest: BTreeMap<String, String>,
}

pub fn parse(args: Vec<String>) -> anyhow::Result<Common> {
    let mut map = BTreeMap::new();
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let Some(name) = flag.strip_prefix("--") else {
            bail!("unexpected argument {flag}");
        };
        let value = if name == "rotate" {
            "1".to_owned()
        } else {
            it.next().with_context(|| format!("{flag} needs a value"))?
        };
        map.insert(name.to_owned(), value);
    }
    let addr = map.remove("addr").context("--addr is required")?.parse()?;
    let ca = PathBuf::from(map.remove("ca").context("--ca is required")?);
    let mode = perch_certs::trust::TrustMode::CaFile(ca);
    let mut config = perch_certs::trust::client_config(&mode)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Common {
        addr,
        config: Arc::new(config),
        rest: map,
    })
}

pub async fn connect(
    c: &Common,
    source: Option<IpAddr>,
) -> anyhow::Result<TlsStream<tokio::net::TcpStream>> {
    connect_to(c, c.addr, source).await
}

/// [`connect`] to another address than `--addr`, with the same trust.
pub async fn connect_to(
    c: &Common,
    addr: SocketAddr,
    source: Option<IpAddr>,
) -> anyhow::Result<TlsStream<tokio::net::TcpStream>> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let tcp = socket.connect(addr).await?;
    tcp.set_nodelay(true)?;
    Ok(tokio_rustls::TlsConnector::from(c.config.clone())
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?)
}

/// One HTTP/1.1 exchange on an open connection; returns the status.
async fn exchange(
    tls: &mut TlsStream<tokio::net::TcpStream>,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<u16> {
    exchange_raw(
        tls,
        method,
        path,
        "Content-Type: application/json\r\n",
        body.as_bytes(),
    )
    .await
}

/// One HTTP/1.1 exchange with extra header lines (each ending in CRLF) and a raw body.
pub async fn exchange_raw<S>(
    stream: &mut S,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> anyhow::Result<u16>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed");
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status: u16 = head.get(9..12).unwrap_or("0").parse().unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed in the body");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub async fn login_latency(args: Vec<String>) -> anyhow::Result<()> {
    let c = parse(args)?;
    let user = c.rest.get("user").context("--user is required")?.clone();
    let file = c
        .rest
        .get("password-file")
        .context("--password-file is required")?;
    let password = std::fs::read_to_string(file)?.trim_end().to_owned();
    let n: usize = c.rest.get("n").map_or(Ok(50), |v| v.parse())?;
    let body = format!(r#"{{"name":{user:?},"password":{password:?}}}"#);
    let mut tls = connect(&c, None).await?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let status = exchange(&mut tls, "POST", "/v1/login", &body).await?;
        if status != 200 {
            bail!("login answered {status}");
        }
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "login_p50_ms={:.1} login_p99_ms={:.1} n={n}",
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );
    Ok(())
}

pub async fn flood(args: Vec<String>) -> anyhow::Result<()> {
    let c = Arc::new(parse(args)?);
    let clients: usize = c.rest.get("clients").map_or(Ok(200), |v| v.parse())?;
    let seconds: u64 = c.rest.get("seconds").map_or(Ok(20), |v| v.parse())?;
    let rotate = c.rest.contains_key("rotate");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let next_source = Arc::new(AtomicU32::new(0));
    let statuses: Arc<std::sync::Mutex<BTreeMap<u16, u64>>> = Arc::default();

    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (c, next_source, statuses) = (c.clone(), next_source.clone(), statuses.clone());
        flood.spawn(async move {
            let body = r#"{"name":"admin","password":"not-the-password-at-all"}"#;
            while Instant::now() < deadline {
                let source = rotate.then(|| {
                    let n = next_source.fetch_add(1, Ordering::Relaxed) % 65_000;
                    IpAddr::V4(Ipv4Addr::new(127, 1, (n >> 8) as u8, (n & 255) as u8 + 1))
                });
                let Ok(mut tls) = connect(&c, source).await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                // Rotating: one attempt per connection (a new address each time).
                loop {
                    let status = exchange(&mut tls, "POST", "/v1/login", body)
                        .await
                        .unwrap_or(0);
                    *statuses
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(status)
                        .or_default() += 1;
                    if rotate || status == 0 || Instant::now() >= deadline {
                        break;
                    }
                }
            }
        });
    }

    // The probe: readyz on its own keep-alive connection, every 10 ms.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut probe = connect(&c, None).await?;
    let mut times = Vec::new();
    let mut failures = 0;
    while Instant::now() < deadline {
        let start = Instant::now();
        match exchange(&mut probe, "GET", "/v1/readyz", "").await {
            Ok(200) => times.push(start.elapsed().as_secs_f64() * 1000.0),
            _ => {
                failures += 1;
                probe = connect(&c, None).await?;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    while flood.join_next().await.is_some() {}
    times.sort_by(f64::total_cmp);
    let statuses = statuses.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let by_status: Vec<String> = statuses.iter().map(|(s, n)| format!("{s}:{n}")).collect();
    println!(
        "readyz_p50_ms={:.2} readyz_p99_ms={:.2} readyz_max_ms={:.2} readyz_n={} readyz_failures={failures} flood_clients={clients} rotate={rotate} flood_answers={}",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times.last().copied().unwrap_or(f64::NAN),
        times.len(),
        by_status.join(",")
    );
    Ok(())
}
