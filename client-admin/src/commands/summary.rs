//! `perch-admin summary`: one archive of what support needs, as `pmm-admin summary` makes:
//! versions, `status` (text and JSON), the agent's config with its token taken out, the
//! agent's state and buffer, and its recent log lines (from the journal, where there is
//! one). Nothing secret goes in: the node token, enrollment tokens and passwords never do.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use super::{Failure, Output};
use crate::cli::SummaryArgs;
use crate::config::AgentConfig;

/// How many of the agent's log lines the archive holds.
const LOG_LINES: &str = "500";

pub async fn run(args: SummaryArgs, path: &Path) -> Result<Output, Failure> {
    let file = args.filename.unwrap_or_else(|| {
        PathBuf::from(format!(
            "perch-admin-summary-{}-{}.tar",
            host_name(),
            perch_time::unix_now()
        ))
    });
    let mut parts: Vec<(&str, Vec<u8>)> = vec![("versions.txt", versions().into_bytes())];
    match super::status::run(path).await {
        Ok(status) => {
            parts.push(("status.txt", format!("{}\n", status.text).into_bytes()));
            parts.push((
                "status.json",
                serde_json::to_vec_pretty(&status.json).unwrap_or_default(),
            ));
        }
        Err(f) => parts.push((
            "status.txt",
            format!("status failed (exit code {}): {}\n", f.code, f.message).into_bytes(),
        )),
    }
    parts.push(("agent.toml", config_without_secrets(path).into_bytes()));
    if let Ok(state) = std::fs::read(AgentConfig::state_path(path)) {
        parts.push(("agent-state.json", state));
    }
    parts.push((
        "buffer.txt",
        buffer(&AgentConfig::buffer_dir(path)).into_bytes(),
    ));
    parts.push(("agent-log.txt", agent_log().into_bytes()));

    let names: Vec<&str> = parts.iter().map(|(n, _)| *n).collect();
    write_tar(&file, &parts).map_err(|e| Failure::runtime(format!("{}: {e}", file.display())))?;
    Ok(Output::new(
        format!(
            "Wrote {} ({}). Attach it to the bug report: it holds no token or password.",
            file.display(),
            names.join(", ")
        ),
        json!({"file": file.display().to_string(), "files": names}),
    ))
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        })
        .unwrap_or_else(|| "host".to_owned())
}

fn versions() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    format!(
        "perch-admin {}\nos: {os}\nkernel: {}\narch: {}\n",
        env!("CARGO_PKG_VERSION"),
        read("/proc/sys/kernel/osrelease").trim(),
        std::env::consts::ARCH,
    )
}

/// The config as the agent reads it, with the node token replaced.
fn config_without_secrets(path: &Path) -> String {
    match AgentConfig::load(path) {
        Ok(mut config) => {
            config.token = "(removed from the summary)".to_owned();
            for exporter in &mut config.exporters {
                exporter.url = without_userinfo(&exporter.url);
            }
            for service in config
                .services
                .iter_mut()
                .filter(|s| !s.password.is_empty())
            {
                service.password = "(removed from the summary)".to_owned();
            }
            toml::to_string(&config).unwrap_or_else(|e| format!("# cannot show it: {e}\n"))
        }
        Err(e) => format!("# {}: {e}\n", path.display()),
    }
}

/// A URL with any `user:password@` taken out.
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://(removed)@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// The on-disk buffer: each batch file and its size.
fn buffer(dir: &Path) -> String {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return format!(
            "{}: no buffer (nothing waiting to be sent)\n",
            dir.display()
        );
    };
    let mut files: Vec<(String, u64)> = entries
        .flatten()
        .map(|e| {
            let len = e.metadata().map_or(0, |m| m.len());
            (e.file_name().to_string_lossy().into_owned(), len)
        })
        .collect();
    files.sort();
    let total: u64 = files.iter().map(|f| f.1).sum();
    let mut out = format!("{}: {} files, {total} bytes\n", dir.display(), files.len());
    for (name, len) in files {
        out.push_str(&format!("{name} {len}\n"));
    }
    out
}

/// The agent's last log lines from the journal (the perch-agent unit), or why there are
/// none. The agent never logs a token.
fn agent_log() -> String {
    let out = Command::new("journalctl")
        .args([
            "-u",
            "perch-agent",
            "-n",
            LOG_LINES,
            "--no-pager",
            "-o",
            "cat",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => format!(
            "journalctl could not read the perch-agent unit: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => {
            "no journal here (journalctl is not installed): the agent logs to its standard error\n"
                .to_owned()
        }
    }
}

fn write_tar(file: &Path, parts: &[(&str, Vec<u8>)]) -> std::io::Result<()> {
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)?;
    let mut tar = tar::Builder::new(out);
    let now = u64::try_from(perch_time::unix_now()).unwrap_or(0);
    for (name, bytes) in parts {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(now);
        tar.append_data(
            &mut header,
            format!("perch-admin-summary/{name}"),
            bytes.as_slice(),
        )?;
    }
    let mut out = tar.into_inner()?;
    out.flush()?;
    out.sync_all()
}
