//! Command line and environment: every flag has a `PERCH_*` variable, and its doc string
//! is its `--help` text.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Perch: a self-hosted monitoring appliance. Terminates TLS on 443 with the certificates
/// under --cert-dir (PMM's file names), or with its own local CA when there are none.
#[derive(Debug, Parser)]
#[command(
    name = "perch-server",
    version,
    after_help = "Exit codes: 0 clean shutdown (SIGTERM or SIGINT); 1 start-up failure such as an address \
that cannot be bound; 2 unusable configuration or certificate file (stderr names the file and the fault)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Probe the running server's /v1/readyz over TLS and exit 0 (ready) or 1 (not), for
    /// Docker's HEALTHCHECK in an image with no shell.
    Healthcheck(HealthcheckArgs),
}

/// Where the HTTPS listener is, shared by the server and the healthcheck.
#[derive(Debug, Clone, Args)]
pub struct ListenArgs {
    /// HTTPS address to listen on.
    #[arg(long, env = "PERCH_LISTEN", default_value = "0.0.0.0:443")]
    pub listen: SocketAddr,

    /// Data directory: users, the local CA and metrics live below it. Back it up.
    #[arg(long, env = "PERCH_DATA_DIR", default_value = "/srv")]
    pub data_dir: PathBuf,

    /// Certificate directory with PMM's file names: certificate.crt, certificate.key,
    /// ca-certs.pem (intermediates), dhparam.pem (accepted, unused). Empty: Perch
    /// generates a local CA and a certificate. Replaced files are served within 5 s.
    /// [default: <data-dir>/nginx]
    #[arg(long, env = "PERCH_CERT_DIR")]
    pub cert_dir: Option<PathBuf>,
}

impl ListenArgs {
    pub fn cert_dir(&self) -> PathBuf {
        self.cert_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("nginx"))
    }

    /// Where the local CA (certificate and 0600 key) is kept: apart from --cert-dir.
    pub fn ca_dir(&self) -> PathBuf {
        self.data_dir.join("perch").join("ca")
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub listen: ListenArgs,

    /// Plain HTTP address; it answers only with a 308 redirect to HTTPS. `off` disables it.
    #[arg(long, env = "PERCH_HTTP_LISTEN", default_value = "0.0.0.0:80", value_parser = parse_optional_addr)]
    pub http_listen: OptionalAddr,

    /// Extra subjectAltName (DNS name or IP) for the generated certificate, e.g. the name
    /// clients use to reach this host. Repeatable; comma-separated in the variable.
    /// localhost, 127.0.0.1, ::1 and the host name are always included.
    #[arg(long = "tls-san", env = "PERCH_TLS_SAN", value_delimiter = ',')]
    pub tls_san: Vec<String>,

    /// Start even if the certificate has expired (clients will refuse it). Loud warning.
    #[arg(long, env = "PERCH_ALLOW_EXPIRED_CERT")]
    pub allow_expired_cert: bool,

    /// Also write the JSON access log to this file (created with mode 0640, appended).
    #[arg(long, env = "PERCH_ACCESS_LOG_FILE")]
    pub access_log_file: Option<PathBuf>,

    /// Most open client connections (HTTPS and HTTP together); further ones wait in the
    /// kernel's backlog.
    #[arg(long, env = "PERCH_MAX_CONNECTIONS", default_value_t = 8192)]
    pub max_connections: u32,

    /// Time allowed for a TLS handshake, e.g. 10s.
    #[arg(long, env = "PERCH_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,

    /// Time allowed to read a request's headers; also how long an idle HTTP/1.1
    /// keep-alive connection stays open.
    #[arg(long, env = "PERCH_HEADER_READ_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// Largest request head (request line and headers) in bytes; larger gets 431.
    #[arg(long, env = "PERCH_MAX_HEADER_BYTES", default_value_t = 32 * 1024)]
    pub max_header_bytes: usize,

    /// Worker threads for the async runtime [default: half the CPUs (at least 1) with the
    /// bundled engine, which needs the rest; every CPU with an external engine].
    #[arg(long, env = "PERCH_WORKER_THREADS")]
    pub worker_threads: Option<usize>,

    /// How long SIGTERM waits for in-flight requests before exiting, e.g. 10s.
    #[arg(long, env = "PERCH_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// A session ends after this long without a request, e.g. 30m.
    #[arg(long, env = "PERCH_SESSION_IDLE", default_value = "30m", value_parser = parse_duration)]
    pub session_idle: Duration,

    /// A session ends this long after login, however active, e.g. 12h.
    #[arg(long, env = "PERCH_SESSION_LIFETIME", default_value = "12h", value_parser = parse_duration)]
    pub session_lifetime: Duration,

    /// Shortest password accepted, in characters after NFKC normalisation (8 at least).
    #[arg(long, env = "PERCH_PASSWORD_MIN_LENGTH", default_value_t = crate::auth::password::DEFAULT_MIN_LEN)]
    pub password_min_length: usize,

    /// Force a password change at login once a password is this old, e.g. 90d. Off by
    /// default.
    #[arg(long, env = "PERCH_PASSWORD_MAX_AGE", value_parser = parse_duration)]
    pub password_max_age: Option<Duration>,

    /// On first start, create the admin with the password in this file (Docker secrets)
    /// instead of the interactive setup; the password must pass the policy.
    #[arg(long, env = "PERCH_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,

    /// The admin's user name for --admin-password-file.
    #[arg(long, env = "PERCH_ADMIN_USER", default_value = "admin")]
    pub admin_user: String,

    /// The bundled metrics engine: a `victoria-metrics` binary, looked up on PATH unless it
    /// is a path. It runs on 127.0.0.1 only, with its data in <data-dir>/victoriametrics.
    #[arg(
        long,
        env = "PERCH_VICTORIA_METRICS_BIN",
        default_value = "victoria-metrics"
    )]
    pub victoria_metrics_bin: String,

    /// How long the engine keeps samples (its -retentionPeriod), e.g. 30d, 12w, 1y.
    #[arg(long, env = "PERCH_RETENTION", default_value = "30d")]
    pub retention: String,

    #[command(flatten)]
    pub external_engine: ExternalEngineArgs,

    /// Longest a query may run before the client gets a timeout error, e.g. 60s.
    #[arg(long, env = "PERCH_QUERY_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub query_timeout: Duration,

    /// Queries one user or token may have running at once; more get 429.
    #[arg(long, env = "PERCH_MAX_QUERIES_PER_USER", default_value_t = 8)]
    pub max_queries_per_user: usize,

    /// Log filter (error, warn, info, debug, or per-module directives).
    #[arg(long, env = "PERCH_LOG", default_value = "info")]
    pub log: String,

    /// Reverse-proxy routes (TOML: prefix, upstream, role, ...; see the README). Checked
    /// at start (an error stops the server) and again at SIGHUP (an error keeps the
    /// routes in force).
    #[arg(long, env = "PERCH_CONFIG")]
    pub config: Option<PathBuf>,
}

/// An external metrics engine, instead of the bundled one.
#[derive(Debug, Clone, Args)]
pub struct ExternalEngineArgs {
    /// Use an external metrics engine instead of the bundled one: the full URL of its
    /// Prometheus remote-write endpoint, e.g.
    /// http://vminsert:8480/insert/0/prometheus/api/v1/write or
    /// http://prometheus:9090/api/v1/write. Requires --metrics-query-url.
    #[arg(long, env = "PERCH_METRICS_WRITE_URL", value_name = "URL",
        requires = "metrics_query_url", value_parser = crate::proxy::parse_url)]
    pub metrics_write_url: Option<url::Url>,

    /// The external engine's Prometheus API base, to which /api/v1/query and the other
    /// query paths are appended, e.g. http://vmselect:8481/select/0/prometheus or
    /// http://prometheus:9090. Requires --metrics-write-url.
    #[arg(long, env = "PERCH_METRICS_QUERY_URL", value_name = "URL",
        requires = "metrics_write_url", value_parser = crate::proxy::parse_base_url)]
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

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    #[command(flatten)]
    pub listen: ListenArgs,

    /// Give up after this long, e.g. 3s.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// A listen address, or `off`.
#[derive(Debug, Clone, Copy)]
pub struct OptionalAddr(pub Option<SocketAddr>);

fn parse_optional_addr(s: &str) -> Result<OptionalAddr, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(OptionalAddr(None));
    }
    s.parse()
        .map(|a| OptionalAddr(Some(a)))
        .map_err(|_| format!("'{s}' is not an address like 0.0.0.0:80, nor 'off'"))
}

/// `250ms`, `10s`, `5m`, `1h`, `90d`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 500ms, 10s, 5m or 1h"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        "d" => Ok(Duration::from_secs(n * 86_400)),
        _ => Err(format!(
            "'{s}': unknown unit '{unit}' (use ms, s, m, h or d)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("ten").is_err());
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("5w").is_err());
    }

    #[test]
    fn external_engine_flags_come_in_pairs() {
        let parse = |extra: &[&str]| {
            Cli::try_parse_from(std::iter::once("perch-server").chain(extra.iter().copied()))
        };
        let write = [
            "--metrics-write-url",
            "http://vminsert:8480/insert/0/prometheus/api/v1/write",
        ];
        let query = [
            "--metrics-query-url",
            "http://vmselect:8481/select/0/prometheus",
        ];
        let both = [write, query].concat();
        let cli = parse(&both).unwrap();
        assert_eq!(
            cli.serve
                .external_engine
                .metrics_query_url
                .unwrap()
                .as_str(),
            "http://vmselect:8481/select/0/prometheus"
        );
        assert!(
            parse(&[])
                .unwrap()
                .serve
                .external_engine
                .metrics_write_url
                .is_none()
        );
        for alone in [&write[..], &query[..]] {
            let e = parse(alone).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        }
        // Auth and CA flags only with an external engine; basic auth needs its password
        // file and excludes a bearer token.
        assert!(parse(&["--metrics-bearer-token-file", "/t"]).is_err());
        assert!(parse(&[&both[..], &["--metrics-basic-auth-user", "u"]].concat()).is_err());
        assert!(
            parse(
                &[
                    &both[..],
                    &[
                        "--metrics-basic-auth-user",
                        "u",
                        "--metrics-basic-auth-password-file",
                        "/p"
                    ],
                    &["--metrics-bearer-token-file", "/t"],
                ]
                .concat()
            )
            .is_err()
        );
        assert!(
            parse(
                &[
                    &both[..],
                    &[
                        "--metrics-basic-auth-user",
                        "u",
                        "--metrics-basic-auth-password-file",
                        "/p"
                    ]
                ]
                .concat()
            )
            .is_ok()
        );
        // Credentials in a URL, or a query on the base URL, are refused.
        let e = parse(&[
            "--metrics-write-url",
            "http://u:p@vminsert/api/v1/write",
            query[0],
            query[1],
        ])
        .unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(
            parse(&[
                write[0],
                write[1],
                "--metrics-query-url",
                "http://p:9090/?x=1"
            ])
            .is_err()
        );
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
