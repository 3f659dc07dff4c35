//! Real database servers from Debian's packages (`mariadb-server`, `postgresql`), each
//! started in a temporary directory on a free loopback port and stopped (SIGKILL) when
//! dropped, for the tests of `perch-admin add mysql|postgresql`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn wait_port(port: u16, what: &str, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} stopped ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A MariaDB server; `root` signs in through its socket.
#[derive(Debug)]
pub struct MariaDb {
    child: Child,
    pub port: u16,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
}

impl MariaDb {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Started with more server options (e.g. `--performance-schema=ON`).
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let root = is_root();
        let mut install = Command::new("mariadb-install-db");
        install.args([
            "--no-defaults",
            &format!("--datadir={}", data.display()),
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
        ]);
        if root {
            install.arg("--user=root");
        }
        let out = install
            .output()
            .expect("mariadb-install-db (apt-get install mariadb-server)");
        assert!(out.status.success(), "mariadb-install-db: {}", text(&out));
        let port = free_port();
        let socket = dir.path().join("mysqld.sock");
        let log = dir.path().join("mariadbd.log");
        let mut cmd = Command::new("/usr/sbin/mariadbd");
        cmd.args([
            "--no-defaults",
            &format!("--datadir={}", data.display()),
            &format!("--socket={}", socket.display()),
            &format!("--port={port}"),
            "--bind-address=127.0.0.1",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=32M",
            &format!("--pid-file={}", dir.path().join("mariadbd.pid").display()),
            &format!("--log-error={}", log.display()),
        ]);
        if root {
            cmd.arg("--user=root");
        }
        cmd.args(extra);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd (apt-get install mariadb-server)");
        wait_port(port, "mariadbd", &mut child, &log);
        Self {
            child,
            port,
            socket,
            dir,
        }
    }

    /// Runs `sql` as root through the socket; panics with the server's words on failure.
    pub fn sql(&self, sql: &str) -> String {
        let out = Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket.display()))
            .args(["-uroot", "--batch", "--skip-column-names", "-e", sql])
            .output()
            .expect("mariadb client");
        assert!(out.status.success(), "{sql}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Stops the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A PostgreSQL server; the superuser `postgres` signs in with [`Postgres::PASSWORD`].
/// Run as the `postgres` user when the tests run as root (PostgreSQL refuses root).
#[derive(Debug)]
pub struct Postgres {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

fn pg_bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("/usr/lib/postgresql (apt-get install postgresql)")
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("a PostgreSQL server (apt-get install postgresql)")
}

impl Postgres {
    pub const PASSWORD: &'static str = "pg-superuser-pw";

    fn as_owner(root: bool, program: &Path) -> Command {
        if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Started with more settings, each a `-c name=value` (e.g.
    /// `shared_preload_libraries=pg_stat_statements`).
    pub fn start_with(settings: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = is_root();
        if root {
            let out = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .output()
                .expect("chown");
            assert!(out.status.success(), "chown: {}", text(&out));
        }
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, format!("{}\n", Self::PASSWORD)).unwrap();
        if root {
            let _ = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&pwfile)
                .output();
        }
        let data = dir.path().join("data");
        let out = Self::as_owner(root, &pg_bin("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "scram-sha-256", "-U", "postgres", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("initdb");
        assert!(out.status.success(), "initdb: {}", text(&out));
        let port = free_port();
        let log = dir.path().join("postgres.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let mut child = Self::as_owner(root, &pg_bin("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .args([
                "-c",
                &format!("unix_socket_directories={}", dir.path().display()),
            ])
            .args(["-c", "fsync=off"])
            .args(settings.iter().flat_map(|s| ["-c", s]))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("postgres");
        wait_port(port, "postgres", &mut child, &log);
        Self { child, port, dir }
    }

    /// Runs `sql` as the superuser over TCP; panics with the server's words on failure.
    pub fn sql(&self, sql: &str) -> String {
        self.sql_in("postgres", sql)
    }

    /// Runs `sql` as the superuser in the database `db`.
    pub fn sql_in(&self, db: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", db, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .env("PGPASSWORD", Self::PASSWORD)
            .output()
            .expect("psql (apt-get install postgresql-client)");
        assert!(out.status.success(), "{sql}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Stops the server at once. Under `runuser` the server is a child of it: kill both.
    pub fn kill(&mut self) {
        let pidfile = self.dir.path().join("data").join("postmaster.pid");
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|t| t.lines().next().map(str::to_owned))
        {
            let _ = Command::new("kill").args(["-9", &pid]).output();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.kill();
    }
}
