//! The command that runs a service's exporter on a loopback port. Credentials go in a 0600
//! file (MySQL's `my.cnf`) or the exporter's environment (PostgreSQL's
//! `DATA_SOURCE_NAME`), never on its command line, where every user of the machine can
//! read them; the environment is otherwise cleared.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use super::{ServiceError, find_exporter};
use crate::config::{Service, ServiceType};

/// How to start one exporter.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The whole environment it gets.
    pub env: Vec<(String, String)>,
    /// What must never be printed: the password, raw and percent-encoded.
    pub secrets: Vec<String>,
}

/// An exporter's arguments and environment.
type ArgsAndEnv = (Vec<String>, Vec<(String, String)>);

/// PostgreSQL queries beside the exporter's defaults: when the server started, how far a
/// replica is behind, and whether the user may read every statistic (pg_monitor).
const PG_QUERIES: &str = r#"# Written by perch-admin: queries the PostgreSQL overview needs beyond the defaults.
pg_postmaster:
  query: "SELECT extract(epoch from pg_postmaster_start_time()) AS start_time_seconds"
  master: true
  metrics:
    - start_time_seconds:
        usage: "GAUGE"
        description: "When the server started, in Unix seconds"
pg_replication:
  query: "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0 ELSE GREATEST(0, EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp()))) END AS lag"
  master: true
  metrics:
    - lag:
        usage: "GAUGE"
        description: "How far this replica's replay is behind, in seconds (0 on a primary)"
perch_pg:
  query: "SELECT pg_has_role(current_user, 'pg_monitor', 'MEMBER')::int AS monitor"
  master: true
  metrics:
    - monitor:
        usage: "GAUGE"
        description: "1 when the exporter's user is a member of pg_monitor"
"#;

/// Writes `text` to `path` with mode 0600, atomically.
fn write_private(path: &Path, text: &str) -> Result<(), ServiceError> {
    crate::config::write_private(path, text.as_bytes()).map_err(|error| ServiceError::Write {
        path: path.to_owned(),
        error,
    })
}

/// Creates `dir` with mode 0700 (or tightens it).
pub fn private_dir(dir: &Path) -> Result<(), ServiceError> {
    let err = |error| ServiceError::Write {
        path: dir.to_owned(),
        error,
    };
    crate::config::create_private_dir(dir).map_err(err)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)
}

/// A value of the exporter's `my.cnf`, quoted as its INI reader takes a value whole (`#`,
/// `;`, spaces and quotes inside): in backticks, or in triple double quotes.
fn cnf_value(what: &str, v: &str) -> Result<String, ServiceError> {
    if v.contains(['\n', '\r']) {
        return Err(ServiceError::Unusable(format!(
            "the {what} holds a line break, which a my.cnf file cannot carry"
        )));
    }
    if !v.contains('`') {
        Ok(format!("`{v}`"))
    } else if !v.contains("\"\"\"") && !v.ends_with('"') {
        Ok(format!("\"\"\"{v}\"\"\""))
    } else {
        Err(ServiceError::Unusable(format!(
            "the {what} holds both ` and \"\"\" (or ends with \"), which the exporter's my.cnf cannot carry; choose another"
        )))
    }
}

/// The same settings as the MySQL client reads an option file: double quotes, with `\`
/// escapes.
fn mysql_client_cnf(service: &Service) -> String {
    let q = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
    let mut cnf = format!("[client]\nuser={}\n", q(&service.username));
    if !service.password.is_empty() {
        cnf.push_str(&format!("password={}\n", q(&service.password)));
    }
    match &service.socket {
        Some(socket) => cnf.push_str(&format!("socket={}\n", q(&socket.display().to_string()))),
        None => cnf.push_str(&format!(
            "host={}\nport={}\n",
            q(service.host.as_deref().unwrap_or("127.0.0.1")),
            service.port.unwrap_or(ServiceType::Mysql.default_port())
        )),
    }
    cnf
}

/// Writes [`mysql_client_cnf`] to `path` (0600).
pub fn write_client_cnf(service: &Service, path: &Path) -> Result<(), ServiceError> {
    write_private(path, &mysql_client_cnf(service))
}

fn path_text(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| p.to_owned())
        .display()
        .to_string()
}

fn mysql(service: &Service, dir: &Path, listen: &str) -> Result<ArgsAndEnv, ServiceError> {
    let mut args = vec![format!("--web.listen-address={listen}")];
    if service.tls_skip_verify {
        args.push("--tls.insecure-skip-verify".into());
    }
    let files = [
        ("ssl-ca", &service.tls_ca),
        ("ssl-cert", &service.tls_cert),
        ("ssl-key", &service.tls_key),
    ];
    let has_files = files.iter().any(|(_, f)| f.is_some());
    // The exporter's my.cnf takes any password but needs one, and gives TLS only with
    // certificate files; otherwise its data source name, in its environment.
    if service.password.is_empty() || (service.tls && !has_files) {
        if service.password.contains('/') {
            return Err(ServiceError::Unusable(
                "a password with '/' needs --tls-ca (or no --tls) for the MySQL exporter".into(),
            ));
        }
        let auth = if service.password.is_empty() {
            service.username.clone()
        } else {
            format!("{}:{}", service.username, service.password)
        };
        let net = match &service.socket {
            Some(socket) => format!("unix({})", socket.display()),
            None => format!("tcp({})", service.address()),
        };
        let tls = match (service.tls, service.tls_skip_verify) {
            (_, true) => "?tls=skip-verify",
            (true, false) => "?tls=true",
            (false, false) => "",
        };
        let dsn = format!("{auth}@{net}/{tls}");
        return Ok((args, vec![("DATA_SOURCE_NAME".to_owned(), dsn)]));
    }
    let mut cnf = String::from(
        "# Written by perch-admin for the MySQL exporter. It holds a password: mode 0600.\n[client]\n",
    );
    cnf.push_str(&format!(
        "user={}\n",
        cnf_value("user name", &service.username)?
    ));
    cnf.push_str(&format!(
        "password={}\n",
        cnf_value("password", &service.password)?
    ));
    match &service.socket {
        Some(socket) => cnf.push_str(&format!("socket={}\n", socket.display())),
        None => {
            cnf.push_str(&format!(
                "host={}\nport={}\n",
                service.host.as_deref().unwrap_or("127.0.0.1"),
                service.port.unwrap_or(ServiceType::Mysql.default_port())
            ));
        }
    }
    for (key, file) in files {
        if let Some(f) = file {
            cnf.push_str(&format!("{key}={}\n", path_text(f)));
        }
    }
    let file = dir.join(format!("{}.my.cnf", service.name));
    write_private(&file, &cnf)?;
    args.insert(0, format!("--config.my-cnf={}", file.display()));
    Ok((args, Vec::new()))
}

/// A PostgreSQL socket is named by its directory; `.s.PGSQL.<port>` in it is the socket.
pub fn pg_socket(socket: &Path, port: Option<u16>) -> (String, u16) {
    let name = socket.file_name().and_then(|n| n.to_str()).unwrap_or("");
    match name.strip_prefix(".s.PGSQL.").and_then(|p| p.parse().ok()) {
        Some(p) => (
            socket
                .parent()
                .unwrap_or(Path::new("/"))
                .display()
                .to_string(),
            p,
        ),
        None => (
            socket.display().to_string(),
            port.unwrap_or(ServiceType::Postgresql.default_port()),
        ),
    }
}

fn postgresql(service: &Service, dir: &Path, listen: &str) -> Result<ArgsAndEnv, ServiceError> {
    let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    let userinfo = if service.password.is_empty() {
        enc(&service.username)
    } else {
        format!("{}:{}", enc(&service.username), enc(&service.password))
    };
    let database = enc(service.database.as_deref().unwrap_or("postgres"));
    let mut query = vec![];
    let authority = match &service.socket {
        Some(socket) => {
            let (dir, port) = pg_socket(socket, service.port);
            query.push(format!("host={}", enc(&dir)));
            query.push(format!("port={port}"));
            String::new()
        }
        None => service.address(),
    };
    let sslmode = match (service.tls, service.tls_skip_verify, &service.tls_ca) {
        (false, false, None) => "disable",
        (_, true, _) => "require",
        (_, false, Some(_)) => "verify-full",
        (true, false, None) => "require",
    };
    query.push(format!("sslmode={sslmode}"));
    for (key, file) in [
        ("sslrootcert", &service.tls_ca),
        ("sslcert", &service.tls_cert),
        ("sslkey", &service.tls_key),
    ] {
        if let Some(f) = file {
            query.push(format!("{key}={}", enc(&path_text(f))));
        }
    }
    let dsn = format!(
        "postgresql://{userinfo}@{authority}/{database}?{}",
        query.join("&")
    );
    let queries = dir.join(format!("{}.queries.yaml", service.name));
    write_private(&queries, PG_QUERIES)?;
    let args = vec![
        format!("--web.listen-address={listen}"),
        format!("--extend.query-path={}", queries.display()),
    ];
    Ok((args, vec![("DATA_SOURCE_NAME".to_owned(), dsn)]))
}

/// Prepares `service`'s exporter to listen on `127.0.0.1:port`, its files in `dir`.
pub fn prepare(service: &Service, dir: &Path, port: u16) -> Result<Launch, ServiceError> {
    let program = find_exporter(service.kind)?;
    private_dir(dir)?;
    let listen = format!("127.0.0.1:{port}");
    let (args, mut env) = match service.kind {
        ServiceType::Mysql => mysql(service, dir, &listen)?,
        ServiceType::Postgresql => postgresql(service, dir, &listen)?,
    };
    env.push(("PATH".to_owned(), "/usr/local/bin:/usr/bin:/bin".to_owned()));
    let mut secrets = Vec::new();
    if !service.password.is_empty() {
        secrets.push(service.password.clone());
        let encoded = utf8_percent_encode(&service.password, NON_ALPHANUMERIC).to_string();
        if encoded != service.password {
            secrets.push(encoded);
        }
    }
    Ok(Launch {
        program,
        args,
        env,
        secrets,
    })
}

/// Removes the files `prepare` wrote for the service `name`.
pub fn remove_files(dir: &Path, name: &str) {
    for suffix in ["my.cnf", "client.cnf", "queries.yaml"] {
        let _ = std::fs::remove_file(dir.join(format!("{name}.{suffix}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cnf_values_are_quoted() {
        assert_eq!(cnf_value("p", "a#b c").unwrap(), "`a#b c`");
        assert_eq!(cnf_value("p", "a\"b`").unwrap(), "\"\"\"a\"b`\"\"\"");
        assert!(cnf_value("p", "a`b\"").is_err());
        assert!(cnf_value("p", "a\nb").is_err());
    }

    #[test]
    fn postgres_sockets_are_named_by_their_folder() {
        assert_eq!(
            pg_socket(Path::new("/run/postgresql/.s.PGSQL.5433"), None),
            ("/run/postgresql".to_owned(), 5433)
        );
        assert_eq!(
            pg_socket(Path::new("/run/postgresql"), Some(6000)),
            ("/run/postgresql".to_owned(), 6000)
        );
    }
}
