//! Scrapes a real `prometheus-node-exporter` (Debian's package) over plain HTTP/1.0 and
//! parses what it serves. Fails when the binary is not installed (.ci/run installs it).

use perch_exposition::{ACCEPT, Format, ScrapeOptions, TargetLabels, parse};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = "prometheus-node-exporter";

fn find_binary() -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(BINARY))
        .find(|path| path.is_file())
}

/// Kills and reaps the exporter however the test ends.
struct Exporter(Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `GET /metrics` over HTTP/1.0: (Content-Type, body).
fn scrape(port: u16, accept: &str) -> std::io::Result<(String, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAccept: {accept}\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.lines().next().unwrap_or("");
    if !status.contains(" 200 ") {
        return Err(std::io::Error::other(format!("status: {status}")));
    }
    let content_type = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.trim().to_owned())
        .unwrap_or_default();
    Ok((content_type, response[split + 4..].to_vec()))
}

#[test]
fn scrapes_and_parses_a_real_node_exporter() {
    let binary = find_binary()
        .unwrap_or_else(|| panic!("{BINARY} is needed on PATH: apt-get install {BINARY}"));
    let port = free_port();
    let child = Command::new(binary)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("node exporter starts");
    let _exporter = Exporter(child);

    let deadline = Instant::now() + Duration::from_secs(15);
    let (content_type, body) = loop {
        match scrape(port, ACCEPT) {
            Ok(response) => break response,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("no scrape from node exporter on port {port} within 15 s: {e}"),
        }
    };
    let format = Format::from_content_type(&content_type);
    let options = ScrapeOptions {
        target_labels: TargetLabels::new([
            ("job".to_owned(), "node".to_owned()),
            ("instance".to_owned(), format!("127.0.0.1:{port}")),
        ])
        .expect("valid target labels"),
        honor_labels: false,
        max_series: 100_000,
    };
    let exposition = match parse(&body, format, 1_700_000_000_000, &options) {
        Ok(e) => e,
        Err(e) => panic!("{content_type}: {e}"),
    };
    eprintln!(
        "{content_type}: {} bytes, {} series, {} families",
        body.len(),
        exposition.series.len(),
        exposition.metadata.len()
    );
    assert!(
        exposition.series.len() > 100,
        "only {} series",
        exposition.series.len()
    );
    assert!(
        exposition
            .metadata
            .iter()
            .any(|m| m.name == "node_cpu_seconds_total")
    );
    assert!(exposition.series.iter().all(|s| {
        s.labels
            .iter()
            .any(|l| l.name == "job" && l.value == "node")
    }));
}
