//! `perch-admin config`: choose the trust mode, enroll with a token or a user's password
//! (used once, never stored), and write the agent's config.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;

use http::Method;
use perch_certs::trust::TrustMode;
use serde_json::json;

use super::{Failure, Output};
use crate::cli::ConfigArgs;
use crate::client::{ClientError, Conn, Server};
use crate::config::{AgentConfig, Trust};

/// The server address and any credentials in a PMM-style `--server-url`.
struct Target {
    server: String,
    url_user: Option<(String, String)>,
}

fn target(args: &ConfigArgs) -> Result<Target, Failure> {
    if let Some(server) = &args.server {
        return Ok(Target {
            server: server.clone(),
            url_user: None,
        });
    }
    let raw = args.server_url.as_deref().unwrap_or_default();
    let url = url::Url::parse(raw)
        .map_err(|e| Failure::usage(format!("--server-url {raw:?}: {e}; use https://HOST:PORT")))?;
    if url.scheme() != "https" {
        return Err(Failure::usage(format!(
            "--server-url {raw:?}: Perch speaks only HTTPS; use https://HOST:PORT"
        )));
    }
    let host = match url.host() {
        Some(url::Host::Ipv6(a)) => format!("[{a}]"),
        Some(h) => h.to_string(),
        None => return Err(Failure::usage(format!("--server-url {raw:?}: no host"))),
    };
    let server = format!("{host}:{}", url.port().unwrap_or(443));
    let url_user = (!url.username().is_empty()).then(|| {
        eprintln!(
            "perch-admin: warning: credentials in --server-url are visible to other users in the process list; prefer --enroll-token or --server-password-file"
        );
        // Userinfo is percent-encoded ('+' is a plus, not a space as in a form).
        let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        (
            decode(url.username()),
            decode(url.password().unwrap_or_default()),
        )
    });
    Ok(Target { server, url_user })
}

fn labels(args: &ConfigArgs) -> Result<BTreeMap<String, String>, Failure> {
    args.labels
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| Failure::usage(format!("--labels {l:?}: use k=v,k=v")))
        })
        .collect()
}

fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// The password for `--server-user`, from the file, the variable, the flag or a prompt.
fn password(args: &ConfigArgs, url_password: Option<String>) -> Result<String, Failure> {
    if let Some(file) = &args.server_password_file {
        let text = std::fs::read_to_string(file).map_err(|e| {
            Failure::usage(format!("--server-password-file {}: {e}", file.display()))
        })?;
        return Ok(text.trim_end_matches(['\n', '\r']).to_owned());
    }
    if let Ok(p) = std::env::var("PERCH_SERVER_PASSWORD") {
        return Ok(p);
    }
    if let Some(p) = &args.server_password {
        eprintln!(
            "perch-admin: warning: --server-password is visible to other users in the process list; prefer --server-password-file or PERCH_SERVER_PASSWORD"
        );
        return Ok(p.clone());
    }
    if let Some(p) = url_password.filter(|p| !p.is_empty()) {
        return Ok(p);
    }
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password("Password: ")
            .map_err(|e| Failure::usage(format!("cannot read the password: {e}")));
    }
    Err(Failure::usage(
        "no password for --server-user: give --server-password-file FILE or PERCH_SERVER_PASSWORD",
    ))
}

/// Enrolls with a user's session: log in, enroll, log out.
async fn enroll_as_user(
    conn: &mut Conn,
    server: &Server,
    user: &str,
    password: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value, ClientError> {
    let login = conn
        .json(
            Method::POST,
            "/v1/login",
            None,
            Some(&json!({"name": user, "password": password})),
        )
        .await?
        .ok()?;
    let csrf = login.json()["csrf"].as_str().unwrap_or_default().to_owned();
    let cookie = login
        .headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.split(';')
                .next()
                .filter(|kv| kv.starts_with("__Host-perch_session="))
        })
        .unwrap_or_default()
        .to_owned();
    let origin = format!("https://{}", server.display);
    let headers = [
        ("cookie", cookie.as_str()),
        ("x-csrf-token", csrf.as_str()),
        ("origin", origin.as_str()),
        ("content-type", "application/json"),
        ("accept", "application/json"),
    ];
    let answer = conn
        .send(
            Method::POST,
            "/v1/nodes",
            &headers,
            serde_json::to_vec(body).unwrap_or_default().into(),
        )
        .await?;
    // Log out whatever the enrollment's outcome; a failure here only leaves a session to expire.
    let _ = conn
        .send(Method::POST, "/v1/logout", &headers, bytes::Bytes::new())
        .await;
    Ok(answer.ok()?.json())
}

pub async fn run(args: ConfigArgs, path: &Path) -> Result<Output, Failure> {
    let target = target(&args)?;
    if path.exists() && !args.force {
        let who = AgentConfig::load(path)
            .map(|c| format!(" as node {} with {}", c.node_name, c.server))
            .unwrap_or_default();
        return Err(Failure::usage(format!(
            "{} exists: this machine is already configured{who}. Use --force to enroll again (a node of the same name is replaced)",
            path.display()
        )));
    }
    let labels = labels(&args)?;
    let node_name = args.node_name.clone().unwrap_or_else(host_name);
    let expected = match &args.server_fingerprint {
        Some(fp) => Some(crate::config::parse_fingerprint(fp).ok_or_else(|| {
            Failure::usage(format!(
                "--server-fingerprint {fp:?}: 32 bytes of hex, as ab:cd:... (the Add node page shows it)"
            ))
        })?),
        None => None,
    };
    let (server, mut conn, pin) = if let Some(pin) = expected {
        // The key is known: the very first connection must present it.
        let server = Server::new(&target.server, &TrustMode::Pinned(pin))?;
        let conn = server.connect().await?;
        (server, conn, Some(pin))
    } else if args.server_insecure_ssl {
        let (config, learned) =
            perch_certs::danger::learn_fingerprint().map_err(|e| Failure::usage(e.to_string()))?;
        let server = Server::with_config(&target.server, config)?;
        let conn = server.connect().await?;
        let pin = learned
            .get()
            .ok_or_else(|| Failure::usage("the server presented no certificate"))?;
        eprintln!(
            "perch-admin: WARNING: --server-insecure-ssl: the server's certificate chain is not verified. Its public key (SHA-256) is\n  {}\nIt is pinned now: later connections must present this key. Compare it with the fingerprint on the server's Add node page (or give it with --server-fingerprint next time, so it is checked before anything is sent).",
            perch_certs::spki_sha256_hex(&pin)
        );
        (server, conn, Some(pin))
    } else {
        let server = Server::new(&target.server, &TrustMode::Verified(args.ca_file.clone()))?;
        let conn = server.connect().await?;
        (server, conn, None)
    };
    let body = json!({
        "name": node_name,
        "address": args.node_address,
        "labels": labels,
        "force": args.force,
    });
    let answer = if let Some(token) = &args.enroll_token {
        conn.json(Method::POST, "/v1/nodes", Some(token.trim()), Some(&body))
            .await?
            .ok()?
            .json()
    } else {
        let (user, url_password) = match (&args.server_user, target.url_user) {
            (Some(u), _) => (u.clone(), None),
            (None, Some((u, p))) => (u, Some(p)),
            (None, None) => {
                return Err(Failure::usage(
                    "no credentials: give --enroll-token (from the server's Add node page) or --server-user",
                ));
            }
        };
        let password = password(&args, url_password)?;
        enroll_as_user(&mut conn, &server, &user, &password, &body).await?
    };
    let text = |k: &str| answer["node"][k].as_str().unwrap_or_default().to_owned();
    // Enrolling again (`--force`) keeps what the agent collects.
    let (exporters, services) = AgentConfig::load(path)
        .map(|old| (old.exporters, old.services))
        .unwrap_or_default();
    let config = AgentConfig {
        server: server.display.clone(),
        trust: if pin.is_some() {
            Trust::Pinned
        } else {
            Trust::Verified
        },
        ca_file: args
            .ca_file
            .as_ref()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())),
        pin_sha256: pin.as_ref().map(perch_certs::spki_sha256_hex),
        node_id: text("node_id"),
        node_name: text("name"),
        token: answer["token"].as_str().unwrap_or_default().to_owned(),
        interval_s: args.interval.as_secs(),
        max_buffer_mib: args.max_buffer_mib,
        labels,
        exporters,
        services,
    };
    if config.token.is_empty() || config.node_id.is_empty() {
        return Err(Failure::runtime("the server's answer held no node token"));
    }
    config.save(path)?;
    let text = format!(
        "Enrolled this machine as node {} (node_id {}) with {}.\nConfig written to {} (mode 0600).\nStart the agent: systemctl enable --now perch-agent (or run `perch-admin agent`).",
        config.node_name,
        config.node_id,
        config.server,
        path.display()
    );
    Ok(Output::new(
        text,
        json!({
            "node_id": config.node_id,
            "node_name": config.node_name,
            "server": config.server,
            "trust": config.trust,
            "pin_sha256": config.pin_sha256,
            "config": path,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> ConfigArgs {
        let cli =
            crate::cli::Cli::try_parse_from(["perch-admin", "config"].iter().chain(extra).copied())
                .unwrap();
        match cli.command {
            crate::cli::Command::Config(a) => *a,
            _ => unreachable!("config"),
        }
    }

    #[test]
    fn pmm_server_urls() {
        let t = target(&args(&[
            "--server-url",
            "https://ad%40min:p+ss%2Fw@pmm.example:8443",
        ]))
        .unwrap();
        assert_eq!(t.server, "pmm.example:8443");
        assert_eq!(
            t.url_user,
            Some(("ad@min".to_owned(), "p+ss/w".to_owned())),
            "userinfo is percent-decoded, '+' kept"
        );
        let t = target(&args(&["--server-url", "https://[::1]"])).unwrap();
        assert_eq!(t.server, "[::1]:443");
        assert!(target(&args(&["--server-url", "http://pmm.example"])).is_err());
    }
}
