//! `add exporter`, `remove` and `list`: the exporters the agent scrapes, kept in the config
//! file. The running agent notices a changed config at its next round.

use std::path::Path;

use serde_json::json;

use super::{Failure, Output};
use crate::cli::{AddExporterArgs, RemoveArgs};
use crate::config::{AgentConfig, Exporter};

fn check_name(name: &str) -> Result<(), Failure> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok && name != "node" && name != "perch_agent" {
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "exporter name {name:?}: use 1 to 64 letters, digits, '_', '-' or '.' (\"node\" and \"perch_agent\" are the agent's own)"
        )))
    }
}

fn check_url(raw: &str) -> Result<String, Failure> {
    let url = url::Url::parse(raw).map_err(|e| {
        Failure::usage(format!(
            "--url {raw:?}: {e}; e.g. http://127.0.0.1:9100/metrics"
        ))
    })?;
    if url.scheme() != "http" || url.host().is_none() {
        return Err(Failure::usage(format!(
            "--url {raw:?}: the agent scrapes plain http:// exporters on this machine or its network, e.g. http://127.0.0.1:9100/metrics"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Failure::usage(format!(
            "--url {raw:?}: credentials in exporter URLs are not supported"
        )));
    }
    Ok(url.to_string())
}

pub fn add(args: AddExporterArgs, path: &Path) -> Result<Output, Failure> {
    check_name(&args.name)?;
    let url = check_url(&args.url)?;
    let mut config = AgentConfig::load(path)?;
    if config.exporters.iter().any(|e| e.name == args.name) {
        return Err(Failure::usage(format!(
            "an exporter named {} exists; remove it first (`perch-admin remove {}`)",
            args.name, args.name
        )));
    }
    let interval_s = args.interval.map_or(config.interval_s, |d| d.as_secs());
    config.exporters.push(Exporter {
        name: args.name.clone(),
        url: url.clone(),
        interval_s,
    });
    config.save(path)?;
    Ok(Output::new(
        format!(
            "Added exporter {} ({url}, every {interval_s} s); the agent starts scraping it at its next round.",
            args.name
        ),
        json!({"name": args.name, "url": url, "interval_s": interval_s}),
    ))
}

pub fn remove(args: RemoveArgs, path: &Path) -> Result<Output, Failure> {
    let mut config = AgentConfig::load(path)?;
    let before = config.exporters.len();
    config.exporters.retain(|e| e.name != args.name);
    if config.exporters.len() == before {
        return Err(Failure::usage(format!(
            "no exporter named {}; `perch-admin list` shows them",
            args.name
        )));
    }
    config.save(path)?;
    Ok(Output::new(
        format!("Removed exporter {}.", args.name),
        json!({"removed": args.name}),
    ))
}

pub fn list(path: &Path) -> Result<Output, Failure> {
    let config = AgentConfig::load(path)?;
    let mut text = format!(
        "Node {} (node_id {}) on {}, every {} s\n",
        config.node_name, config.node_id, config.server, config.interval_s
    );
    if !config.labels.is_empty() {
        let labels: Vec<String> = config
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        text.push_str(&format!("Labels: {}\n", labels.join(", ")));
    }
    text.push_str("Collectors:\n  node (built in: /proc and statvfs)\n");
    for e in &config.exporters {
        text.push_str(&format!(
            "  {} {} every {} s\n",
            e.name, e.url, e.interval_s
        ));
    }
    Ok(Output::new(
        text.trim_end().to_owned(),
        json!({
            "node_id": config.node_id,
            "node_name": config.node_name,
            "server": config.server,
            "interval_s": config.interval_s,
            "labels": config.labels,
            "exporters": config.exporters,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_urls_are_checked() {
        assert!(check_name("mysqld_exporter-1").is_ok());
        assert!(check_name("node").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_url("http://127.0.0.1:9100/metrics").is_ok());
        assert!(check_url("ftp://x/").is_err());
        assert!(check_url("http://u:p@x/").is_err());
        assert!(check_url("not a url").is_err());
    }
}
