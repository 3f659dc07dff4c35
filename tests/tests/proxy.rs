//! The reverse proxy, end to end: the real perch-server over real TLS in front of real
//! nginx (Debian's) and a small streaming/WebSocket upstream; roles per route, identity
//! headers only Perch sets, WebSocket, a gigabyte each way with memory watched, upstreams
//! down or slow, and reloads that keep the routes when the new file is broken.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use perch_e2e::{Body, Http, Options, STRONG, Server, free_port, upstream};

/// Debian's nginx on 127.0.0.1, answering every path with the identity headers it was
/// sent, as a Grafana in auth-proxy mode would read them.
struct Nginx {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start() -> Nginx {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let d = dir.path().display();
        let conf = format!(
            r#"daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location / {{
      default_type text/plain;
      return 200 "path=$request_uri user=$http_x_webauth_user role=$http_x_webauth_role xff=$http_x_forwarded_for proto=$http_x_forwarded_proto forwarded=$http_forwarded cookie=$http_cookie auth=$http_authorization\n";
    }}
  }}
}}
"#
        );
        let file = dir.path().join("nginx.conf");
        std::fs::write(&file, conf).expect("write nginx.conf");
        let child = Command::new("nginx")
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx from Debian (apt-get install nginx-light)");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_routes(dir: &Path, text: &str) -> PathBuf {
    let file = dir.join("perch.toml");
    std::fs::write(&file, text).expect("write routes");
    file
}

fn route(prefix: &str, upstream: SocketAddr, extra: &str) -> String {
    format!("[[route]]\nprefix = \"{prefix}\"\nupstream = \"http://{upstream}\"\n{extra}\n")
}

fn start(routes: &str) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_routes(dir.path(), routes);
    let server =
        Server::start_with_admin(Options::default().arg(format!("--config={}", file.display())));
    (server, dir)
}

async fn tls(
    server: &Server,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let config = perch_e2e::client_config(&server.ca_file(), &[alpn]);
    perch_e2e::connect(server.https, "localhost", config)
        .await
        .expect("TLS to perch-server")
}

const IDENTITY: &str = "identity_header = \"X-WEBAUTH-USER\"\nrole_header = \"X-WEBAUTH-ROLE\"";

#[tokio::test]
async fn each_role_against_each_route_and_identity_only_from_perch() {
    let nginx = Nginx::start();
    let routes = [
        route(
            "/pub/",
            nginx.addr,
            &format!("role = \"public\"\n{IDENTITY}"),
        ),
        route("/view/", nginx.addr, IDENTITY),
        route(
            "/edit/",
            nginx.addr,
            &format!("role = \"editor\"\n{IDENTITY}"),
        ),
        route(
            "/adm/",
            nginx.addr,
            &format!("role = \"admin\"\nstrip_prefix = true\n{IDENTITY}"),
        ),
    ]
    .concat();
    let (server, _dir) = start(&routes);

    let mut viewer = server.user("vera", "viewer").await;
    let mut editor = server.user("eddie", "editor").await;
    let mut admin = server.login("admin", STRONG).await;
    let mut token = server.with_token("viewer").await;
    let mut nobody = Http::new(&server);
    let spoof = vec![
        ("X-WEBAUTH-USER".to_owned(), "admin".to_owned()),
        ("x-webauth-role".to_owned(), "Admin".to_owned()),
        ("X-Forwarded-For".to_owned(), "6.6.6.6".to_owned()),
        ("Forwarded".to_owned(), "for=6.6.6.6".to_owned()),
    ];
    for client in [
        &mut viewer,
        &mut editor,
        &mut admin,
        &mut token,
        &mut nobody,
    ] {
        client.extra_headers = spoof.clone();
    }

    // Who gets what: 200 through, 403 too low a role, 401 for nobody (not a browser).
    let expected = [
        ("/pub/x", [200, 200, 200, 200, 200]),
        ("/view/x", [200, 200, 200, 200, 401]),
        ("/edit/x", [403, 200, 200, 403, 401]),
        ("/adm/x", [403, 403, 200, 403, 401]),
    ];
    for (path, statuses) in expected {
        for (i, client) in [
            &mut viewer,
            &mut editor,
            &mut admin,
            &mut token,
            &mut nobody,
        ]
        .into_iter()
        .enumerate()
        {
            let r = client.send("GET", path, Body::None).await;
            assert_eq!(r.status, statuses[i], "client {i} on {path}: {}", r.text());
            let body = r.text();
            if r.status == 200 {
                // The spoofed identity never reaches the upstream; Perch's does.
                assert!(!body.contains("6.6.6.6"), "{body}");
                assert!(body.contains("xff=127.0.0.1 proto=https"), "{body}");
                assert!(
                    body.contains("forwarded=for=127.0.0.1;proto=https"),
                    "{body}"
                );
                let want = match i {
                    0 => "user=vera role=Viewer",
                    1 => "user=eddie role=Editor",
                    2 => "user=admin role=Admin",
                    3 => "user=token:test-viewer role=Viewer",
                    _ => "user= role= ",
                };
                assert!(body.contains(want), "client {i} on {path}: {body}");
                // Perch's session cookie and token stay with Perch.
                assert!(!body.contains("perch_"), "{body}");
            } else {
                assert!(!body.contains("path="), "refused, yet forwarded: {body}");
            }
        }
    }

    // strip_prefix: the admin route's upstream sees the path without /adm.
    let r = admin.send("GET", "/adm/deep/x?q=1", Body::None).await;
    assert!(r.text().starts_with("path=/deep/x?q=1 "), "{}", r.text());
    let r = viewer.send("GET", "/view/deep/x?q=1", Body::None).await;
    assert!(
        r.text().starts_with("path=/view/deep/x?q=1 "),
        "{}",
        r.text()
    );

    // The tool's own cookies and credentials pass; Perch's do not.
    viewer
        .cookies
        .push(("grafana_session".into(), "g-123".into()));
    viewer.extra_headers = Vec::new();
    let r = viewer.send("GET", "/view/c", Body::None).await;
    assert!(
        r.text().contains("cookie=grafana_session=g-123 "),
        "{}",
        r.text()
    );

    // A browser without a session goes to the login page and comes back after it.
    let mut browser = Http::new(&server);
    browser.extra_headers = vec![("accept".into(), "text/html".into())];
    let r = browser.send("GET", "/view/d/abc?orgId=1", Body::None).await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some("/login?next=%2Fview%2Fd%2Fabc%3ForgId%3D1")
    );

    // The prefix without its slash is redirected; unknown prefixes are 404; Perch's own
    // paths are still Perch's; dot segments are refused.
    let r = viewer.send("GET", "/view?x=1", Body::None).await;
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("/view/?x=1"));
    assert_eq!(viewer.send("GET", "/nope/x", Body::None).await.status, 404);
    assert_eq!(viewer.send("GET", "/v1/me", Body::None).await.status, 200);
    let r = viewer.send("GET", "/pub/%2e%2e/adm/x", Body::None).await;
    assert_eq!(r.status, 400, "{}", r.text());

    // A state change with a session needs this site's origin (the client sends it).
    let r = editor.send("POST", "/edit/save", Body::None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    editor.extra_headers = vec![("origin".into(), "https://evil.example".into())];
    let r = editor.send("POST", "/edit/save", Body::None).await;
    assert_eq!(r.status, 403, "{}", r.text());

    // Per-route counts and upstream health are in /metrics.
    let metrics = admin.send("GET", "/metrics", Body::None).await.text();
    has_lines(
        &metrics,
        &[
            r#"perch_proxy_requests_total{route="view",status="200"}"#,
            r#"perch_proxy_requests_total{route="adm",status="403"}"#,
            r#"perch_proxy_request_duration_seconds_count{route="view"}"#,
            r#"perch_proxy_upstream_up{route="view"} 1"#,
        ],
    );
}

/// Asserts that `text` contains each of `wanted`.
fn has_lines(text: &str, wanted: &[&str]) {
    for w in wanted {
        assert!(text.contains(w), "no {w} in:\n{text}");
    }
}

#[tokio::test]
async fn websocket_echo_passes_through() {
    use tokio::io::AsyncWriteExt;
    use tokio::io::{AsyncBufReadExt, BufReader};

    let up = upstream::start().await;
    let (server, _dir) = start(&route("/live/", up, ""));
    let token = server.token("viewer").await;

    let mut io = BufReader::new(tls(&server, b"http/1.1").await);
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let request = format!(
        "GET /live/ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    io.get_mut().write_all(request.as_bytes()).await.unwrap();
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(10), io.read_line(&mut line))
            .await
            .expect("handshake answer in time")
            .unwrap();
        assert!(n > 0, "closed during the handshake: {head}");
        if line == "\r\n" {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    assert!(
        head.contains(&format!(
            "sec-websocket-accept: {}",
            upstream::websocket_accept(key.as_bytes()).to_ascii_lowercase()
        )),
        "{head}"
    );
    for (i, message) in ["hello", &"x".repeat(70_000), "bye"].iter().enumerate() {
        let mask = [1, 2, 3, i as u8];
        io.get_mut()
            .write_all(&upstream::frame(0x1, message.as_bytes(), Some(mask)))
            .await
            .unwrap();
        let (opcode, payload) =
            tokio::time::timeout(Duration::from_secs(10), upstream::read_frame(&mut io))
                .await
                .expect("echo in time")
                .unwrap();
        assert_eq!(opcode, 0x1);
        assert_eq!(payload, message.as_bytes());
    }
    io.get_mut()
        .write_all(&upstream::frame(0x8, &[], Some([9, 9, 9, 9])))
        .await
        .unwrap();
    let (opcode, _) = upstream::read_frame(&mut io).await.unwrap();
    assert_eq!(opcode, 0x8);

    // Without a token, no upgrade: the upstream never sees the request.
    let mut io = BufReader::new(tls(&server, b"http/1.1").await);
    let request = format!(
        "GET /live/ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
    );
    io.get_mut().write_all(request.as_bytes()).await.unwrap();
    let mut status = String::new();
    io.read_line(&mut status).await.unwrap();
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Samples a process's resident memory every 50 ms until dropped; returns the peak.
struct RssWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl RssWatch {
    fn start(pid: u32) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                std::thread::sleep(Duration::from_millis(50));
            }
            peak
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    fn peak(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().map_or(0, |t| t.join().unwrap_or(0))
    }
}

/// A request body of `left` bytes, made as it is sent.
struct Generated {
    left: u64,
    chunk: bytes::Bytes,
}

impl hyper::body::Body for Generated {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = self.left.min(self.chunk.len() as u64);
        self.left -= n;
        let data = self.chunk.slice(..n as usize);
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(data))))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.left)
    }
}

const GIB: u64 = 1 << 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gigabyte_each_way_streams_with_flat_memory() {
    use http_body_util::BodyExt;
    use hyper_util::rt::TokioIo;

    let up = upstream::start().await;
    let (server, _dir) = start(&route("/files/", up, ""));
    let token = server.token("editor").await;
    let pid = server.child.id();

    // Warm up (pools, buffers), then take the baseline.
    let mut http = Http::new(&server);
    http.bearer = Some(token.clone());
    let r = http
        .send("GET", "/files/source?bytes=1048576", Body::None)
        .await;
    assert_eq!(r.body.len(), 1 << 20);
    let before = rss_kib(pid);
    let watch = RssWatch::start(pid);
    let started = Instant::now();

    // h2 both ways, one connection: the upload and the download at once.
    let stream = tls(&server, b"h2").await;
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(conn);
    let chunk: bytes::Bytes = vec![b'u'; 256 * 1024].into();
    let upload = http::Request::post(format!(
        "https://localhost:{}/files/sink",
        server.https.port()
    ))
    .header("authorization", format!("Bearer {token}"))
    .header("content-length", GIB.to_string())
    .body(Generated { left: GIB, chunk })
    .unwrap();
    let download = http::Request::get(format!(
        "https://localhost:{}/files/source?bytes={GIB}",
        server.https.port()
    ))
    .header("authorization", format!("Bearer {token}"))
    .body(Generated {
        left: 0,
        chunk: bytes::Bytes::new(),
    })
    .unwrap();
    let mut down_sender = sender.clone();
    let download = tokio::spawn(async move {
        let resp = down_sender.send_request(download).await.expect("download");
        assert_eq!(resp.status(), 200);
        let mut body = resp.into_body();
        let mut got: u64 = 0;
        while let Some(frame) = body.frame().await {
            if let Some(data) = frame.expect("download frame").data_ref() {
                got += data.len() as u64;
            }
        }
        got
    });
    let resp = sender.send_request(upload).await.expect("upload");
    assert_eq!(resp.status(), 200);
    let text = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(String::from_utf8_lossy(&text), format!("received {GIB}\n"));
    let got = tokio::time::timeout(Duration::from_secs(600), download)
        .await
        .expect("download in time")
        .unwrap();
    assert_eq!(got, GIB);
    let elapsed = started.elapsed();
    let peak = watch.peak();
    eprintln!(
        "2 GiB through the proxy in {:.1} s; perch-server RSS {} KiB before, {} KiB at peak",
        elapsed.as_secs_f64(),
        before,
        peak
    );
    // Flat: a gigabyte each way moves through buffers of a few MiB, not into memory.
    assert!(
        peak < before + 64 * 1024,
        "perch-server grew from {before} KiB to {peak} KiB"
    );
}

#[tokio::test]
async fn upstream_down_or_slow_gets_a_page_naming_it() {
    let up = upstream::start().await;
    let closed = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let routes = [
        route("/gone/", closed, "name = \"alertmanager\""),
        route("/late/", up, "name = \"status-page\"\ntimeout = \"1s\""),
    ]
    .concat();
    let (server, _dir) = start(&routes);
    let mut browser = server.login("admin", STRONG).await;
    browser.extra_headers = vec![("accept".into(), "text/html".into())];

    let r = browser.send("GET", "/gone/", Body::None).await;
    assert_eq!(r.status, 502);
    let page = r.text();
    // The page says it as a sentence: the route's name starts it.
    assert!(
        page.contains("Alertmanager cannot be reached: connection refused."),
        "{page}"
    );
    assert!(
        !page.contains(&closed.to_string()),
        "the address leaked: {page}"
    );

    let started = Instant::now();
    let r = browser.send("GET", "/late/slow", Body::None).await;
    assert_eq!(r.status, 504);
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(
        r.text().contains("status-page did not answer within 1 s"),
        "{}",
        r.text()
    );

    // Scripts get JSON.
    let mut api = server.with_token("viewer").await;
    let r = api.send("GET", "/gone/x", Body::None).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["code"], "upstream_unavailable");

    let metrics = server
        .login("admin", STRONG)
        .await
        .send("GET", "/metrics", Body::None)
        .await
        .text();
    has_lines(
        &metrics,
        &[
            r#"perch_proxy_requests_total{route="alertmanager",status="502"}"#,
            r#"perch_proxy_upstream_up{route="alertmanager"} 0"#,
            r#"perch_proxy_requests_total{route="status-page",status="504"}"#,
        ],
    );
}

#[tokio::test]
async fn sighup_reloads_and_a_broken_file_keeps_the_routes() {
    let nginx = Nginx::start();
    let (server, dir) = start(&route("/one/", nginx.addr, ""));
    let mut admin = server.login("admin", STRONG).await;
    assert_eq!(admin.send("GET", "/one/x", Body::None).await.status, 200);
    assert_eq!(admin.send("GET", "/two/x", Body::None).await.status, 404);

    let reloads = |text: &str, outcome: &str| -> u64 {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "perch_proxy_config_reloads_total{{reason=\"{outcome}\"}} "
                ))
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    async fn wait_reloads(admin: &mut Http, f: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = admin.send("GET", "/metrics", Body::None).await.text();
            if f(&text) {
                return;
            }
            assert!(Instant::now() < deadline, "no reload seen:\n{text}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    write_routes(dir.path(), &route("/two/", nginx.addr, ""));
    server.signal("HUP");
    wait_reloads(&mut admin, |t| reloads(t, "ok") == 1).await;
    assert_eq!(admin.send("GET", "/two/x", Body::None).await.status, 200);
    assert_eq!(admin.send("GET", "/one/x", Body::None).await.status, 404);

    // A broken file (a prefix that would shadow Perch's API) changes nothing.
    write_routes(
        dir.path(),
        &format!(
            "{}{}",
            route("/three/", nginx.addr, ""),
            route("/v1/", nginx.addr, "")
        ),
    );
    server.signal("HUP");
    wait_reloads(&mut admin, |t| reloads(t, "error") == 1).await;
    assert_eq!(admin.send("GET", "/two/x", Body::None).await.status, 200);
    assert_eq!(admin.send("GET", "/three/x", Body::None).await.status, 404);
    assert!(
        server
            .wait_for_log("/v1/ is Perch's own", Duration::from_secs(5))
            .is_some(),
        "the error is logged"
    );
}

#[test]
fn a_broken_file_at_start_stops_the_server_naming_the_fault() {
    let data = tempfile::tempdir().unwrap();
    let file = write_routes(
        data.path(),
        "[[route]]\nprefix = \"/graph/\"\nupstream = \"http://127.0.0.1:3000\"\nrole = \"owner\"\n",
    );
    let exited = Server::run_to_exit(
        data.path(),
        Options::default().arg(format!("--config={}", file.display())),
    );
    assert_eq!(exited.status.code(), Some(2), "{exited:?}");
    assert!(
        exited.stderr.contains(
            "route 1 (/graph/): role 'owner' is not one of public, viewer, editor, admin"
        ),
        "{}",
        exited.stderr
    );
}

#[tokio::test]
async fn the_compose_routes_file_is_valid() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker/routes.toml");
    let server =
        Server::start_with_admin(Options::default().arg(format!("--config={}", file.display())));
    let mut admin = server.login("admin", STRONG).await;
    let r = admin.send("GET", "/graph", Body::None).await;
    assert_eq!(r.status, 308, "{}", r.text());
    assert_eq!(r.header("location"), Some("/graph/"));
}

/// HEAD through a proxied route: the upstream's head, no body, over HTTP/1.1 and h2.
#[tokio::test]
async fn head_through_a_proxied_route_has_no_body_over_both_protocols() {
    let up = upstream::start().await;
    let (server, _dir) = start(&route("/up/", up, "role = \"public\""));
    let h2 = tls(&server, b"h2").await;
    let head = perch_e2e::send_h2(h2, http::Method::HEAD, "/up/x")
        .await
        .unwrap_or_else(|e| panic!("HEAD over h2: {e:?}"));
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD over h2 has a body");
    let h1 = tls(&server, b"http/1.1").await;
    let (got, mut sender) = perch_e2e::get(h1, "/up/x").await;
    assert_eq!(got.status, 200);
    assert!(String::from_utf8_lossy(&got.body).starts_with("GET /up/x"));
    let head = perch_e2e::send_h1_method(&mut sender, http::Method::HEAD, "/up/x", None)
        .await
        .unwrap_or_else(|e| panic!("HEAD over HTTP/1.1: {e:?}"));
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD over HTTP/1.1 has a body");
}

/// One raw HTTP/1.1 request over TLS (`Connection: close`): the status and the whole answer.
async fn raw(server: &Server, head: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tls = tls(server, b"http/1.1").await;
    tls.write_all(head.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out)).await;
    let out = String::from_utf8_lossy(&out).into_owned();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {out}"));
    (status, out)
}

/// Identity headers spelled with `_` (as CGI, WSGI, PHP and nginx with
/// `underscores_in_headers` read them) never reach the upstream; paths that an upstream
/// could resolve outside the route's prefix are refused with 400.
#[tokio::test]
async fn underscored_identity_headers_and_evasive_paths_do_not_pass() {
    let up = upstream::start().await;
    let (server, _dir) = start(&route(
        "/up/",
        up,
        &format!("role = \"public\"\n{IDENTITY}"),
    ));
    let (status, answer) = raw(
        &server,
        "GET /up/echo HTTP/1.1\r\nHost: localhost\r\nX_WEBAUTH_USER: admin\r\n\
         X_WEBAUTH_ROLE: Admin\r\nX_Forwarded_For: 10.9.8.7\r\nX_Real_IP: 10.9.8.7\r\n\
         X_Custom: kept\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let echoed = answer.to_ascii_lowercase();
    for gone in [
        "x_webauth_user",
        "x_webauth_role",
        "x_forwarded_for",
        "x_real_ip",
        "10.9.8.7",
    ] {
        assert!(
            !echoed.contains(gone),
            "{gone} reached the upstream: {answer}"
        );
    }
    assert!(echoed.contains("x_custom: kept"), "{answer}");
    for path in [
        "/up/a%2fb",
        "/up/..;/v1/users",
        "/up/%2e%2e/v1/users",
        "/up/%252e%252e/v1/users",
        "/up/a%5cb",
    ] {
        let (status, answer) = raw(
            &server,
            &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert!(
            !answer.contains("GET /"),
            "{path} reached the upstream: {answer}"
        );
    }
}
