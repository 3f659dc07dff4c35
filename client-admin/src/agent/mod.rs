//! The agent: every interval, collect this machine's metrics (the built-in node collector
//! and every added exporter), and push them with remote write through the server's port
//! 443. What the server does not accept is kept in a bounded on-disk buffer and sent, oldest
//! first, when it answers again, with exponential backoff and jitter between attempts, so a
//! server restart leaves no gap.

mod buffer;
mod health;
pub mod scrape;
pub mod state;
mod supervise;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::Method;
use perch_collector::{Collector, Options};
use perch_remote_write::{Label, Limits, Sample, TimeSeries, WriteRequest};

use crate::cli::AgentArgs;
use crate::client::{ClientError, Conn, Server};
use crate::commands::{Failure, server_of};
use crate::config::AgentConfig;
use buffer::DiskBuffer;
use perch_time::unix_now;
use state::{AgentState, TargetHealth};
use supervise::Supervised;

use crate::config::Service;
use crate::qan::Qan;
use perch_qan::{Report, ReportAnswer};
use std::collections::VecDeque;

/// Query Analytics reports kept while the server does not answer (about an hour and a half
/// of one service at a 10 s interval); the oldest go first when more come.
const MAX_PENDING_REPORTS: usize = 512;

const BACKOFF_FIRST: Duration = Duration::from_secs(1);

/// The longest wait between attempts: one interval, at least 5 s (Prometheus's remote-write
/// default) and at most 60 s, so that buffered batches leave within about an interval of
/// the server coming back.
fn backoff_max(interval_s: u64) -> Duration {
    Duration::from_secs(interval_s.clamp(5, 60))
}

/// The server refused a batch's content, not the agent or the moment.
fn refuses_the_data(e: &ClientError) -> bool {
    matches!(e, ClientError::Refused { status, .. }
        if matches!(status.as_u16(), 400 | 413 | 422))
}

/// Most series in one push; a round with more is sent as several batches, so that one
/// request stays well inside the server's limits (100,000 series, 8 MiB compressed).
const MAX_BATCH_SERIES: usize = 10_000;

/// `d` scaled by a random factor in [0.75, 1.25).
fn jitter(d: Duration) -> Duration {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    let r = (h.finish() % 1000) as f64 / 1000.0;
    d.mul_f64(0.75 + r / 2.0)
}

/// Sets `name=value` on a series unless it has that label already; keeps labels sorted.
fn add_label(series: &mut TimeSeries, name: &str, value: &str) {
    if let Err(at) = series
        .labels
        .binary_search_by(|l| l.name.as_str().cmp(name))
    {
        series.labels.insert(
            at,
            Label {
                name: name.to_owned(),
                value: value.to_owned(),
            },
        );
    }
}

/// Puts the node's own `node_id` and `node_name` on every series that stays within `limits`
/// with them. The server sets the same two labels on every series a node token writes; a
/// body that carries them already (and is otherwise as the server would encode it) is
/// forwarded to the engine as sent, which spares the server re-encoding it. A series that
/// would go over a limit with them is sent as it is, and the server stamps it.
fn stamp_identity(series: &mut [TimeSeries], (id, name): (&str, &str), limits: &Limits) {
    let fits = |v: &str| !v.is_empty() && v.len() <= limits.max_label_value_bytes;
    if !(fits(id) && fits(name)) {
        return;
    }
    let others = |s: &TimeSeries| {
        s.labels
            .iter()
            .filter(|l| !perch_remote_write::IDENTITY_LABELS.contains(&l.name.as_str()))
            .count()
    };
    for s in series
        .iter_mut()
        .filter(|s| others(s) + 2 <= limits.max_labels_per_series)
    {
        s.stamp(id, name);
    }
}

fn gauge(name: &str, labels: &[(&str, &str)], value: f64, t: i64) -> TimeSeries {
    let mut s = TimeSeries {
        labels: vec![Label {
            name: "__name__".into(),
            value: name.into(),
        }],
        samples: vec![Sample {
            value,
            timestamp: t,
        }],
    };
    for (k, v) in labels {
        add_label(&mut s, k, v);
    }
    s
}

/// One exporter as the agent runs it.
#[derive(Debug)]
struct Target {
    name: String,
    url: url::Url,
    every: Duration,
    next: Instant,
}

/// Where the pushes stand.
#[derive(Debug)]
struct Pusher {
    server: Server,
    token: String,
    conn: Option<Conn>,
    buffer: DiskBuffer,
    backoff: Duration,
    retry_at: Option<Instant>,
    failures: u64,
    last_ok: Option<i64>,
    last_error: Option<String>,
    /// The node token was refused: said once, not every round.
    token_refused: bool,
    /// See [`backoff_max`].
    backoff_max: Duration,
}

impl Pusher {
    /// The open connection, or a new one.
    async fn conn(&mut self) -> Result<Conn, ClientError> {
        match self.conn.take().filter(Conn::is_open) {
            Some(c) => Ok(c),
            None => self.server.connect().await,
        }
    }

    async fn send(&mut self, body: Bytes) -> Result<(), ClientError> {
        let mut conn = self.conn().await?;
        let auth = format!("Bearer {}", self.token);
        let answer = conn
            .send(
                Method::POST,
                "/v1/metrics/write",
                &[
                    ("authorization", auth.as_str()),
                    ("content-type", "application/x-protobuf"),
                    ("content-encoding", "snappy"),
                    ("x-prometheus-remote-write-version", "0.1.0"),
                ],
                body,
            )
            .await?;
        self.conn = Some(conn);
        answer.ok().map(|_| ())
    }

    /// Sends one Query Analytics report; the server's answer.
    async fn send_report(&mut self, report: &Report) -> Result<ReportAnswer, ClientError> {
        let mut conn = self.conn().await?;
        let body = serde_json::to_value(report).unwrap_or_default();
        let answer = conn
            .json(
                Method::POST,
                "/v1/qan/report",
                Some(&self.token),
                Some(&body),
            )
            .await?;
        self.conn = Some(conn);
        let answer = answer.ok()?;
        Ok(serde_json::from_slice(&answer.body).unwrap_or_default())
    }

    /// Sends buffered batches oldest first until one fails or none is left.
    async fn drain(&mut self) {
        loop {
            let body = match self.buffer.front() {
                Ok(Some(b)) => Bytes::from(b),
                Ok(None) => break,
                Err(e) => {
                    tracing::error!("reading the buffer: {e}; dropping that batch");
                    let _ = self.buffer.pop();
                    continue;
                }
            };
            match self.send(body).await {
                Ok(()) => {
                    if let Err(e) = self.buffer.pop() {
                        tracing::error!("buffer: {e}");
                    }
                    self.succeeded();
                }
                Err(e) if refuses_the_data(&e) => {
                    // The server refused the data itself (400, 413, 422): it never will
                    // accept it, and keeping it would hold back every later batch.
                    tracing::error!("the server refused a batch, dropping it: {e}");
                    let _ = self.buffer.pop();
                    self.buffer.dropped += 1;
                }
                Err(e) => {
                    // Anything else (unreachable, 5xx, 401 after a re-enrollment, a proxy's
                    // 404): keep the batch and retry with backoff.
                    self.failed(&e);
                    return;
                }
            }
        }
    }

    fn succeeded(&mut self) {
        if self.last_error.is_some() {
            tracing::info!("pushing again; the server accepts the batches");
        }
        self.backoff = BACKOFF_FIRST;
        self.retry_at = None;
        self.last_ok = Some(unix_now());
        self.last_error = None;
        self.token_refused = false;
    }

    fn failed(&mut self, e: &ClientError) {
        self.conn = None;
        self.failures += 1;
        let message = Failure::from_client(e).message;
        if e.exit_code() == 4 {
            if !self.token_refused {
                tracing::error!("{message}");
            }
            self.token_refused = true;
        } else if self.last_error.as_deref() != Some(message.as_str()) {
            tracing::warn!(
                "push failed: {message}; keeping batches on disk ({} buffered), retrying with backoff",
                self.buffer.len()
            );
        }
        self.last_error = Some(message);
        self.retry_at = Some(Instant::now() + jitter(self.backoff));
        self.backoff = (self.backoff * 2).min(self.backoff_max);
    }

    /// Queues a new batch behind any older ones, then sends what it can.
    async fn push(&mut self, body: Vec<u8>) {
        if let Err(e) = self.buffer.push(&body) {
            // The disk is full or gone: send directly, in order if the buffer is empty.
            tracing::error!("cannot buffer a batch: {e}");
            if self.buffer.is_empty() {
                match self.send(Bytes::from(body)).await {
                    Ok(()) => self.succeeded(),
                    Err(e) => self.failed(&e),
                }
                return;
            }
        }
        if self.retry_at.is_none_or(|t| Instant::now() >= t) {
            self.drain().await;
        }
    }
}

struct Agent {
    path: PathBuf,
    config: AgentConfig,
    modified: Option<SystemTime>,
    targets: Vec<Target>,
    collector: Collector,
    pusher: Pusher,
    state: AgentState,
    /// The database services' exporters.
    services: Vec<Supervised>,
    services_dir: PathBuf,
    /// Each exporter's and service's health at its last scrape; a failure is logged once,
    /// not every round.
    health: HashMap<String, TargetHealth>,
    /// Series left out because the server's limits would refuse them.
    refused_series: u64,
    /// Query Analytics of the services that have it on.
    qans: Vec<Qan>,
    /// Reports not yet taken by the server, oldest first.
    reports: VecDeque<Report>,
    reports_dropped: u64,
}

fn targets_of(config: &AgentConfig) -> Vec<Target> {
    config
        .exporters
        .iter()
        .filter_map(|e| {
            let url = url::Url::parse(&e.url).ok()?;
            Some(Target {
                name: e.name.clone(),
                url,
                every: Duration::from_secs(e.interval_s.max(1)),
                next: Instant::now(),
            })
        })
        .collect()
}

/// The labels a service's series carry: `job` (its type), `instance` (its name) and the
/// service's own.
fn service_labels(service: &Service) -> Vec<(String, String)> {
    let mut labels = vec![
        ("job".to_owned(), service.kind.as_str().to_owned()),
        ("instance".to_owned(), service.name.clone()),
    ];
    labels.extend(service.labels());
    labels
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Agent {
    /// Picks up exporters, labels and interval changed by `add exporter` / `remove`.
    async fn reload_if_changed(&mut self) {
        let now = mtime(&self.path);
        if now == self.modified {
            return;
        }
        self.modified = now;
        match AgentConfig::load(&self.path) {
            Ok(c) => {
                let names: Vec<&str> = c.exporters.iter().map(|e| e.name.as_str()).collect();
                tracing::info!("config changed; exporters now: [{}]", names.join(", "));
                self.targets = targets_of(&c);
                self.sync_services(&c.services).await;
                self.health.retain(|k, _| {
                    names.contains(&k.as_str()) || c.services.iter().any(|s| &s.name == k)
                });
                self.pusher.backoff_max = backoff_max(c.interval_s);
                let identity_changed = c.server != self.config.server
                    || c.trust != self.config.trust
                    || c.pin_sha256 != self.config.pin_sha256
                    || c.ca_file != self.config.ca_file
                    || c.token != self.config.token;
                if identity_changed {
                    // `config --force` enrolled again: new token, maybe a new server or pin.
                    // Buffered batches stay and go to the new identity.
                    match server_of(&c) {
                        Ok(server) => {
                            tracing::info!(
                                "enrolled again as node {}; pushing to {}",
                                c.node_name,
                                c.server
                            );
                            self.pusher.server = server;
                            self.pusher.token = c.token.clone();
                            self.pusher.conn = None;
                            self.pusher.retry_at = Some(Instant::now());
                            self.pusher.backoff = BACKOFF_FIRST;
                        }
                        Err(e) => tracing::error!("the new config's server cannot be used: {e}"),
                    }
                }
                self.config = c;
            }
            Err(e) => {
                tracing::error!("config changed but cannot be used, keeping the old one: {e}")
            }
        }
    }

    /// Starts the exporters of new services, stops those of removed ones, restarts changed
    /// ones.
    async fn sync_services(&mut self, wanted: &[Service]) {
        let mut kept = Vec::with_capacity(wanted.len());
        for mut s in std::mem::take(&mut self.services) {
            if wanted.contains(&s.service) {
                kept.push(s);
            } else {
                tracing::info!(
                    "service {}: removed or changed; stopping its exporter",
                    s.service.name
                );
                s.stop().await;
            }
        }
        for w in wanted {
            if !kept.iter().any(|s| &s.service == w) {
                kept.push(Supervised::new(w.clone()));
            }
        }
        self.services = kept;
        let mut qans: Vec<Qan> = std::mem::take(&mut self.qans)
            .into_iter()
            .filter(|q| wanted.contains(&q.service))
            .collect();
        for w in wanted {
            if !qans.iter().any(|q| &q.service == w) {
                qans.extend(Qan::new(w.clone()));
            }
        }
        self.qans = qans;
    }

    /// Reads the Query Analytics sources that are due and sends what the server has not
    /// taken yet.
    async fn qan_round(&mut self) {
        let now = Instant::now();
        let due = now + Duration::from_secs(self.config.interval_s) / 2;
        let wall = unix_now();
        // Like a scrape, a reading may take most of a round, and the sources are read at
        // once: a slow database holds back no other.
        let timeout = Duration::from_secs(self.config.interval_s)
            .mul_f64(0.8)
            .min(Duration::from_secs(10));
        let (now_due, rest): (Vec<Qan>, Vec<Qan>) = std::mem::take(&mut self.qans)
            .into_iter()
            .partition(|q| due >= q.due);
        self.qans = rest;
        let mut readings = tokio::task::JoinSet::new();
        for mut q in now_due {
            q.due = now + Duration::from_secs(q.service.interval_s.max(1));
            readings.spawn(async move {
                let result = q.collect(wall, timeout).await;
                (q, result)
            });
        }
        while let Some(done) = readings.join_next().await {
            let Ok((mut q, result)) = done else {
                tracing::error!("a Query Analytics reading failed unexpectedly");
                continue;
            };
            match result {
                Ok(report) => {
                    if q.last_error.take().is_some() {
                        tracing::info!("service {}: Query Analytics reads again", q.service.name);
                    }
                    self.reports.extend(report);
                }
                Err(e) => {
                    let e = e.to_string();
                    if q.last_error.as_deref() != Some(e.as_str()) {
                        tracing::warn!("service {}: Query Analytics: {e}", q.service.name);
                    }
                    q.last_error = Some(e);
                }
            }
            self.qans.push(q);
        }
        while self.reports.len() > MAX_PENDING_REPORTS {
            self.reports.pop_front();
            self.reports_dropped += 1;
        }
        self.send_reports().await;
    }

    async fn send_reports(&mut self) {
        while let Some(report) = self.reports.front() {
            if self.pusher.retry_at.is_some_and(|t| Instant::now() < t) {
                return;
            }
            match self.pusher.send_report(report).await {
                Ok(answer) => {
                    if let Some(q) = self
                        .qans
                        .iter_mut()
                        .find(|q| q.service.name == report.service)
                    {
                        q.delivered(report, &answer);
                    }
                    self.reports.pop_front();
                }
                Err(e)
                    if refuses_the_data(&e)
                        || matches!(&e, ClientError::Refused { status, .. } if status.as_u16() == 404) =>
                {
                    tracing::error!(
                        "the server refused a Query Analytics report of {}, dropping it: {e}",
                        report.service
                    );
                    self.reports.pop_front();
                    self.reports_dropped += 1;
                }
                Err(e) => {
                    self.pusher.failed(&e);
                    return;
                }
            }
        }
    }

    /// Stops every exporter (the agent is stopping).
    async fn stop_services(&mut self) {
        for s in &mut self.services {
            s.stop().await;
        }
        self.services.clear();
    }

    /// One round: collect, scrape the exporters that are due, push.
    async fn round(&mut self) {
        self.reload_if_changed().await;
        let t = perch_time::unix_now_ms();
        let started = Instant::now();
        let collected = self.collector.collect(t);
        for e in &collected.errors {
            tracing::debug!("node collector: {e}");
        }
        let mut series = collected.series;
        let node = self.config.node_name.clone();
        for s in &mut series {
            add_label(s, "job", "node");
            add_label(s, "instance", &node);
        }

        let timeout = Duration::from_secs(self.config.interval_s)
            .mul_f64(0.8)
            .min(Duration::from_secs(10));
        for s in &mut self.services {
            s.tend(&self.services_dir).await;
        }
        // Rounds start on the ticker but their work takes a moment, so "due" allows half a
        // round: a target scraped every round is never skipped for a few milliseconds.
        let now = Instant::now();
        let due = now + Duration::from_secs(self.config.interval_s) / 2;
        let mut scrapes = tokio::task::JoinSet::new();
        for x in self.targets.iter_mut().filter(|x| due >= x.next) {
            x.next = now + x.every;
            let labels = vec![
                ("job".to_owned(), x.name.clone()),
                ("instance".to_owned(), scrape::instance(&x.url)),
            ];
            let (name, url) = (x.name.clone(), x.url.clone());
            scrapes.spawn(async move {
                let result = scrape::scrape(&labels, &url, timeout, t)
                    .await
                    .map_err(|e| e.to_string());
                (name, labels, result)
            });
        }
        for s in self.services.iter_mut().filter(|s| due >= s.next_scrape) {
            s.next_scrape = now + Duration::from_secs(s.service.interval_s.max(1));
            let labels = service_labels(&s.service);
            let name = s.service.name.clone();
            let (url, not_running) = (s.url(), s.not_running.clone());
            scrapes.spawn(async move {
                let result = match url {
                    Some(url) => scrape::scrape(&labels, &url, timeout, t)
                        .await
                        .map_err(|e| format!("its exporter did not answer: {e}")),
                    None => {
                        Err(not_running.unwrap_or_else(|| "its exporter is not running".into()))
                    }
                };
                (name, labels, result)
            });
        }
        let results = scrapes.join_all().await;
        let wall = unix_now();
        for (name, labels, result) in results {
            let service = self.services.iter().find(|s| s.service.name == name);
            let mut judged = health::judge(result, service, timeout.as_secs_f64());
            let scraped = std::mem::take(&mut judged.series);
            let count = scraped.len();
            series.extend(scraped);
            let (kind, address) = match service {
                Some(s) => (s.service.kind.as_str(), s.service.address()),
                None => (
                    "exporter",
                    self.targets
                        .iter()
                        .find(|x| x.name == name)
                        .map_or(String::new(), |x| x.url.to_string()),
                ),
            };
            let health = judged.health(self.health.get(&name), (&name, kind, address), wall);
            series.extend(judged.own_series(&labels, count, health.since, t));
            self.health.insert(name, health);
        }
        let own = [("job", "perch_agent"), ("instance", node.as_str())];
        let p = &self.pusher;
        for (name, value) in [
            ("perch_agent_buffer_batches", p.buffer.len() as f64),
            ("perch_agent_buffer_bytes", p.buffer.bytes() as f64),
            ("perch_agent_dropped_batches_total", p.buffer.dropped as f64),
            ("perch_agent_push_failures_total", p.failures as f64),
            (
                "perch_agent_refused_series_total",
                self.refused_series as f64,
            ),
            (
                "perch_agent_collect_duration_seconds",
                started.elapsed().as_secs_f64(),
            ),
            ("perch_agent_qan_reports_pending", self.reports.len() as f64),
            (
                "perch_agent_qan_reports_dropped_total",
                self.reports_dropped as f64,
            ),
        ] {
            series.push(gauge(name, &own, value, t));
        }
        for q in &self.qans {
            let up = if q.last_error.is_some() { 0.0 } else { 1.0 };
            let labels = [own[0], own[1], ("service_name", q.service.name.as_str())];
            series.push(gauge("perch_agent_qan_up", &labels, up, t));
        }
        for s in &mut series {
            for (k, v) in &self.config.labels {
                add_label(s, k, v);
            }
        }
        let limits = Limits::default();
        let before = series.len();
        // A series the server would refuse would make it refuse the whole batch.
        series.retain(|s| limits.check_one(s, t).is_ok());
        if series.len() < before {
            self.refused_series += (before - series.len()) as u64;
            tracing::warn!(
                "{} series left out: over the server's limits ({} labels, {} bytes a label value)",
                before - series.len(),
                limits.max_labels_per_series,
                limits.max_label_value_bytes
            );
        }
        let identity = (self.config.node_id.as_str(), self.config.node_name.as_str());
        stamp_identity(&mut series, identity, &limits);
        while !series.is_empty() {
            let rest = series.split_off(series.len().min(MAX_BATCH_SERIES));
            let body = WriteRequest { timeseries: series }.encode_body();
            self.pusher.push(body).await;
            series = rest;
        }
        self.qan_round().await;
        self.report();
    }

    fn report(&mut self) {
        let p = &self.pusher;
        self.state.updated_at = unix_now();
        self.state.interval_s = self.config.interval_s;
        self.state.last_push_ok = p.last_ok.or(self.state.last_push_ok);
        self.state.last_error = p.last_error.clone();
        self.state.buffered_batches = p.buffer.len() as u64;
        self.state.buffered_bytes = p.buffer.bytes();
        self.state.dropped_batches = p.buffer.dropped;
        let mut targets: Vec<TargetHealth> = self.health.values().cloned().collect();
        targets.sort_by(|a, b| a.name.cmp(&b.name));
        self.state.targets = targets;
        self.state.exporter_pids = self.services.iter().filter_map(Supervised::pid).collect();
        if let Err(e) = self.state.write(&AgentConfig::state_path(&self.path)) {
            tracing::warn!("cannot write the state file: {e}");
        }
    }
}

pub async fn run(args: AgentArgs, path: &Path) -> Result<(), Failure> {
    // One JSON object a line on stderr, as the server logs; `PERCH_LOG` filters.
    perch_log::init(
        &std::env::var("PERCH_LOG").unwrap_or_default(),
        std::io::stderr,
    );
    let config = AgentConfig::load(path)?;
    let server = server_of(&config)?;
    if let Some(old) = AgentState::read(&AgentConfig::state_path(path)) {
        supervise::stop_leftovers(&old.exporter_pids);
    }
    let buffer = DiskBuffer::open(
        &AgentConfig::buffer_dir(path),
        config.max_buffer_mib.saturating_mul(1024 * 1024),
    )
    .map_err(|e| Failure::usage(format!("the agent's buffer: {e}")))?;
    if !buffer.is_empty() {
        tracing::info!(
            "{} batches from an earlier run are buffered; sending them first",
            buffer.len()
        );
    }
    let collector = Collector::new(Options {
        proc_path: args.proc_path.clone(),
        root_path: args.root_path.clone(),
        ..Options::default()
    });
    let interval = Duration::from_secs(config.interval_s);
    tracing::info!(
        "perch-admin agent {} started: node {} -> {} every {} s, {} exporter(s), {} service(s)",
        env!("CARGO_PKG_VERSION"),
        config.node_name,
        config.server,
        config.interval_s,
        config.exporters.len(),
        config.services.len()
    );
    let mut agent = Agent {
        path: path.to_owned(),
        modified: mtime(path),
        targets: targets_of(&config),
        collector,
        pusher: Pusher {
            server,
            token: config.token.clone(),
            conn: None,
            buffer,
            backoff: BACKOFF_FIRST,
            backoff_max: backoff_max(config.interval_s),
            retry_at: Some(Instant::now()),
            failures: 0,
            last_ok: None,
            last_error: None,
            token_refused: false,
        },
        state: AgentState {
            pid: std::process::id(),
            started_at: unix_now(),
            ..AgentState::default()
        },
        services: config
            .services
            .iter()
            .cloned()
            .map(Supervised::new)
            .collect(),
        services_dir: AgentConfig::services_dir(path),
        health: HashMap::new(),
        refused_series: 0,
        qans: config
            .services
            .iter()
            .cloned()
            .filter_map(Qan::new)
            .collect(),
        reports: VecDeque::new(),
        reports_dropped: 0,
        config,
    };
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return Err(Failure::runtime("cannot install signal handlers"));
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let retry = agent
            .pusher
            .retry_at
            .filter(|_| !agent.pusher.buffer.is_empty() || !agent.reports.is_empty());
        let retry_sleep = async move {
            match retry {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ticker.tick() => {
                agent.round().await;
                let new = Duration::from_secs(agent.config.interval_s);
                if new != ticker.period() {
                    ticker = tokio::time::interval_at(tokio::time::Instant::now() + new, new);
                    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                }
            }
            _ = retry_sleep => {
                agent.pusher.drain().await;
                agent.send_reports().await;
                agent.report();
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    agent.stop_services().await;
    agent.report();
    tracing::info!(
        "stopping; {} batches stay buffered for the next start",
        agent.pusher.buffer.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_carry_the_nodes_identity_where_it_fits() {
        let limits = Limits {
            max_labels_per_series: 4,
            max_label_value_bytes: 8,
            ..Limits::default()
        };
        let mut series = vec![
            gauge("up", &[("job", "node"), ("node_name", "forged")], 1.0, 5),
            gauge("up", &[("job", "node"), ("instance", "a:1")], 1.0, 5),
        ];
        stamp_identity(&mut series, ("12", "db-1"), &limits);
        let labels = |s: &TimeSeries| -> Vec<(String, String)> {
            s.labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect()
        };
        let own = |n: &str, v: &str| (n.to_owned(), v.to_owned());
        assert_eq!(
            labels(&series[0]),
            [
                own("__name__", "up"),
                own("job", "node"),
                own("node_id", "12"),
                own("node_name", "db-1")
            ]
        );
        // Three labels and two more would be over the limit of four: sent as it is.
        assert_eq!(labels(&series[1]).len(), 3);
        // A name longer than a label value may be: nothing stamped, the server does it.
        let mut series = vec![gauge("up", &[], 1.0, 5)];
        stamp_identity(&mut series, ("12", "a-long-node-name"), &limits);
        assert_eq!(labels(&series[0]), [own("__name__", "up")]);
    }
}
