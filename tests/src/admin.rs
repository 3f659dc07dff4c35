//! perch-admin and a real node_exporter, for the tests that enroll machines and run agents.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{Server, binary, free_port};

/// A perch-admin with its own config file.
#[derive(Debug)]
pub struct Admin {
    pub config: PathBuf,
    /// Its own directory, for files a test hands it (password files).
    pub dir: tempfile::TempDir,
}

impl Default for Admin {
    fn default() -> Self {
        Self::new()
    }
}

impl Admin {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self {
            config: dir.path().join("perch").join("agent.toml"),
            dir,
        }
    }

    /// Runs `perch-admin --config <its file> args`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    /// Runs `perch-admin --config <its file> args` with `env` set.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(binary("perch-admin"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("PERCH_SERVER_PASSWORD")
            .env_remove("PERCH_ENROLL_TOKEN")
            .env_remove("PERCH_DB_PASSWORD")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("run perch-admin")
    }

    /// Starts `perch-admin agent` with its log (stderr) added to `log`.
    pub fn agent_logged(&self, log: &std::path::Path) -> Agent {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("agent log file");
        self.spawn_agent(Stdio::from(file))
    }

    /// `config --server <server> --server-insecure-ssl` and `args`.
    pub fn config_insecure(&self, server: &Server, args: &[&str]) -> Output {
        let server = server_arg(server);
        let head = ["config", "--server", &server, "--server-insecure-ssl"];
        self.run(&[&head[..], args].concat())
    }

    /// Enrolls this machine as `name` with `--server-insecure-ssl` and a fresh enrollment
    /// token, with `args` added (`--interval`, `--labels`, ...).
    pub async fn enroll(&self, server: &Server, name: &str, args: &[&str]) {
        let token = enroll_token(server).await;
        let head = ["--enroll-token", token.as_str(), "--node-name", name];
        let out = self.config_insecure(server, &[&head[..], args].concat());
        assert!(out.status.success(), "{}", text(&out));
    }

    /// A client of `server` with this machine's node token (from its config), as its agent
    /// talks to the server.
    pub fn node_http(&self, server: &Server) -> crate::Http {
        let config: toml::Value =
            toml::from_str(&std::fs::read_to_string(&self.config).expect("agent config"))
                .expect("agent config is TOML");
        let mut node = crate::Http::new(server);
        node.bearer = config["token"].as_str().map(str::to_owned);
        node
    }

    /// Starts `perch-admin agent`, stopped when the [`Agent`] is dropped.
    pub fn agent(&self) -> Agent {
        self.spawn_agent(Stdio::null())
    }

    fn spawn_agent(&self, stderr: Stdio) -> Agent {
        Agent(
            Command::new(binary("perch-admin"))
                .arg("--config")
                .arg(&self.config)
                .arg("agent")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .expect("spawn agent"),
        )
    }
}

/// The agent process, stopped (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct Agent(Child);

impl Agent {
    /// Kills the agent with SIGKILL: it cannot stop anything it started.
    pub fn kill9(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh enrollment token, made by the admin (`admin` / [`crate::STRONG`]).
pub async fn enroll_token(server: &Server) -> String {
    let mut admin = server.login("admin", crate::STRONG).await;
    admin.enroll_token().await["token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// An exit status and both outputs, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `--server` for a test server.
pub fn server_arg(server: &Server) -> String {
    format!("localhost:{}", server.https.port())
}

/// A running node_exporter, killed when dropped.
#[derive(Debug)]
pub struct Exporter(Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's prometheus-node-exporter on a free loopback port, if installed.
pub fn node_exporter() -> Option<(Exporter, u16)> {
    let port = free_port();
    let child = Command::new("prometheus-node-exporter")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "node_exporter did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some((Exporter(child), port))
}
