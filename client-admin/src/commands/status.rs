//! `perch-admin status`: is the server reachable, over which TLS, with which certificate;
//! does the pin match; is the node token still good; is the agent running and pushing.

use std::path::Path;

use http::Method;
use serde_json::json;

use super::{Failure, Output, server_of};
use crate::agent::state::AgentState;
use crate::config::{AgentConfig, Trust};
use perch_time::unix_now;

pub async fn run(path: &Path) -> Result<Output, Failure> {
    let config = AgentConfig::load(path)?;
    let mut problems = Vec::new();
    let mut lines = vec![format!(
        "Node:         {} (node_id {})",
        config.node_name, config.node_id
    )];
    let mut out = json!({
        "node_id": config.node_id,
        "node_name": config.node_name,
        "server": config.server,
        "trust": config.trust,
    });
    let server = server_of(&config)?;
    // The exit code: 0, or the most telling failure (3 trust, 4 token, 1 unreachable, 5 other).
    let mut code = 0;
    match server.connect().await {
        Err(e) => {
            let what = match e.exit_code() {
                3 => "NOT TRUSTED",
                _ => "UNREACHABLE",
            };
            lines.push(format!("Server:       {} {what}: {e}", config.server));
            out["reachable"] = json!(false);
            out["error"] = json!(e.to_string());
            problems.push(e.to_string());
            code = e.exit_code();
        }
        Ok(mut conn) => {
            let f = conn.facts.clone();
            lines.push(format!("Server:       {} reachable", config.server));
            lines.push(format!("TLS:          {} {}", f.version, f.cipher));
            if let (Some(na), Some(left)) = (&f.not_after, f.expires_in_s) {
                let days = left / 86_400;
                lines.push(format!("Certificate:  expires {na} (in {days} days)"));
                if left < 14 * 86_400 {
                    problems.push(format!("the server's certificate expires in {days} days"));
                }
            }
            let pin = match config.trust {
                Trust::Pinned => "matches the pinned key",
                Trust::Verified => "chain and name verified (no pin)",
            };
            lines.push(format!("Trust:        {pin}"));
            out["reachable"] = json!(true);
            out["tls"] = json!({"version": f.version, "cipher": f.cipher, "not_after": f.not_after,
                "expires_in_s": f.expires_in_s,
                "fingerprint": f.fingerprint.as_ref().map(perch_certs::spki_sha256_hex)});
            match conn
                .json(Method::GET, "/v1/node", Some(&config.token), None)
                .await
                .and_then(|a| a.ok())
            {
                Ok(a) => {
                    let v = a.json();
                    lines.push("Node token:   accepted".into());
                    out["token_ok"] = json!(true);
                    out["server_last_push"] = v["last_push"].clone();
                }
                Err(e) => {
                    let f = Failure::from(e);
                    lines.push(format!("Node token:   REFUSED: {}", f.message));
                    out["token_ok"] = json!(false);
                    problems.push(f.message);
                    code = f.code;
                }
            }
        }
    }
    let state = AgentState::read(&AgentConfig::state_path(path));
    let now = unix_now();
    match &state {
        Some(s) if s.running(now) => {
            lines.push(format!("Agent:        running (pid {})", s.pid));
            let last = s
                .last_push_ok
                .map_or("never".to_owned(), |t| format!("{} s ago", now - t));
            lines.push(format!("Last push:    {last}"));
            if let Some(e) = &s.last_error {
                lines.push(format!("Last error:   {e}"));
                problems.push(format!("the agent's last push failed: {e}"));
            }
            lines.push(format!(
                "Buffer:       {} batches, {} bytes; {} dropped",
                s.buffered_batches, s.buffered_bytes, s.dropped_batches
            ));
        }
        _ => {
            lines.push("Agent:        NOT RUNNING (start it: systemctl start perch-agent, or perch-admin agent)".into());
            if let Some(t) = state.as_ref().and_then(|s| s.last_push_ok) {
                lines.push(format!("Last push:    {} s ago", now - t));
            }
            problems.push("the agent is not running".into());
        }
    }
    let running = state.as_ref().is_some_and(|s| s.running(now));
    // Each service and exporter as the running agent last found it.
    let mut targets = Vec::new();
    let known = state
        .as_ref()
        .filter(|_| running)
        .map(|s| s.targets.as_slice())
        .unwrap_or(&[]);
    for (name, kind) in config
        .services
        .iter()
        .map(|s| (s.name.as_str(), s.kind.title()))
        .chain(
            config
                .exporters
                .iter()
                .map(|e| (e.name.as_str(), "exporter")),
        )
    {
        let h = known.iter().find(|t| t.name == name);
        lines.push(format!(
            "{:<14}{name} ({kind}): {}",
            if targets.is_empty() { "Targets:" } else { "" },
            super::exporters::describe(h, now)
        ));
        if let Some(h) = h.filter(|h| !h.up) {
            problems.push(format!(
                "{kind} {name} is down: {}",
                h.error.as_deref().unwrap_or("no reason known")
            ));
        }
        targets.push(json!({"name": name, "kind": kind, "health": h}));
    }
    out["targets"] = json!(targets);
    out["agent"] = json!({
        "running": running,
        "last_push_ok": state.as_ref().and_then(|s| s.last_push_ok),
        "last_error": state.as_ref().and_then(|s| s.last_error.clone()),
        "buffered_batches": state.as_ref().map_or(0, |s| s.buffered_batches),
        "buffered_bytes": state.as_ref().map_or(0, |s| s.buffered_bytes),
        "dropped_batches": state.as_ref().map_or(0, |s| s.dropped_batches),
    });
    out["problems"] = json!(problems);
    // The report is printed either way; the exit code says whether something is wrong.
    let mut output = Output::new(lines.join("\n"), out);
    output.code = match (code, problems.is_empty()) {
        (0, true) => 0,
        (0, false) => 5,
        (c, _) => c,
    };
    Ok(output)
}
