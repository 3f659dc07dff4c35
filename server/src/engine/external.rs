//! An external engine (`--metrics-write-url`, `--metrics-query-url`): its upstreams, built
//! from the flags, and a probe of its query API that keeps the readiness line current.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use perch_upstream::{self as upstream, Client, Credentials, Upstream};
use tokio::sync::watch;

use super::{CONNECT_TIMEOUT, ENGINE_NAME, Engine, EngineState, Targets};

/// While the engine answers, it is probed this often.
const PROBE_EVERY: Duration = Duration::from_secs(5);
/// After a failed probe, the next comes after 1 s, doubling up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// One probe may take this long.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a probe's answer that is read.
const PROBE_BODY_LIMIT: usize = 64 * 1024;

/// An external metrics engine, instead of the bundled one.
#[derive(Debug, Clone, Args)]
pub struct ExternalEngineArgs {
    /// Use an external metrics engine instead of the bundled one: the full URL of its
    /// Prometheus remote-write endpoint, e.g.
    /// http://vminsert:8480/insert/0/prometheus/api/v1/write or
    /// http://prometheus:9090/api/v1/write. Requires --metrics-query-url.
    #[arg(long, env = "PERCH_METRICS_WRITE_URL", value_name = "URL",
        requires = "metrics_query_url", value_parser = perch_upstream::parse_url)]
    pub metrics_write_url: Option<url::Url>,

    /// The external engine's Prometheus API base, to which /api/v1/query and the other
    /// query paths are appended, e.g. http://vmselect:8481/select/0/prometheus or
    /// http://prometheus:9090. Requires --metrics-write-url.
    #[arg(long, env = "PERCH_METRICS_QUERY_URL", value_name = "URL",
        requires = "metrics_write_url", value_parser = perch_upstream::parse_base_url)]
    pub metrics_query_url: Option<url::Url>,

    /// PEM file of the CA certificates that the external engine's HTTPS certificates must
    /// chain to [default: the system's CA certificates].
    #[arg(
        long,
        env = "PERCH_METRICS_CA_FILE",
        value_name = "FILE",
        requires = "metrics_write_url"
    )]
    pub metrics_ca_file: Option<PathBuf>,

    /// User name for HTTP basic auth to the external engine; the password is read from
    /// --metrics-basic-auth-password-file.
    #[arg(long, env = "PERCH_METRICS_BASIC_AUTH_USER", value_name = "USER",
        requires_all = ["metrics_write_url", "metrics_basic_auth_password_file"],
        conflicts_with = "metrics_bearer_token_file")]
    pub metrics_basic_auth_user: Option<String>,

    /// File holding the basic-auth password for the external engine (one trailing newline
    /// is ignored); a file, so that the secret is not in the process list.
    #[arg(
        long,
        env = "PERCH_METRICS_BASIC_AUTH_PASSWORD_FILE",
        value_name = "FILE",
        requires = "metrics_basic_auth_user"
    )]
    pub metrics_basic_auth_password_file: Option<PathBuf>,

    /// File holding a bearer token sent to the external engine (one trailing newline is
    /// ignored).
    #[arg(
        long,
        env = "PERCH_METRICS_BEARER_TOKEN_FILE",
        value_name = "FILE",
        requires = "metrics_write_url"
    )]
    pub metrics_bearer_token_file: Option<PathBuf>,
}

/// The external engine's upstreams, sharing one client (and so one pool).
#[derive(Debug)]
pub struct ExternalEngine {
    pub(super) targets: Arc<Targets>,
}

impl ExternalEngine {
    /// From the flags: `None` when no external engine is configured (clap has already
    /// checked that the URLs come together and that the auth flags are consistent). The
    /// error names the flag or file at fault.
    pub fn from_args(
        args: &ExternalEngineArgs,
        query_timeout: Duration,
    ) -> Result<Option<Self>, String> {
        let (Some(write_url), Some(query_url)) = (&args.metrics_write_url, &args.metrics_query_url)
        else {
            return Ok(None);
        };
        let client = match &args.metrics_ca_file {
            Some(file) => Client::with_ca_file(file, CONNECT_TIMEOUT)
                .map_err(|e| format!("--metrics-ca-file: {e}"))?,
            None => Client::new(CONNECT_TIMEOUT),
        };
        let auth = match (
            &args.metrics_basic_auth_user,
            &args.metrics_basic_auth_password_file,
            &args.metrics_bearer_token_file,
        ) {
            (Some(user), Some(file), None) => {
                let password = upstream::read_secret(file)
                    .map_err(|e| format!("--metrics-basic-auth-password-file: {e}"))?;
                Credentials::basic(user, &password)
                    .map_err(|e| format!("--metrics-basic-auth-user: {e}"))?
            }
            (None, None, Some(file)) => {
                let token = upstream::read_secret(file)
                    .map_err(|e| format!("--metrics-bearer-token-file: {e}"))?;
                Credentials::bearer(&token)
                    .map_err(|e| format!("--metrics-bearer-token-file: {e}"))?
            }
            (None, None, None) => Credentials::none(),
            _ => {
                return Err("use either --metrics-basic-auth-user with --metrics-basic-auth-password-file, or --metrics-bearer-token-file".into());
            }
        };
        let upstream = |url: &url::Url| {
            Upstream::new(
                ENGINE_NAME,
                url.clone(),
                auth.clone(),
                query_timeout,
                client.clone(),
            )
        };
        let targets = Targets::new(upstream(query_url), upstream(write_url))
            .map_err(|_| "--metrics-write-url: not a usable request target".to_owned())?;
        Ok(Some(Self { targets }))
    }
}

/// Probes the query API until `shutdown` turns true, setting the engine's state.
pub(super) fn spawn_prober(
    engine: Arc<Engine>,
    targets: Arc<Targets>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let query = &targets.query;
        let mut backoff = Duration::from_secs(1);
        let mut last: Option<Result<(), String>> = None;
        loop {
            let result = probe(query).await;
            let wait = match &result {
                Ok(()) => {
                    if last.as_ref().is_none_or(Result::is_err) {
                        tracing::info!(query_url = %query.display_base(), "external metrics engine ready");
                    }
                    engine.set_state(EngineState::Ready);
                    backoff = Duration::from_secs(1);
                    PROBE_EVERY
                }
                Err(why) => {
                    if last.as_ref() != Some(&result) {
                        tracing::warn!(query_url = %query.display_base(), reason = %why, "external metrics engine unavailable");
                    }
                    engine.set_state(EngineState::Unavailable(why.clone()));
                    let wait = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    wait
                }
            };
            last = Some(result);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    })
}

/// One probe: `/api/v1/status/buildinfo`, or, where that is not served (404), a trivial
/// query `/api/v1/query?query=1`. Any 2xx means ready.
async fn probe(query: &Upstream) -> Result<(), String> {
    let mut answer = get(query, "/api/v1/status/buildinfo").await;
    if answer == Err(ProbeFailure::NotFound) {
        answer = get(query, "/api/v1/query?query=1").await;
    }
    answer.map_err(|e| match e {
        ProbeFailure::NotFound => "its query API answers 404 (check --metrics-query-url)".into(),
        ProbeFailure::Other(why) => why,
    })
}

#[derive(Debug, PartialEq, Eq)]
enum ProbeFailure {
    NotFound,
    Other(String),
}

async fn get(query: &Upstream, path: &str) -> Result<(), ProbeFailure> {
    let uri = query
        .uri(path)
        .map_err(|e| ProbeFailure::Other(e.to_string()))?;
    let request = http::Request::get(uri)
        .body(upstream::full(bytes::Bytes::new()))
        .map_err(|e| ProbeFailure::Other(e.to_string()))?;
    let sent = tokio::time::timeout(PROBE_TIMEOUT, upstream::send(query, request)).await;
    let resp = match sent {
        Err(_) => {
            return Err(ProbeFailure::Other(format!(
                "no answer within {} s",
                PROBE_TIMEOUT.as_secs()
            )));
        }
        Ok(Err(e)) => return Err(ProbeFailure::Other(reason_of(&e))),
        Ok(Ok(resp)) => resp,
    };
    let status = resp.status();
    // Read the (small) answer so that the connection goes back to the pool.
    let _ = tokio::time::timeout(
        PROBE_TIMEOUT,
        upstream::read_body(resp.into_body(), PROBE_BODY_LIMIT),
    )
    .await;
    match status.as_u16() {
        200..=299 => Ok(()),
        404 => Err(ProbeFailure::NotFound),
        401 | 403 => Err(ProbeFailure::Other(format!(
            "it refuses Perch's credentials (HTTP {})",
            status.as_u16()
        ))),
        code => Err(ProbeFailure::Other(format!("it answers HTTP {code}"))),
    }
}

/// The reason part of a proxy error, without the upstream's name (the readiness line
/// already says which engine).
fn reason_of(e: &upstream::UpstreamError) -> String {
    match e {
        upstream::UpstreamError::Connect { reason, .. } => format!("cannot be reached: {reason}"),
        upstream::UpstreamError::Failed { reason, .. } => format!("failed to answer: {reason}"),
        upstream::UpstreamError::Timeout { after, .. } => {
            format!("no answer within {} s", after.as_secs_f64())
        }
        upstream::UpstreamError::BadTarget { .. } => "the query URL is not usable".into(),
    }
}
