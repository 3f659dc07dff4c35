//! Scraping one exporter: an HTTP/1.1 GET with Prometheus's Accept header, bounded in
//! time and size, parsed by perch-exposition with `job` and `instance` added.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use perch_exposition::{Format, ScrapeOptions, TargetLabels};
use perch_remote_write::TimeSeries;

/// Largest exporter answer read.
const MAX_BODY: usize = 64 * 1024 * 1024;
/// Most series one exporter may give in one scrape.
const MAX_SERIES: usize = 200_000;

#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("bad URL: {0}")]
    Url(String),
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("answered HTTP {0}")]
    Status(http::StatusCode),
    #[error("{0}")]
    Parse(#[from] perch_exposition::ParseError),
    #[error("{0}")]
    Labels(#[from] perch_exposition::TargetLabelError),
}

/// What a scrape gave: the series (each with one sample at the scrape's start unless the
/// exporter gave a time) and how long it took.
#[derive(Debug)]
pub struct Scraped {
    pub series: Vec<TimeSeries>,
    pub duration: Duration,
}

/// `host:port` of an http URL, the `instance` label.
pub fn instance(url: &url::Url) -> String {
    let host = match url.host() {
        Some(url::Host::Ipv6(a)) => format!("[{a}]"),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    format!("{host}:{}", url.port_or_known_default().unwrap_or(80))
}

async fn fetch(url: &url::Url) -> Result<(Bytes, Format), ScrapeError> {
    let host = url
        .host_str()
        .ok_or_else(|| ScrapeError::Url(url.to_string()))?
        .trim_matches(['[', ']']);
    let port = url.port_or_known_default().unwrap_or(80);
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(ScrapeError::Connect)?;
    let _ = tcp.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| ScrapeError::Http(e.to_string()))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let req = Request::get(path)
        .header(http::header::HOST, instance(url))
        .header(http::header::ACCEPT, perch_exposition::ACCEPT)
        .header(
            http::header::USER_AGENT,
            concat!("perch-admin/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| ScrapeError::Url(e.to_string()))?;
    let result = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| ScrapeError::Http(e.to_string()))?;
        if resp.status() != http::StatusCode::OK {
            return Err(ScrapeError::Status(resp.status()));
        }
        let format = Format::from_content_type(
            resp.headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
        );
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| ScrapeError::Http(e.to_string()))?
            .to_bytes();
        Ok((body, format))
    }
    .await;
    driver.abort();
    result
}

/// Scrapes `url` within `timeout`, labelling its series with `target` (`job`, `instance`
/// and, for a service, its labels).
pub async fn scrape(
    target: &[(String, String)],
    url: &url::Url,
    timeout: Duration,
    now_ms: i64,
) -> Result<Scraped, ScrapeError> {
    let start = Instant::now();
    let (body, format) = tokio::time::timeout(timeout, fetch(url))
        .await
        .map_err(|_| ScrapeError::Timeout(timeout))??;
    let options = ScrapeOptions {
        target_labels: TargetLabels::new(target.iter().cloned())?,
        honor_labels: false,
        max_series: MAX_SERIES,
    };
    let parsed = perch_exposition::parse(&body, format, now_ms, &options)?;
    Ok(Scraped {
        series: parsed.series,
        duration: start.elapsed(),
    })
}
