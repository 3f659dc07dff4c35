//! `add mysql`, `add postgresql` and `remove`: the database services the agent watches,
//! kept in the config file. `add` asks the server once first, through the very exporter
//! the agent will run.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use super::{Failure, Output, exporters};
use crate::cli::{AddServiceArgs, RemoveArgs};
use crate::config::{AgentConfig, QuerySource, Service, ServiceType, valid_service_name};
use crate::services::probe::{ProbeError, probe};
use crate::services::{ServiceError, find_exporter, launch};

/// The variable `add` reads a database password from.
pub const PASSWORD_ENV: &str = "PERCH_DB_PASSWORD";

fn password(args: &AddServiceArgs) -> Result<String, Failure> {
    if let Some(p) = &args.password {
        eprintln!(
            "perch-admin: warning: --password is visible to other users of this machine in the process list; prefer --password-file or {PASSWORD_ENV}"
        );
        return Ok(p.clone());
    }
    if let Some(file) = &args.password_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Failure::usage(format!("--password-file {}: {e}", file.display())))?;
        return Ok(text.trim_end_matches(['\n', '\r']).to_owned());
    }
    Ok(std::env::var(PASSWORD_ENV).unwrap_or_default())
}

/// `HOST:PORT` (or `[v6]:PORT`, or only `HOST`).
fn split_address(address: &str) -> Result<(String, Option<u16>), Failure> {
    let bad = || {
        Failure::usage(format!(
            "address {address:?}: give HOST:PORT, e.g. 127.0.0.1:3306 or db.example:5432"
        ))
    };
    if let Some(rest) = address.strip_prefix('[') {
        let (host, tail) = rest.split_once(']').ok_or_else(bad)?;
        let port = match tail.strip_prefix(':') {
            Some(p) => Some(p.parse().map_err(|_| bad())?),
            None if tail.is_empty() => None,
            None => return Err(bad()),
        };
        return Ok((host.to_owned(), port));
    }
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(':') => {
            Ok((host.to_owned(), Some(port.parse().map_err(|_| bad())?)))
        }
        None if !address.is_empty() => Ok((address.to_owned(), None)),
        _ => Err(bad()),
    }
}

fn labels(list: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    let mut out = BTreeMap::new();
    for item in list.iter().filter(|i| !i.trim().is_empty()) {
        let (k, v) = item.split_once('=').ok_or_else(|| {
            Failure::usage(format!(
                "--custom-labels {item:?}: give key=value,key=value"
            ))
        })?;
        let k = k.trim();
        let valid = !k.is_empty()
            && !k.starts_with("__")
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !k.starts_with(|c: char| c.is_ascii_digit());
        let reserved = [
            "job",
            "instance",
            "node_id",
            "node_name",
            "service_name",
            "service_type",
            "environment",
            "cluster",
            "replication_set",
        ];
        if !valid || reserved.contains(&k) {
            return Err(Failure::usage(format!(
                "--custom-labels: {k:?} cannot be a label name here (letters, digits and '_'; not {})",
                reserved.join(", ")
            )));
        }
        out.insert(k.to_owned(), v.trim().to_owned());
    }
    Ok(out)
}

/// The service `args` describe, checked.
fn service_of(
    kind: ServiceType,
    args: &AddServiceArgs,
    config: &AgentConfig,
) -> Result<Service, Failure> {
    let name = args
        .service_name
        .clone()
        .or_else(|| args.name.clone())
        .unwrap_or_else(|| format!("{}-{}", config.node_name, kind.as_str()));
    if !valid_service_name(&name) {
        return Err(Failure::usage(format!(
            "service name {name:?}: use 1 to 64 letters, digits, '_', '-' or '.'"
        )));
    }
    let (host, port) = match &args.address {
        Some(a) => {
            let (h, p) = split_address(a)?;
            (Some(h), p)
        }
        None => (args.host.clone(), args.port),
    };
    if kind == ServiceType::Mysql && args.database.is_some() {
        return Err(Failure::usage(
            "--database is for PostgreSQL; the MySQL exporter reads every schema",
        ));
    }
    for (flag, file) in [
        ("--tls-ca", &args.tls_ca),
        ("--tls-cert", &args.tls_cert),
        ("--tls-key", &args.tls_key),
    ] {
        if let Some(f) = file.as_ref().filter(|f| !f.is_file()) {
            return Err(Failure::usage(format!(
                "{flag} {}: no such file",
                f.display()
            )));
        }
    }
    let query_source = match args.query_source.as_deref() {
        None => Some(QuerySource::of(kind)),
        Some("none") => None,
        Some(named) => {
            let own = QuerySource::of(kind);
            if named != own.as_str() {
                return Err(Failure::usage(format!(
                    "--query-source {named} is not for {}: use {} or none",
                    kind.title(),
                    own.as_str()
                )));
            }
            Some(own)
        }
    };
    let default_user = match kind {
        ServiceType::Mysql => "root",
        ServiceType::Postgresql => "postgres",
    };
    let nonempty = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
    let service = Service {
        name,
        kind,
        host,
        port,
        socket: args.socket.clone(),
        username: args
            .username
            .clone()
            .unwrap_or_else(|| default_user.to_owned()),
        password: password(args)?,
        database: nonempty(&args.database),
        environment: nonempty(&args.environment),
        cluster: nonempty(&args.cluster),
        replication_set: nonempty(&args.replication_set),
        custom_labels: labels(&args.custom_labels)?,
        tls: args.tls || args.tls_skip_verify || args.tls_ca.is_some(),
        tls_skip_verify: args.tls_skip_verify,
        tls_ca: args.tls_ca.clone(),
        tls_cert: args.tls_cert.clone(),
        tls_key: args.tls_key.clone(),
        interval_s: args.interval.map_or(config.interval_s, |d| d.as_secs()),
        query_source,
        disable_query_examples: args.disable_queryexamples,
        qan_top: args.qan_top,
    };
    // The labels go with every Query Analytics report: the server's limits are checked
    // here, so that it never refuses the service's reports later.
    let own: Vec<(String, String)> = service.own_labels().collect();
    let own = own.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    if let Some(problem) = perch_qan::service_labels_problem(own) {
        return Err(Failure::usage(format!(
            "the service's labels (--environment, --cluster, --replication-set, --custom-labels): {problem}"
        )));
    }
    Ok(service)
}

fn service_failure(e: ServiceError) -> Failure {
    match e {
        ServiceError::NoExporter { .. } => Failure::usage(e.to_string()),
        _ => Failure::runtime(e.to_string()),
    }
}

pub async fn add(kind: ServiceType, args: AddServiceArgs, path: &Path) -> Result<Output, Failure> {
    let mut config = AgentConfig::load(path)?;
    let service = service_of(kind, &args, &config)?;
    if config.services.iter().any(|s| s.name == service.name) {
        return Err(Failure::usage(format!(
            "a service named {} exists; remove it first (`perch-admin remove {} {}`) or choose another name",
            service.name,
            config
                .services
                .iter()
                .find(|s| s.name == service.name)
                .map_or(kind.as_str(), |s| s.kind.as_str()),
            service.name
        )));
    }
    find_exporter(kind).map_err(service_failure)?;
    let dir = AgentConfig::services_dir(path);
    let mut lines = Vec::new();
    let mut facts = json!({});
    if args.skip_connection_check {
        lines.push("Not checked: --skip-connection-check.".to_owned());
    } else {
        match probe(&service, &dir).await {
            Ok(p) => {
                lines.push(format!(
                    "Connected to {} {} at {}.",
                    kind.title(),
                    p.version.as_deref().unwrap_or("(version unknown)"),
                    service.address()
                ));
                if let Some(grant) = &p.grant {
                    lines.push(format!(
                        "Warning: the user {} lacks privileges some metrics need ({}). Run on the server:\n  {grant}",
                        service.username,
                        p.collector_errors.first().map_or("pg_monitor", String::as_str)
                    ));
                }
                facts = json!({"version": p.version, "grant": p.grant, "collector_errors": p.collector_errors});
            }
            Err(e) => {
                launch::remove_files(&dir, &service.name);
                return Err(match e {
                    ProbeError::Service(e) => service_failure(e),
                    ProbeError::Refused(reason) => Failure::runtime(format!(
                        "{} at {} refused the connection as {}: {reason}\nNothing was added. Check the address and credentials (or add --skip-connection-check to save it anyway).",
                        kind.title(),
                        service.address(),
                        service.username
                    )),
                });
            }
        }
    }
    if let Some(source) = service.query_source {
        let source = source.as_str();
        if args.skip_connection_check {
            lines.push(format!("Query Analytics: on ({source}), not checked."));
        } else {
            match crate::qan::check(&service).await {
                Ok(notes) => {
                    lines.push(format!(
                        "Query Analytics: on ({source}){}.",
                        if service.disable_query_examples {
                            ", without examples"
                        } else {
                            ""
                        }
                    ));
                    for n in &notes {
                        lines.push(format!("Note: {n}"));
                    }
                    facts["qan_notes"] = json!(notes);
                }
                Err(e) if args.query_source.is_some() => {
                    launch::remove_files(&dir, &service.name);
                    return Err(Failure::runtime(format!(
                        "Query Analytics cannot read {source}: {e}\nNothing was added. Enable it as said, or add --query-source=none to add the service without Query Analytics."
                    )));
                }
                Err(e) => {
                    lines.push(format!(
                        "Warning: Query Analytics is on ({source}) but cannot read yet: {e}\nThe agent starts reading as soon as it can; --query-source=none turns it off."
                    ));
                    facts["qan_error"] = json!(e.to_string());
                }
            }
        }
    }
    facts["query_source"] = json!(service.query_source.map(QuerySource::as_str));
    let address = service.address();
    let name = service.name.clone();
    let labels = service.labels();
    let interval_s = service.interval_s;
    config.services.push(service);
    config.save(path)?;
    lines.push(format!(
        "Added {} service {name} ({address}, every {interval_s} s); the agent starts its exporter at its next round.",
        kind.title()
    ));
    facts["name"] = json!(name);
    facts["type"] = json!(kind.as_str());
    facts["address"] = json!(address);
    facts["interval_s"] = json!(interval_s);
    facts["labels"] = json!(labels.into_iter().collect::<BTreeMap<_, _>>());
    Ok(Output::new(lines.join("\n"), facts))
}

/// `remove mysql NAME`, `remove postgresql NAME`, `remove exporter NAME`, `remove NAME`.
pub fn remove(args: RemoveArgs, path: &Path) -> Result<Output, Failure> {
    let kind = match (args.first.as_str(), &args.name) {
        ("exporter", Some(name)) => return exporters::remove(name, path),
        ("mysql", Some(_)) => ServiceType::Mysql,
        ("postgresql", Some(_)) => ServiceType::Postgresql,
        (other, Some(_)) => {
            return Err(Failure::usage(format!(
                "remove {other:?}: say mysql, postgresql or exporter, then the name"
            )));
        }
        (name, None) => return exporters::remove(name, path),
    };
    let name = args.name.unwrap_or_default();
    let mut config = AgentConfig::load(path)?;
    let Some(at) = config
        .services
        .iter()
        .position(|s| s.name == name && s.kind == kind)
    else {
        return Err(Failure::usage(format!(
            "no {} service named {name}; `perch-admin list` shows them",
            kind.title()
        )));
    };
    config.services.remove(at);
    config.save(path)?;
    launch::remove_files(&AgentConfig::services_dir(path), &name);
    Ok(Output::new(
        format!(
            "Removed {} service {name}; the agent stops its exporter at its next round.",
            kind.title()
        ),
        json!({"removed": name, "type": kind.as_str()}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(split_address("db:3307").unwrap(), ("db".into(), Some(3307)));
        assert_eq!(split_address("db").unwrap(), ("db".into(), None));
        assert_eq!(
            split_address("[::1]:5432").unwrap(),
            ("::1".into(), Some(5432))
        );
        assert!(split_address("db:port").is_err());
        assert!(split_address(":5432").is_err());
    }

    #[test]
    fn custom_labels_are_checked() {
        let ok = labels(&["team=db".into(), " tier = gold ".into()]).unwrap();
        assert_eq!(ok["team"], "db");
        assert_eq!(ok["tier"], "gold");
        assert!(labels(&["job=x".into()]).is_err());
        assert!(labels(&["no-equals".into()]).is_err());
        assert!(labels(&["bad-name=x".into()]).is_err());
    }
}
