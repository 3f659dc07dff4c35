//! Child processes Perch supervises (the metrics engine, vmalert, Alertmanager): the
//! supervisor (`supervise`); finding their binaries, a loopback port for each, a random
//! credential, stopping them in order, and stopping orphans an earlier perch-server left
//! running.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::process::Child;

pub mod supervise;

/// How long a child has to stop after SIGTERM before it is killed.
pub const STOP_WITHIN: Duration = Duration::from_secs(10);

/// `name` on PATH, or `name` itself when it is a path to a file.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file())
}

/// A port on 127.0.0.1 that nothing listens on now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A new random password: 48 hex digits.
pub fn random_password() -> String {
    let mut bytes = [0u8; 24];
    // aws-lc's generator fails only if the operating system gives no randomness at all.
    aws_lc_rs::rand::fill(&mut bytes).expect("the operating system's random generator failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SIGTERM, then SIGKILL if it has not stopped within [`STOP_WITHIN`].
pub async fn stop(mut child: Child, name: &str) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    if tokio::time::timeout(STOP_WITHIN, child.wait())
        .await
        .is_err()
    {
        tracing::warn!(child = name, "did not stop within 10 s; killing it");
        let _ = child.kill().await;
    }
}

/// Stops processes left running by an earlier perch-server that was killed without a
/// chance to stop them (SIGKILL does not reach children): those whose command line holds
/// the argument `marker`, which names a folder of this data directory. Only one
/// perch-server can hold a data directory (the store's lock), so any such process is an
/// orphan, and it would hold its own lock or port.
pub async fn reap_orphans(marker: &str, name: &str) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if !cmdline
            .split(|b| *b == 0)
            .any(|arg| arg == marker.as_bytes())
        {
            continue;
        }
        tracing::warn!(
            pid,
            child = name,
            "stopping a process left running by an earlier perch-server"
        );
        let target = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + STOP_WITHIN;
        while entry.path().exists() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if entry.path().exists() {
            let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGKILL);
        }
    }
}
