//! `add exporter`, `remove` and `list`: the exporters the agent scrapes, kept in the config
//! file. The running agent notices a changed config at its next round.

use std::path::Path;

use serde_json::json;

use super::{Failure, Output};
use crate::agent::state::{AgentState, TargetHealth};
use crate::cli::AddExporterArgs;
use crate::config::{AgentConfig, Exporter};
use perch_time::unix_now;

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

pub fn remove(name: &str, path: &Path) -> Result<Output, Failure> {
    let mut config = AgentConfig::load(path)?;
    let before = config.exporters.len();
    config.exporters.retain(|e| e.name != name);
    if config.exporters.len() == before {
        return Err(Failure::usage(format!(
            "no exporter named {name}; `perch-admin list` shows them"
        )));
    }
    config.save(path)?;
    Ok(Output::new(
        format!("Removed exporter {name}."),
        json!({"removed": name}),
    ))
}

pub fn list(path: &Path) -> Result<Output, Failure> {
    let config = AgentConfig::load(path)?;
    let state = AgentState::read(&AgentConfig::state_path(path));
    let now = unix_now();
    let running = state.as_ref().is_some_and(|s| s.running(now));
    let health = |name: &str| -> Option<&TargetHealth> {
        state
            .as_ref()
            .filter(|_| running)
            .and_then(|s| s.targets.iter().find(|t| t.name == name))
    };
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
    if !running {
        text.push_str("Agent: NOT RUNNING, so no health is known (start it: systemctl start perch-agent, or perch-admin agent)\n");
    }
    text.push_str("Collectors:\n  node (built in: /proc and statvfs)\n");
    let mut exporters = Vec::new();
    for e in &config.exporters {
        let h = health(&e.name);
        text.push_str(&format!(
            "  {} {} every {} s: {}\n",
            e.name,
            e.url,
            e.interval_s,
            describe(h, now)
        ));
        exporters
            .push(json!({"name": e.name, "url": e.url, "interval_s": e.interval_s, "health": h}));
    }
    let mut services = Vec::new();
    if !config.services.is_empty() {
        text.push_str("Services:\n");
    }
    for s in &config.services {
        let h = health(&s.name);
        let version = h
            .and_then(|h| h.version.as_deref())
            .map(|v| format!(" {v}"))
            .unwrap_or_default();
        let labels: Vec<String> = s
            .labels()
            .into_iter()
            .skip(2)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        text.push_str(&format!(
            "  {} {}{version} at {} as {}, every {} s{}: {}\n",
            s.name,
            s.kind.title(),
            s.address(),
            s.username,
            s.interval_s,
            if labels.is_empty() {
                String::new()
            } else {
                format!(" [{}]", labels.join(", "))
            },
            describe(h, now)
        ));
        services.push(json!({
            "name": s.name,
            "type": s.kind.as_str(),
            "address": s.address(),
            "username": s.username,
            "interval_s": s.interval_s,
            "labels": s.labels().into_iter().collect::<std::collections::BTreeMap<_, _>>(),
            "health": h,
        }));
    }
    Ok(Output::new(
        text.trim_end().to_owned(),
        json!({
            "node_id": config.node_id,
            "node_name": config.node_name,
            "server": config.server,
            "interval_s": config.interval_s,
            "labels": config.labels,
            "agent_running": running,
            "exporters": exporters,
            "services": services,
        }),
    ))
}

/// `UP since 12:00:01 (5 m)` or `DOWN since ...: why`, from the agent's last report.
pub fn describe(h: Option<&TargetHealth>, now: i64) -> String {
    let Some(h) = h else {
        return "not scraped yet".to_owned();
    };
    let since = format!(
        "since {} ({} ago)",
        perch_time::rfc3339(h.since),
        perch_time::format_duration_s((now - h.since).max(0).unsigned_abs())
    );
    match (&h.up, &h.error) {
        (true, _) => format!("UP {since}"),
        (false, Some(e)) => format!("DOWN {since}: {e}"),
        (false, None) => format!("DOWN {since}"),
    }
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
