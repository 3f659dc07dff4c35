//! Helpers for Perch's end-to-end tests: start the real `perch-server` binary on ephemeral
//! loopback ports with temporary directories, and talk to it over real TLS.
#![allow(clippy::missing_panics_doc)]

pub mod admin;
pub mod alerting;
pub mod charts;
pub mod chromium;
pub mod databases;
pub mod upstream;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// The path of a workspace binary, built (once per test process) if needed, so that
/// `cargo test -p perch-e2e` alone never runs a stale binary.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let target = workspace_target_dir();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "perch-server",
                "-p",
                "perch-admin",
                "--bins",
            ])
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build failed");
    });
    target.join("debug").join(name)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn workspace_target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// A running `perch-server` with its own data and certificate directories.
#[derive(Debug)]
pub struct Server {
    pub child: Child,
    pub data: tempfile::TempDir,
    pub cert_dir: PathBuf,
    pub https: SocketAddr,
    pub http: Option<SocketAddr>,
    output: Arc<Mutex<Vec<String>>>,
}

/// How to start a server.
#[derive(Debug, Default, Clone)]
pub struct Options {
    pub args: Vec<String>,
    /// Use this certificate directory instead of `<data>/nginx`.
    pub cert_dir: Option<PathBuf>,
    pub no_http: bool,
    /// Do not wait for `/v1/readyz` to answer 200 (the metrics engine may be missing).
    pub not_ready: bool,
    /// Listen here instead of an ephemeral port (to restart on the same address).
    pub listen: Option<SocketAddr>,
}

impl Options {
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }
}

/// What a server printed and how it exited, when it exits by itself.
#[derive(Debug)]
pub struct Exited {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

fn base_command(data: &Path, cert_dir: &Path, opts: &Options) -> Command {
    let mut cmd = Command::new(binary("perch-server"));
    // Tests that are not about the second factor sign in with a password alone; those
    // that are ask for `--require-2fa` themselves.
    if !opts.args.iter().any(|a| a.starts_with("--require-2fa")) {
        cmd.arg("--require-2fa=off");
    }
    cmd.arg("--data-dir")
        .arg(data)
        .arg("--cert-dir")
        .arg(cert_dir)
        .arg("--listen")
        .arg(
            opts.listen
                .map_or("127.0.0.1:0".to_owned(), |a| a.to_string()),
        )
        .args([
            "--http-listen",
            if opts.no_http { "off" } else { "127.0.0.1:0" },
        ])
        .args(&opts.args)
        .env_remove("PERCH_LOG")
        .env_remove("PERCH_REQUIRE_2FA")
        .stdin(Stdio::null());
    cmd
}

impl Server {
    /// Starts the server and waits (bounded) until it logs that it listens.
    pub fn start(opts: Options) -> Server {
        let data = tempfile::tempdir().expect("tempdir");
        Self::start_in(data, opts)
    }

    pub fn start_in(data: tempfile::TempDir, opts: Options) -> Server {
        let cert_dir = opts
            .cert_dir
            .clone()
            .unwrap_or_else(|| data.path().join("nginx"));
        let mut child = base_command(data.path(), &cert_dir, &opts)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn perch-server");
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    output.lock().expect("lock").push(line);
                }
            });
        }
        let mut server = Server {
            child,
            data,
            cert_dir,
            https: "0.0.0.0:0".parse().expect("addr"),
            http: None,
            output,
        };
        let line = server
            .wait_for_log("perch-server is listening", Duration::from_secs(20))
            .unwrap_or_else(|| panic!("server did not start:\n{}", server.log().join("\n")));
        let v: serde_json::Value = serde_json::from_str(&line).expect("json log line");
        server.https = v["https"].as_str().expect("https").parse().expect("addr");
        server.http = v["http_redirect"].as_str().and_then(|s| s.parse().ok());
        if !opts.not_ready {
            server.wait_ready(Duration::from_secs(30));
        }
        server
    }

    /// Waits (bounded) until `/v1/readyz` answers 200: the metrics engine is up too.
    pub fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        let config = Arc::new(client_config(&self.ca_file(), &[b"http/1.1"]));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let addr = self.https;
        let ready = std::thread::spawn(move || {
            runtime.block_on(async move {
                while Instant::now() < deadline {
                    if let Ok(tls) = connect(addr, "localhost", (*config).clone()).await {
                        let (reply, _) = get(tls, "/v1/readyz").await;
                        if reply.status == 200 {
                            return true;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                false
            })
        })
        .join()
        .expect("readiness probe");
        assert!(
            ready,
            "not ready within {within:?}:\n{}",
            self.log().join("\n")
        );
    }

    /// Runs the server expecting it to exit by itself (a start-up failure).
    pub fn run_to_exit(data: &Path, opts: Options) -> Exited {
        let cert_dir = opts.cert_dir.clone().unwrap_or_else(|| data.join("nginx"));
        let mut child = base_command(data, &cert_dir, &opts)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn perch-server");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(_status) = child.try_wait().expect("wait") {
                let out = child.wait_with_output().expect("output");
                return Exited {
                    status: out.status,
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                };
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("perch-server did not exit within 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every line printed so far (stdout and stderr).
    pub fn log(&self) -> Vec<String> {
        self.output.lock().expect("lock").clone()
    }

    /// Waits until a printed line contains `needle`; returns it.
    pub fn wait_for_log(&self, needle: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.log().into_iter().find(|l| l.contains(needle)) {
                return Some(line);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn ca_file(&self) -> PathBuf {
        self.cert_dir.join("ca-certs.pem")
    }

    /// Stops the server (SIGTERM) and keeps its data directory, for a later
    /// [`Server::start_in`].
    pub fn stop_keeping_data(mut self) -> tempfile::TempDir {
        self.signal("TERM");
        assert!(
            self.wait_exit(Duration::from_secs(15)).is_some(),
            "server did not stop"
        );
        std::mem::replace(&mut self.data, tempfile::tempdir().expect("tempdir"))
    }

    /// Sends a signal to the server (e.g. "TERM").
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits (bounded) for the server to exit.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    /// SIGTERM first, as an operator would, so the server stops its metrics engine; SIGKILL
    /// only if it does not exit in time.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
            if self.wait_exit(Duration::from_secs(10)).is_none() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

/// A client configuration trusting the CA certificates in `ca_file`.
pub fn client_config(ca_file: &Path, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let mode = perch_certs::trust::TrustMode::CaFile(ca_file.to_path_buf());
    let mut config = perch_certs::trust::client_config(&mode).expect("client config");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// Connects over TLS to `addr`, verifying the certificate for `name`.
pub async fn connect(
    addr: SocketAddr,
    name: &str,
    config: rustls::ClientConfig,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_owned()).expect("server name");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// The leaf certificate a TLS connection was given.
pub fn peer_leaf(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().expect("peer certs")[0]
        .clone()
        .into_owned()
}

/// A minimal HTTP response, as read off the wire.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends GET `path` over an established TLS stream with HTTP/1.1 or h2 (from ALPN).
pub async fn get(
    tls: TlsStream<TcpStream>,
    path: &str,
) -> (
    Reply,
    hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>>,
) {
    use hyper_util::rt::TokioIo;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("h1 handshake");
    tokio::spawn(conn);
    let reply = send_h1(&mut sender, path).await.expect("request");
    (reply, sender)
}

/// Sends GET `path` on an HTTP/1.1 connection that is already open.
pub async fn send_h1(
    sender: &mut hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>>,
    path: &str,
) -> Result<Reply, hyper::Error> {
    send_h1_with(sender, path, None).await
}

/// [`send_h1`] with an optional bearer token.
pub async fn send_h1_with(
    sender: &mut hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>>,
    path: &str,
    bearer: Option<&str>,
) -> Result<Reply, hyper::Error> {
    send_h1_method(sender, http::Method::GET, path, bearer).await
}

/// [`send_h1_with`] with any method.
pub async fn send_h1_method(
    sender: &mut hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>>,
    method: http::Method,
    path: &str,
    bearer: Option<&str>,
) -> Result<Reply, hyper::Error> {
    use http_body_util::{BodyExt, Empty};
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, "localhost");
    if let Some(token) = bearer {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let req = req.body(Empty::new()).expect("request");
    let resp = sender.send_request(req).await?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    })
}

/// Sends GET `path` over h2 on an established TLS stream.
pub async fn get_h2(tls: TlsStream<TcpStream>, path: &str) -> Reply {
    send_h2(tls, http::Method::GET, path)
        .await
        .expect("h2 request")
}

/// Sends `method` `path` over h2 on an established TLS stream; a stream or protocol error
/// (as a body sent with a HEAD answer) is the error.
pub async fn send_h2(
    tls: TlsStream<TcpStream>,
    method: http::Method,
    path: &str,
) -> Result<Reply, hyper::Error> {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method(method)
        .uri(format!("https://localhost{path}"))
        .body(Empty::<bytes::Bytes>::new())
        .expect("request");
    let resp = sender.send_request(req).await?;
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let (parts, body) = resp.into_parts();
    Ok(Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.collect().await?.to_bytes(),
    })
}

/// A self-signed CA and a leaf it signs, for tests that bring their own certificates.
#[derive(Debug)]
pub struct TestPki {
    pub ca_pem: String,
    pub leaf_pem: String,
    pub leaf_key_pem: String,
}

impl TestPki {
    /// A leaf for `names`, valid from `not_before` to `not_after` (Unix seconds).
    pub fn new(names: &[&str], not_before: i64, not_after: i64) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().expect("key");
        let mut ca = CertificateParams::default();
        ca.distinguished_name.push(DnType::CommonName, "Test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).expect("ca");
        let issuer = Issuer::new(ca, &ca_key);
        let leaf_key = KeyPair::generate().expect("key");
        let mut leaf =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("params");
        leaf.not_before = time::OffsetDateTime::from_unix_timestamp(not_before).expect("time");
        leaf.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).expect("time");
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("leaf");
        TestPki {
            ca_pem: ca_cert.pem(),
            leaf_pem: leaf_cert.pem(),
            leaf_key_pem: leaf_key.serialize_pem(),
        }
    }

    /// Valid from a day ago for a year.
    pub fn current(names: &[&str]) -> Self {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        Self::new(names, now - 86_400, now + 365 * 86_400)
    }

    /// Writes the PMM file names into `dir`.
    pub fn install(&self, dir: &Path) {
        std::fs::create_dir_all(dir).expect("mkdir");
        use std::os::unix::fs::PermissionsExt;
        // Explicit modes, whatever the umask: the key readable by its group (the image's
        // user is in group 0), the certificates by all.
        for (file, text, mode) in [
            ("certificate.key", &self.leaf_key_pem, 0o640),
            ("certificate.crt", &self.leaf_pem, 0o644),
            ("ca-certs.pem", &self.ca_pem, 0o644),
        ] {
            let path = dir.join(file);
            std::fs::write(&path, text).expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
    }
}

/// Runs `openssl s_client` against `addr` with extra arguments; true if a handshake
/// completed.
pub fn openssl_handshake(addr: SocketAddr, extra: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(addr.to_string())
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client (install Debian's openssl)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ok =
        out.status.success() && text.contains("Cipher is") && !text.contains("Cipher is (NONE)");
    (ok, text)
}

/// An HTTPS client for one server that keeps cookies and the CSRF token, like a browser
/// tab would, over a new HTTP/1.1 connection per request.
#[derive(Debug, Clone)]
pub struct Http {
    pub addr: SocketAddr,
    pub source: Option<std::net::IpAddr>,
    config: Arc<rustls::ClientConfig>,
    pub cookies: Vec<(String, String)>,
    pub csrf: Option<String>,
    pub bearer: Option<String>,
    /// Sent with every request, after the others.
    pub extra_headers: Vec<(String, String)>,
}

impl Http {
    pub fn new(server: &Server) -> Self {
        Self {
            addr: server.https,
            source: None,
            config: Arc::new(client_config(&server.ca_file(), &[b"http/1.1"])),
            cookies: Vec::new(),
            csrf: None,
            bearer: None,
            extra_headers: Vec::new(),
        }
    }

    /// A client for any HTTPS address that `ca_file` verifies as `localhost` (e.g. a
    /// container's published port).
    pub fn to(addr: SocketAddr, ca_file: &Path) -> Self {
        Self {
            addr,
            source: None,
            config: Arc::new(client_config(ca_file, &[b"http/1.1"])),
            cookies: Vec::new(),
            csrf: None,
            bearer: None,
            extra_headers: Vec::new(),
        }
    }

    /// The same client, connecting from another loopback address (e.g. 127.0.0.2).
    pub fn from_address(mut self, ip: &str) -> Self {
        self.source = Some(ip.parse().expect("ip"));
        self
    }

    pub fn origin(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    async fn connect(&self) -> TlsStream<TcpStream> {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        if let Some(ip) = self.source {
            socket.bind(SocketAddr::new(ip, 0)).expect("bind source");
        }
        let tcp = socket.connect(self.addr).await.expect("connect");
        let name = ServerName::try_from("localhost").expect("name");
        tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await
            .expect("TLS")
    }

    /// Sends a request; `json` bodies get `Content-Type: application/json`, `form` bodies
    /// are urlencoded (with the session's CSRF token added when there is one).
    pub async fn send(&mut self, method: &str, path: &str, body: Body<'_>) -> Reply {
        use http_body_util::{BodyExt, Full};
        use hyper_util::rt::TokioIo;
        let tls = self.connect().await;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .expect("h1 handshake");
        tokio::spawn(conn);
        let mut req = http::Request::builder().method(method).uri(path).header(
            http::header::HOST,
            format!("localhost:{}", self.addr.port()),
        );
        let own_origin = !self
            .extra_headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("origin"));
        if method != "GET" && own_origin {
            req = req.header(http::header::ORIGIN, self.origin());
        }
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header(http::header::COOKIE, jar.join("; "));
        }
        if let Some(csrf) = &self.csrf {
            req = req.header("x-csrf-token", csrf.as_str());
        }
        if let Some(token) = &self.bearer {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in &self.extra_headers {
            req = req.header(name.as_str(), value.as_str());
        }
        let bytes = match body {
            Body::None => Vec::new(),
            Body::Json(v) => {
                req = req.header(http::header::CONTENT_TYPE, "application/json");
                serde_json::to_vec(&v).expect("json")
            }
            Body::Raw(content_type, bytes) => {
                req = req.header(http::header::CONTENT_TYPE, content_type);
                bytes
            }
            Body::Form(fields) => {
                req = req.header(
                    http::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                );
                let mut form = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(fields.iter())
                    .finish();
                let csrf = self
                    .csrf
                    .clone()
                    .or_else(|| self.cookie("__Host-perch_csrf").map(str::to_owned));
                if let Some(c) = csrf {
                    form = format!("{form}&csrf={c}");
                }
                form.into_bytes()
            }
        };
        let req = req
            .body(Full::new(bytes::Bytes::from(bytes)))
            .expect("request");
        let resp = sender.send_request(req).await.expect("response");
        for value in resp.headers().get_all(http::header::SET_COOKIE) {
            let v = value.to_str().expect("cookie");
            let pair = v.split(';').next().unwrap_or("");
            if let Some((name, val)) = pair.split_once('=') {
                self.cookies.retain(|(k, _)| k != name);
                if !v.contains("Max-Age=0") {
                    self.cookies.push((name.to_owned(), val.to_owned()));
                }
            }
        }
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        let reply = Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        };
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&reply.body)
            && let Some(csrf) = v.get("csrf").and_then(|c| c.as_str())
        {
            self.csrf = Some(csrf.to_owned());
        }
        reply
    }
}

/// A request body for [`Http::send`].
#[derive(Debug)]
pub enum Body<'a> {
    None,
    Json(serde_json::Value),
    Form(&'a [(&'a str, &'a str)]),
    /// Raw bytes with this content type (e.g. a snappy remote-write body).
    Raw(&'static str, Vec<u8>),
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A password that passes the policy.
pub const STRONG: &str = "violet-tractor-lantern-9";
/// The temporary password an admin gives a new user in the tests.
pub const TEMPORARY: &str = "temporary-ocelot-42-x";
/// The password such a user then chooses.
pub const OWN: &str = "quiet-heron-fishes-at-dawn";

impl Server {
    /// The one-time setup code, as the server printed it.
    pub fn setup_code(&self) -> String {
        let line = self
            .wait_for_log("one-time code", Duration::from_secs(5))
            .expect("setup banner");
        let _ = line;
        self.log()
            .iter()
            .map(|l| l.trim())
            .find(|l| l.len() == 31 && l.split('-').count() == 6)
            .expect("a code line in the banner")
            .to_owned()
    }

    /// Starts a server whose admin (`admin` / [`STRONG`]) is created from a password file.
    pub fn start_with_admin(opts: Options) -> Server {
        let data = tempfile::tempdir().expect("tempdir");
        let file = data.path().join("admin-password");
        std::fs::write(&file, format!("{STRONG}\n")).expect("write");
        let opts = opts
            .arg("--admin-password-file")
            .arg(file.to_str().expect("path"));
        Self::start_in(data, opts)
    }

    /// A client logged in as `name`.
    pub async fn login(&self, name: &str, password: &str) -> Http {
        let mut http = Http::new(self);
        let r = http
            .send(
                "POST",
                "/v1/login",
                Body::Json(serde_json::json!({"name": name, "password": password})),
            )
            .await;
        assert_eq!(r.status, 200, "login as {name}: {}", r.text());
        http
    }

    /// A user `name` with `role`, created by the admin with a temporary password, who has
    /// already chosen their own ([`OWN`]); returned logged in.
    pub async fn user(&self, name: &str, role: &str) -> Http {
        let mut admin = self.login("admin", STRONG).await;
        let r = admin
            .send(
                "POST",
                "/v1/users",
                Body::Json(serde_json::json!({"name": name, "role": role, "password": TEMPORARY})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let mut user = self.login(name, TEMPORARY).await;
        let r = user
            .send(
                "PUT",
                "/v1/me/password",
                Body::Json(serde_json::json!({"current": TEMPORARY, "new": OWN})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        user
    }

    /// A client that sends an API token with `role` (created by the admin) as its bearer.
    pub async fn with_token(&self, role: &str) -> Http {
        let mut http = Http::new(self);
        http.bearer = Some(self.token(role).await);
        http
    }

    /// An API token with `role`, created by the admin.
    pub async fn token(&self, role: &str) -> String {
        let mut admin = self.login("admin", STRONG).await;
        let r = admin
            .send(
                "POST",
                "/v1/tokens",
                Body::Json(serde_json::json!({"name": format!("test-{role}"), "role": role})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["secret"].as_str().expect("secret").to_owned()
    }
}

/// A free TCP port on 127.0.0.1 (for a peer the test starts, or a server to restart on the
/// same address).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A remote-write body (snappy, protobuf) with one series `name{labels}` and one sample.
pub fn remote_write_body(
    name: &str,
    labels: &[(&str, &str)],
    value: f64,
    timestamp_ms: i64,
) -> Vec<u8> {
    use perch_remote_write::{Label, Sample, TimeSeries, WriteRequest};
    let mut all = vec![Label {
        name: "__name__".into(),
        value: name.into(),
    }];
    all.extend(labels.iter().map(|(n, v)| Label {
        name: (*n).into(),
        value: (*v).into(),
    }));
    WriteRequest {
        timeseries: vec![TimeSeries {
            labels: all,
            samples: vec![Sample {
                value,
                timestamp: timestamp_ms,
            }],
        }],
    }
    .encode_body()
}

impl Http {
    /// A new enrollment token (`POST /v1/enroll-tokens`, as an Editor or Admin): the
    /// answer's `token`, `expires_at`, `fingerprint` and `server`.
    pub async fn enroll_token(&mut self) -> serde_json::Value {
        let r = self
            .send(
                "POST",
                "/v1/enroll-tokens",
                Body::Json(serde_json::json!({})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()
    }

    /// The user `name` as `GET /v1/users` lists it (as an Admin).
    pub async fn user_record(&mut self, name: &str) -> serde_json::Value {
        let users = self.send("GET", "/v1/users", Body::None).await.json();
        users["users"]
            .as_array()
            .and_then(|all| all.iter().find(|u| u["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no user {name} in {users}"))
    }

    /// Polls an instant query (bounded) until `done` accepts its result, which it returns.
    pub async fn wait_query(
        &mut self,
        query: &str,
        within: Duration,
        done: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + within;
        loop {
            let r = self
                .send(
                    "POST",
                    "/prometheus/api/v1/query",
                    Body::Form(&[("query", query)]),
                )
                .await
                .json();
            let result = r["data"]["result"].as_array().cloned().unwrap_or_default();
            if done(&result) {
                return result;
            }
            assert!(Instant::now() < deadline, "{query}: not there in time: {r}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

impl Server {
    /// The pid of the bundled metrics engine (a `victoria-metrics` child of the server), if
    /// one runs.
    pub fn engine_pid(&self) -> Option<u32> {
        self.child_pid("victoria-metrics")
    }

    /// The pid of a child of the server whose command line matches `pattern` (pgrep -f).
    pub fn child_pid(&self, pattern: &str) -> Option<u32> {
        let out = Command::new("pgrep")
            .args(["-P", &self.child.id().to_string(), "-f", pattern])
            .output()
            .expect("pgrep");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }
}
