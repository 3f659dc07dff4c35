//! What every handler shares: the services, and the settings that shape answers.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::budget::BodyBudget;
use crate::backup::Backups;
use crate::engine::{Engine, QueryLimiter, SeriesLimit};
use crate::selfmon::SelfMetrics;
use crate::tls::Certificates;
use perch_auth::Auth;

#[derive(Debug)]
pub struct App {
    /// Perch's own metrics (`/metrics`).
    pub metrics: Arc<SelfMetrics>,
    pub auth: Arc<Auth>,
    /// Backups: taken on a schedule, from the Backups page, or by `perch-server backup`.
    pub backups: Arc<Backups>,
    /// The metrics engine (VictoriaMetrics, or an external one).
    pub engine: Arc<Engine>,
    /// Alerting: vmalert's rules, Alertmanager's silences and contact points.
    pub alerting: Arc<crate::alerting::Alerting>,
    pub query_limiter: QueryLimiter,
    /// New series each node may create in an hour.
    pub series_limit: SeriesLimit,
    /// Max-Age of the session cookie, seconds.
    pub session_lifetime_s: u64,
    /// Set at SIGTERM: readiness turns 503 while in-flight requests finish.
    pub draining: AtomicBool,
    /// How long a client may take to send a request body.
    pub body_timeout: Duration,
    /// The memory request bodies may hold at once.
    pub body_budget: BodyBudget,
    /// The served certificate (its fingerprint is shown on the Add node page); none in
    /// unit tests.
    pub certs: Option<Arc<Certificates>>,
    /// Where `ca-certs.pem` is, for clients to download.
    pub cert_dir: PathBuf,
    /// Operators' dashboard files (`<data>/dashboards`).
    pub dashboards_dir: PathBuf,
    /// Query Analytics' store of query texts (`<data>/qan`).
    pub qan: Arc<perch_qan::Store>,
    /// Whether Viewers see Query Analytics' example statements (which hold real values).
    pub qan_examples_for_viewers: bool,
}
