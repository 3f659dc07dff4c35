//! The command line: every flag's doc string is its `--help` text.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

pub const EXIT_CODES: &str = "Exit codes: 0 success; 1 the server could not be reached or \
answered with an error; 2 bad usage or an unusable config file; 3 the server's certificate \
is not trusted, or its pinned key changed; 4 the credentials or the node token were refused \
(token revoked, node deleted); 5 status found a problem (details in its output).";

/// perch-admin: enroll this machine with a Perch server and ship its metrics.
///
/// `PERCH_ENROLL_TOKEN=TOKEN perch-admin config --server HOST --server-ssl` enrolls it (the
/// server's Add node page shows the whole command; the token goes in the environment,
/// where other users of the machine cannot read it), then `perch-admin agent` (or the
/// perch-agent systemd unit) collects and pushes its metrics every interval.
#[derive(Debug, Parser)]
#[command(name = "perch-admin", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// The agent's config file [default: /etc/perch/agent.toml as root,
    /// ~/.config/perch/agent.toml otherwise].
    #[arg(long, global = true, env = "PERCH_AGENT_CONFIG")]
    pub config: Option<PathBuf>,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enroll this machine with the server and write the agent's config file (mode 0600).
    Config(Box<ConfigArgs>),
    /// Check the server connection, certificate, pin, node token and the agent.
    Status,
    /// Show this node, its services and exporters, each with its health.
    List,
    /// Add something for the agent to collect.
    #[command(subcommand)]
    Add(Box<AddCommand>),
    /// Stop watching a service (`remove mysql NAME`, `remove postgresql NAME`) or an exporter
    /// (`remove exporter NAME`, or `remove NAME`).
    Remove(RemoveArgs),
    /// Delete this node on the server (its token stops working) and remove the local config.
    Unregister(UnregisterArgs),
    /// Run the agent in the foreground: collect and push metrics every interval.
    Agent(AgentArgs),
    /// Write one archive of what support needs (versions, status, the config without its
    /// token, the agent's state, buffer and recent log lines), safe to attach to a report.
    Summary(SummaryArgs),
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The server, HOST or HOST:PORT (default port 443).
    #[arg(
        long,
        conflicts_with = "server_url",
        required_unless_present = "server_url"
    )]
    pub server: Option<String>,

    /// PMM 2 spelling of --server: https://HOST:PORT (user:password@ in it are accepted,
    /// with a warning).
    #[arg(long)]
    pub server_url: Option<String>,

    /// Verify the server's certificate chain and host name against the system's CA
    /// certificates plus --ca-file (the default).
    #[arg(long, conflicts_with = "server_insecure_ssl")]
    pub server_ssl: bool,

    /// Do not verify the certificate chain (a self-signed server). The server's public key
    /// is printed and pinned: later connections must present the same key.
    #[arg(long, visible_alias = "server-insecure-tls")]
    pub server_insecure_ssl: bool,

    /// With --server-insecure-ssl: the server's public key fingerprint (SHA-256, as the Add
    /// node page shows it). The first connection must present it, so credentials never go to
    /// another server; without it the key is learned on first use.
    #[arg(long, requires = "server_insecure_ssl")]
    pub server_fingerprint: Option<String>,

    /// Also trust the CA certificates in this PEM file (e.g. the server's ca-certs.pem).
    #[arg(long, conflicts_with = "server_insecure_ssl")]
    pub ca_file: Option<PathBuf>,

    /// A single-use enrollment token from the server's Add node page. Prefer the
    /// variable PERCH_ENROLL_TOKEN: other users of the machine can read a command line.
    #[arg(long, env = "PERCH_ENROLL_TOKEN", hide_env_values = true)]
    pub enroll_token: Option<String>,

    /// Enroll with this Editor or Admin user instead of a token (password from
    /// --server-password-file, PERCH_SERVER_PASSWORD, or a prompt).
    #[arg(long, conflicts_with = "enroll_token")]
    pub server_user: Option<String>,

    /// File holding the user's password.
    #[arg(long)]
    pub server_password_file: Option<PathBuf>,

    /// The user's password (accepted for PMM habits; other users can read it in the process
    /// list: prefer --server-password-file).
    #[arg(long, hide_env_values = true)]
    pub server_password: Option<String>,

    /// The node's name [default: this machine's host name].
    #[arg(long)]
    pub node_name: Option<String>,

    /// The node's address, for display.
    #[arg(long, default_value = "")]
    pub node_address: String,

    /// Labels added to every series of this node: k=v,k=v.
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,

    /// Replace an existing config and a node of the same name on the server, and pin a
    /// changed server key.
    #[arg(long)]
    pub force: bool,

    /// How often the agent collects and pushes, e.g. 15s.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub interval: Duration,

    /// Most disk the agent's buffer of unsent batches may use, in MiB; the oldest batches
    /// are dropped (and counted) beyond it.
    #[arg(long, default_value_t = 512)]
    pub max_buffer_mib: u64,
}

#[derive(Debug, Subcommand)]
pub enum AddCommand {
    /// Scrape a Prometheus exporter (text format 0.0.4 or OpenMetrics) every interval.
    Exporter(AddExporterArgs),
    /// Watch a MySQL or MariaDB server: the agent runs Debian's prometheus-mysqld-exporter
    /// for it on a loopback port. The server is asked once first; a refusal is reported in
    /// its own words.
    Mysql(AddServiceArgs),
    /// Watch a PostgreSQL server: the agent runs Debian's prometheus-postgres-exporter for
    /// it on a loopback port. The server is asked once first; a refusal is reported in its
    /// own words.
    Postgresql(AddServiceArgs),
}

/// `add mysql` and `add postgresql`, with pmm-admin's flag names.
#[derive(Debug, Args)]
pub struct AddServiceArgs {
    /// The service's name [default: <node name>-mysql or <node name>-postgresql].
    pub name: Option<String>,

    /// The server's address, HOST:PORT [default: 127.0.0.1:3306 or 127.0.0.1:5432].
    pub address: Option<String>,

    /// The service's name (the same as NAME).
    #[arg(long, conflicts_with = "name")]
    pub service_name: Option<String>,

    /// The server's host name or address.
    #[arg(long, conflicts_with = "address")]
    pub host: Option<String>,

    /// The server's port.
    #[arg(long, conflicts_with = "address")]
    pub port: Option<u16>,

    /// Connect through this Unix socket instead (PostgreSQL: its folder or the socket).
    #[arg(long, conflicts_with_all = ["address", "host"])]
    pub socket: Option<PathBuf>,

    /// The database user [default: root for MySQL, postgres for PostgreSQL]. Give it only
    /// what monitoring needs: the README's Databases section has the GRANTs.
    #[arg(long)]
    pub username: Option<String>,

    /// The user's password (accepted for PMM habits; other users can read it in the process
    /// list: prefer --password-file or the variable PERCH_DB_PASSWORD).
    #[arg(long)]
    pub password: Option<String>,

    /// File holding the user's password.
    #[arg(long, conflicts_with = "password")]
    pub password_file: Option<PathBuf>,

    /// PostgreSQL: the database to connect to [default: postgres].
    #[arg(long)]
    pub database: Option<String>,

    /// The environment label (prod, staging, ...).
    #[arg(long)]
    pub environment: Option<String>,

    /// The cluster label.
    #[arg(long)]
    pub cluster: Option<String>,

    /// The replication set label.
    #[arg(long)]
    pub replication_set: Option<String>,

    /// More labels for every series of the service: k=v,k=v.
    #[arg(long, value_delimiter = ',')]
    pub custom_labels: Vec<String>,

    /// Connect with TLS, verifying the server's certificate against the system's CAs or
    /// --tls-ca.
    #[arg(long)]
    pub tls: bool,

    /// With TLS, do not verify the server's certificate.
    #[arg(long)]
    pub tls_skip_verify: bool,

    /// The CA certificate that signed the server's certificate (PEM).
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,

    /// A client certificate (PEM).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The client certificate's key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// How often to scrape it, e.g. 15s [default: the agent's interval].
    #[arg(long, value_parser = parse_duration)]
    pub interval: Option<Duration>,

    /// Save it without asking the server first (it may not be running yet).
    #[arg(long)]
    pub skip_connection_check: bool,

    /// Query Analytics' source: perfschema (MySQL), pgstatements (PostgreSQL), or none
    /// [default: the service's own, on when the database offers it].
    #[arg(long, value_parser = ["perfschema", "pgstatements", "none"])]
    pub query_source: Option<String>,

    /// Keep example statements (which hold real values) off the server; only normalised
    /// texts are sent.
    #[arg(long)]
    pub disable_queryexamples: bool,

    /// Query Analytics: how many fingerprints to send each interval, the busiest by time;
    /// the rest are summed into one "other" row.
    #[arg(long, default_value_t = crate::config::DEFAULT_QAN_TOP,
          value_parser = clap::builder::TypedValueParser::map(
              clap::value_parser!(u64).range(1..=10_000), |v| v as usize))]
    pub qan_top: usize,
}

#[derive(Debug, Args)]
pub struct AddExporterArgs {
    /// A name for it: becomes the `job` label.
    pub name: String,

    /// Its metrics URL, e.g. http://127.0.0.1:9100/metrics.
    #[arg(long)]
    pub url: String,

    /// How often to scrape it, e.g. 15s [default: the agent's interval].
    #[arg(long, value_parser = parse_duration)]
    pub interval: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// `mysql`, `postgresql` or `exporter` followed by the name; or an exporter's name.
    #[arg(value_name = "KIND|NAME")]
    pub first: String,

    /// The name, after a kind.
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct UnregisterArgs {
    /// Remove the local config even if the server cannot be told.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Where to write the archive (a new file, mode 0600) [default:
    /// perch-admin-summary-<host>-<time>.tar in the current folder].
    #[arg(long)]
    pub filename: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Where the proc file system is (the host's /proc mounted into a container).
    #[arg(long, env = "PERCH_PROC_PATH", default_value = "/proc")]
    pub proc_path: PathBuf,

    /// Where the host's root file system is (file system sizes are read below it).
    #[arg(long, env = "PERCH_ROOT_PATH", default_value = "/")]
    pub root_path: PathBuf,
}

/// An interval: `250ms`, `10s`, `5m`, `1h`, or plain seconds, from 1 s to 1 h.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = perch_time::parse_duration(s).map_err(|e| e.to_string())?;
    if d < Duration::from_secs(1) || d > Duration::from_secs(3600) {
        return Err(format!("'{}': choose from 1s to 1h", s.trim()));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn pmm_spellings_parse() {
        let cli = Cli::try_parse_from([
            "perch-admin",
            "config",
            "--server-url",
            "https://pmm.example:8443",
            "--server-insecure-tls",
            "--enroll-token",
            "t",
        ])
        .unwrap();
        let Command::Config(c) = cli.command else {
            panic!("config")
        };
        assert!(c.server_insecure_ssl);
        assert!(
            Cli::try_parse_from([
                "perch-admin",
                "config",
                "--server",
                "h",
                "--server-ssl",
                "--server-insecure-ssl"
            ])
            .is_err(),
            "one trust mode"
        );
    }
}
