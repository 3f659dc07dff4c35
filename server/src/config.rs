//! Command line and environment: every flag has a `PERCH_*` variable, and its doc string
//! is its `--help` text.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use perch_auth::SecondFactorPolicy;

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
    /// Take a backup of the running server (same --data-dir) while it runs: one archive,
    /// encrypted to the recipients or passphrase given (or the server's --backup-* ones),
    /// streamed into --to. e.g. `docker exec perch perch-server backup --to
    /// /srv/backups/now.age --recipient age1...`
    Backup(BackupArgs),
    /// Restore a backup into an empty data directory (no server may be using it), after
    /// checking the whole archive: a wrong key, or a damaged or cut archive, writes nothing.
    Restore(RestoreArgs),
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The running server's data directory (its control socket is under it).
    #[arg(long, env = "PERCH_DATA_DIR", default_value = "/srv")]
    pub data_dir: PathBuf,

    /// Where to write the archive (mode 0600; written as FILE.partial, then renamed), a
    /// folder to write perch-backup-<time>.age into, or `-` for standard output.
    #[arg(long)]
    pub to: PathBuf,

    #[command(flatten)]
    pub keys: BackupKeys,
}

/// Who can open a backup. Without any, the server's own --backup-* settings apply.
#[derive(Debug, Clone, Args)]
pub struct BackupKeys {
    /// An age recipient (age1...) or an SSH public key (`ssh-ed25519 AAAA...`, as in
    /// ~/.ssh/id_ed25519.pub). Repeatable: any one of them opens the backup.
    #[arg(long = "recipient", value_name = "RECIPIENT")]
    pub recipients: Vec<String>,

    /// A file of recipients, one per line (# comments), as `age -R` reads.
    #[arg(long, value_name = "FILE")]
    pub recipients_file: Option<PathBuf>,

    /// Encrypt with the passphrase on the first line of this file instead.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["recipients", "recipients_file"])]
    pub passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("key").required(true).args(["identity", "passphrase_file"])))]
pub struct RestoreArgs {
    /// The backup archive.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,

    /// An age identity file (age-keygen's) or an unencrypted SSH private key whose public
    /// key the backup was encrypted to.
    #[arg(long, value_name = "KEYFILE")]
    pub identity: Option<PathBuf>,

    /// The file whose first line is the backup's passphrase.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,

    /// The data directory to restore into: empty or absent, unless --force.
    #[arg(long, env = "PERCH_DATA_DIR")]
    pub data_dir: PathBuf,

    /// Replace what the data directory holds of Perch's (never while a server uses it).
    #[arg(long)]
    pub force: bool,
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

    /// Most open connections from one client address (IPv6: one /64), counted from accept,
    /// TLS handshake included; further ones are closed at once [default: a quarter of
    /// --max-connections, at most 256]. Clients behind one NAT share it.
    #[arg(long, env = "PERCH_MAX_CONNECTIONS_PER_ADDRESS")]
    pub max_connections_per_address: Option<u32>,

    /// A connection with no request in flight for this long is closed (h2 with a GOAWAY),
    /// e.g. 75s, as nginx's keepalive_timeout.
    #[arg(long, env = "PERCH_IDLE_TIMEOUT", default_value = "75s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Time allowed for a TLS handshake, e.g. 10s.
    #[arg(long, env = "PERCH_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,

    /// Time allowed to read a request's headers; also how long an idle HTTP/1.1
    /// keep-alive connection stays open.
    #[arg(long, env = "PERCH_HEADER_READ_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// Memory, in MiB, that request bodies may hold at once across all requests (never
    /// less than the largest one body, 8 MiB); past it a request waits a second for room,
    /// then gets 503 with Retry-After.
    #[arg(long, env = "PERCH_MAX_BODY_MEMORY_MIB", default_value_t = 64)]
    pub max_body_memory_mib: usize,

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
    #[arg(long, env = "PERCH_PASSWORD_MIN_LENGTH", default_value_t = perch_auth::PASSWORD_MIN_LEN_DEFAULT)]
    pub password_min_length: usize,

    /// Force a password change at login once a password is this old, e.g. 90d. Off by
    /// default.
    #[arg(long, env = "PERCH_PASSWORD_MAX_AGE", value_parser = parse_duration)]
    pub password_max_age: Option<Duration>,

    /// Who must sign in with a second factor (TOTP): `admin` (the admins), `all`, or `off`.
    /// One who must and has none is led to set it up right after the password.
    #[arg(long = "require-2fa", env = "PERCH_REQUIRE_2FA", default_value = "admin", value_parser = parse_second_factor_policy)]
    pub require_2fa: SecondFactorPolicy,

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

    /// How long the engine keeps samples (its -retentionPeriod), e.g. 30d, 12w, 1y, 1.5y;
    /// a number alone is months. Query Analytics keeps its query texts as long: with an
    /// external engine, set it to that engine's retention.
    #[arg(long, env = "PERCH_RETENTION", default_value = "30d", value_parser = retention)]
    pub retention: String,

    #[command(flatten)]
    pub external_engine: crate::engine::ExternalEngineArgs,

    #[command(flatten)]
    pub alerting: AlertingArgs,

    /// Longest a query may run before the client gets a timeout error, e.g. 60s.
    #[arg(long, env = "PERCH_QUERY_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub query_timeout: Duration,

    /// New series one node may create in an hour (series it has not sent in the last
    /// hour or two); a push past it is refused with 429. 0: no limit.
    #[arg(long, env = "PERCH_MAX_NEW_SERIES_PER_NODE", default_value_t = 100_000)]
    pub max_new_series_per_node: usize,

    /// Query Analytics: query fingerprints a database service may have run within a day;
    /// the figures of new ones past it are counted under "other" (and in
    /// perch_qan_dropped_queries_total) until some have not run for a day.
    #[arg(long, env = "PERCH_QAN_MAX_QUERIES_PER_SERVICE", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub qan_max_queries_per_service: u64,

    /// Query Analytics: show example statements, which hold real values, to Viewers too
    /// (by default only Editors and Admins see them).
    #[arg(long, env = "PERCH_QAN_EXAMPLES_FOR_VIEWERS")]
    pub qan_examples_for_viewers: bool,

    /// Queries one user or token may have running at once; more get 429.
    #[arg(long, env = "PERCH_MAX_QUERIES_PER_USER", default_value_t = 8)]
    pub max_queries_per_user: usize,

    /// Log filter (error, warn, info, debug, or per-module directives).
    #[arg(long, env = "PERCH_LOG", default_value = "info")]
    pub log: String,

    /// Folder for scheduled backups and those started from the Backups page (created 0700;
    /// archives are 0600). Needs --backup-recipient(s) or --backup-passphrase-file.
    #[arg(long, env = "PERCH_BACKUP_DIR")]
    pub backup_dir: Option<PathBuf>,

    /// When to take a backup into --backup-dir: `daily 03:00` (UTC), `hourly`, or
    /// `every 6h`. None by default.
    #[arg(long, env = "PERCH_BACKUP_SCHEDULE", requires = "backup_dir", value_parser = parse_schedule)]
    pub backup_schedule: Option<perch_backup::Schedule>,

    /// How many backups to keep in --backup-dir; older ones are removed after each new
    /// one (0: keep all).
    #[arg(long, env = "PERCH_BACKUP_KEEP", default_value_t = 7)]
    pub backup_keep: usize,

    /// Recipient for --backup-dir's backups: age1... or an SSH public key. Repeatable;
    /// comma-separated in the variable.
    #[arg(
        long = "backup-recipient",
        env = "PERCH_BACKUP_RECIPIENT",
        value_delimiter = ','
    )]
    pub backup_recipients: Vec<String>,

    /// A file of recipients for --backup-dir's backups, one per line.
    #[arg(long, env = "PERCH_BACKUP_RECIPIENTS_FILE")]
    pub backup_recipients_file: Option<PathBuf>,

    /// Encrypt --backup-dir's backups with the passphrase on this file's first line.
    #[arg(long, env = "PERCH_BACKUP_PASSPHRASE_FILE", conflicts_with_all = ["backup_recipients", "backup_recipients_file"])]
    pub backup_passphrase_file: Option<PathBuf>,

    /// Reverse-proxy routes (TOML: prefix, upstream, role, ...; see the README). Checked
    /// at start (an error stops the server) and again at SIGHUP (an error keeps the
    /// routes in force).
    #[arg(long, env = "PERCH_CONFIG")]
    pub config: Option<PathBuf>,
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

/// A duration flag: `500ms`, `10s`, `5m`, `1h`, `2d`, or plain seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    perch_time::parse_duration(s).map_err(|e| e.to_string())
}

fn parse_schedule(s: &str) -> Result<perch_backup::Schedule, String> {
    s.parse()
}

impl BackupKeys {
    /// The encryption these flags name; `None` when they name nothing.
    pub fn encryption(&self) -> Result<Option<perch_backup::Encryption>, perch_backup::KeyError> {
        use perch_backup::Encryption;
        if let Some(file) = &self.passphrase_file {
            return Encryption::passphrase_in(file).map(Some);
        }
        let mut list = self.recipients.clone();
        if let Some(file) = &self.recipients_file {
            list.extend(Encryption::recipients_in(file)?);
        }
        if list.is_empty() {
            return Ok(None);
        }
        Encryption::to_recipients(&list).map(Some)
    }
}

impl ServeArgs {
    /// The `--backup-*` flags' keys.
    pub fn backup_keys(&self) -> BackupKeys {
        BackupKeys {
            recipients: self.backup_recipients.clone(),
            recipients_file: self.backup_recipients_file.clone(),
            passphrase_file: self.backup_passphrase_file.clone(),
        }
    }
}

fn parse_second_factor_policy(s: &str) -> Result<SecondFactorPolicy, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "admin" | "admins" => Ok(SecondFactorPolicy::Admins),
        "all" => Ok(SecondFactorPolicy::Everyone),
        "off" => Ok(SecondFactorPolicy::Off),
        other => Err(format!("'{other}' is not one of admin, all, off")),
    }
}

/// Seconds in a retention as the engine reads it (`-retentionPeriod`): a number, whole or
/// decimal, with h, d, w or y, or without a unit for months (of 31 days).
pub fn retention_seconds(retention: &str) -> Option<i64> {
    let r = retention.trim();
    let split = r
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(r.len());
    let n: f64 = r[..split].parse().ok()?;
    let per = match &r[split..] {
        "" => 31 * 86_400,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "y" => 365 * 86_400,
        _ => return None,
    };
    let seconds = n * per as f64;
    (seconds.is_finite() && seconds <= 100.0 * 365.0 * 86_400.0).then_some(seconds as i64)
}

/// `--retention`: a retention the engine takes, of at least a day (the engine's least).
fn retention(value: &str) -> Result<String, String> {
    match retention_seconds(value) {
        Some(s) if s >= 86_400 => Ok(value.trim().to_owned()),
        _ => Err(format!(
            "{value:?}: give a number with h, d, w or y (30d, 12w, 1.5y), or months without a unit; at least a day, at most 100 years"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retentions_as_the_engine_reads_them() {
        assert_eq!(retention_seconds("30d"), Some(30 * 86_400));
        assert_eq!(retention_seconds("1.5y"), Some(547 * 86_400 + 43_200));
        assert_eq!(retention_seconds("2"), Some(62 * 86_400), "months");
        assert_eq!(retention_seconds("12w"), Some(84 * 86_400));
        assert_eq!(retention_seconds("30x"), None);
        assert!(retention("30d").is_ok());
        assert!(retention("12h").unwrap_err().contains("at least a day"));
        assert!(retention("soon").unwrap_err().contains("30d, 12w, 1.5y"));
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

/// Alerting: vmalert evaluates the rules, Alertmanager notifies.
#[derive(Debug, Clone, Args)]
pub struct AlertingArgs {
    /// The vmalert binary (Debian's victoria-metrics package ships it).
    #[arg(long, env = "PERCH_VMALERT_BIN", default_value = "vmalert")]
    pub vmalert_bin: String,

    /// The Alertmanager binary (Debian's prometheus-alertmanager package).
    #[arg(
        long,
        env = "PERCH_ALERTMANAGER_BIN",
        default_value = "prometheus-alertmanager"
    )]
    pub alertmanager_bin: String,

    /// Send alerts to this existing Alertmanager (or a load balancer in front of a
    /// cluster) instead of the bundled one, e.g. http://alertmanager:9093. Silences and
    /// alerts shown in Perch are then that Alertmanager's; contact points are set there.
    #[arg(long, env = "PERCH_ALERTMANAGER_URL", value_name = "URL",
        value_parser = perch_upstream::parse_base_url)]
    pub alertmanager_url: Option<url::Url>,

    /// How often the built-in rules are evaluated.
    #[arg(long, env = "PERCH_ALERT_EVALUATION_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub alert_evaluation_interval: Duration,

    /// How long Alertmanager waits to gather a new group's alerts before the first
    /// notification.
    #[arg(long, env = "PERCH_ALERT_GROUP_WAIT", default_value = "30s", value_parser = parse_duration)]
    pub alert_group_wait: Duration,

    /// How long Alertmanager waits before notifying about new alerts in a group it has
    /// already notified about (resolutions included).
    #[arg(long, env = "PERCH_ALERT_GROUP_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub alert_group_interval: Duration,

    /// How long before a notification that is still firing is sent again.
    #[arg(long, env = "PERCH_ALERT_REPEAT_INTERVAL", default_value = "4h", value_parser = parse_duration)]
    pub alert_repeat_interval: Duration,

    /// How often Perch's own metrics (/metrics) are written into the metrics engine, as the
    /// node perch-server, for rules and dashboards.
    #[arg(long, env = "PERCH_SELF_SCRAPE_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub self_scrape_interval: Duration,
}
