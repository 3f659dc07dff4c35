//! perch-bench: load generators and timers for what wrk cannot do.
//!
//! - `perch-bench startup --addr 127.0.0.1:9443 --ca ca.pem --runs 10 -- CMD ARGS...` starts
//!   CMD, connects over TLS (verifying against --ca, read once it exists) and sends
//!   `GET --path` every millisecond until a 200 comes back, records the elapsed time, kills
//!   CMD, and prints the median and each run in milliseconds. The same harness times nginx
//!   and perch-server.
//! - `perch-bench login ...` and `perch-bench flood ...`: see `login.rs`.
//! - `perch-bench relabel [--series 1000] [--seconds 5] [--iterations N [--unstamped]]
//!   [--write-shape]`: the write step's CPU cost, timed or as a fixed loop for callgrind;
//!   see `relabel.rs`.
//! - `perch-bench write ...`: Perch's write path against writing straight to the engine; see
//!   `write.rs`.
//! - `perch-bench attack KIND ...`: an attack (idle h2 connections, held bodies, huge
//!   passwords) with a probe and the server's memory beside it; see `attack.rs`.
#![forbid(unsafe_code)]

mod attack;
mod backfill;
mod login;
mod relabel;
mod write;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Args {
    addr: SocketAddr,
    ca: PathBuf,
    path: String,
    runs: usize,
    command: Vec<String>,
}

fn parse() -> anyhow::Result<Args> {
    let mut it = std::env::args().skip(1);
    if it.next().as_deref() != Some("startup") {
        bail!(
            "usage: perch-bench startup --addr HOST:PORT --ca PEM [--path /v1/readyz] [--runs N] -- CMD ARGS..."
        );
    }
    let (mut addr, mut ca, mut path, mut runs) = (None, None, "/v1/readyz".to_owned(), 10);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--addr" => addr = Some(it.next().context("--addr needs a value")?.parse()?),
            "--ca" => ca = Some(PathBuf::from(it.next().context("--ca needs a value")?)),
            "--path" => path = it.next().context("--path needs a value")?,
            "--runs" => runs = it.next().context("--runs needs a value")?.parse()?,
            "--" => break,
            other => bail!("unknown argument {other}"),
        }
    }
    let command: Vec<String> = it.collect();
    if command.is_empty() {
        bail!("no command after --");
    }
    Ok(Args {
        addr: addr.context("--addr is required")?,
        ca: ca.context("--ca is required")?,
        path,
        runs,
        command,
    })
}

async fn first_ok(args: &Args, config: Arc<rustls::ClientConfig>) -> anyhow::Result<()> {
    let tcp = tokio::net::TcpStream::connect(args.addr).await?;
    let name = ServerName::try_from("localhost")?;
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?;
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        args.path
    );
    tls.write_all(req.as_bytes()).await?;
    let mut head = [0u8; 12];
    tls.read_exact(&mut head).await?;
    if &head[9..12] == b"200" {
        Ok(())
    } else {
        bail!("status {}", String::from_utf8_lossy(&head[9..12]))
    }
}

/// The client configuration, once the CA file exists (a first boot writes it).
fn config(args: &Args) -> Option<Arc<rustls::ClientConfig>> {
    let mode = perch_certs::trust::TrustMode::CaFile(args.ca.clone());
    perch_certs::trust::client_config(&mode).ok().map(Arc::new)
}

async fn one_run(args: &Args) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut child = Command::new(&args.command[0])
        .args(&args.command[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("start {}", args.command[0]))?;
    let mut client = None;
    let result = loop {
        if client.is_none() {
            client = config(args);
        }
        if let Some(client) = &client
            && first_ok(args, client.clone()).await.is_ok()
        {
            break Ok(start.elapsed());
        }
        if start.elapsed() > Duration::from_secs(10) {
            break Err(anyhow::anyhow!("no 200 within 10 s"));
        }
        if let Some(status) = child.try_wait()? {
            break Err(anyhow::anyhow!("the server exited: {status}"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    // Let the port be released before the next run.
    tokio::time::sleep(Duration::from_millis(200)).await;
    result
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("perch-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("startup") => startup().await,
        Some("login") => login::login_latency(std::env::args().skip(2).collect()).await,
        Some("flood") => login::flood(std::env::args().skip(2).collect()).await,
        Some("relabel") => relabel::run(std::env::args().skip(2).collect()),
        Some("write") => write::run(std::env::args().skip(2).collect()).await,
        Some("backfill") => backfill::run(std::env::args().skip(2).collect()).await,
        Some("attack") => attack::run(std::env::args().skip(2).collect()).await,
        _ => bail!(
            "usage: perch-bench startup|login|flood|relabel|write|backfill|attack ... (startup --addr HOST:PORT --ca PEM [--path P] [--runs N] -- CMD ARGS...)"
        ),
    }
}

async fn startup() -> anyhow::Result<()> {
    let args = parse()?;
    let mut times = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        times.push(one_run(&args).await?.as_secs_f64() * 1000.0);
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let runs: Vec<String> = times.iter().map(|t| format!("{t:.1}")).collect();
    println!("median_ms={median:.1} runs_ms={}", runs.join(","));
    Ok(())
}
