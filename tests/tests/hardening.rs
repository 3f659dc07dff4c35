//! Perch tried as an attacker on the same machine or the network would: what it keeps to
//! itself on disk, what its engine takes, and how it holds up when pushed.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use perch_e2e::{Options, Server};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// The bundled engine's loopback address, read from its command line.
fn engine_addr(server: &Server) -> (u32, String) {
    let pid = server
        .engine_pid()
        .expect("victoria-metrics runs as a child");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    let addr = cmdline
        .split(|b| *b == 0)
        .find_map(|arg| arg.strip_prefix(b"-httpListenAddr="))
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .expect("-httpListenAddr");
    (pid, addr)
}

/// A plain HTTP/1.1 request to the engine on loopback; its status code.
fn engine_status(addr: &str, request: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the engine");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("write");
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).expect("status line");
    String::from_utf8_lossy(&head[9..12])
        .parse()
        .expect("status")
}

#[tokio::test]
async fn the_store_is_private_and_the_engine_takes_nothing_without_perchs_credential() {
    // An older install: the user store readable by everyone.
    let data = tempfile::tempdir().expect("tempdir");
    let db = data.path().join("perch/db");
    std::fs::create_dir_all(&db).expect("mkdir");
    for dir in [data.path().join("perch"), db.clone()] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let server = Server::start_in(data, Options::default());
    assert!(
        server
            .wait_for_log("made them private", Duration::from_secs(5))
            .is_some(),
        "the correction is logged"
    );
    let perch = server.data.path().join("perch");
    let mut files = 0;
    for dir in [
        perch.clone(),
        perch.join("db"),
        server.data.path().join("victoriametrics"),
    ] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    for entry in walk(&perch) {
        let m = mode(&entry);
        if entry.is_dir() {
            assert_eq!(m, 0o700, "{}", entry.display());
        } else {
            assert_eq!(m & 0o077, 0, "{} is {m:o}", entry.display());
            files += 1;
        }
    }
    assert!(files > 2, "the store's files were looked at");
    for entry in walk(&server.data.path().join("victoriametrics")) {
        assert_eq!(mode(&entry) & 0o077, 0, "{}", entry.display());
    }

    // Another local process writes straight to the engine: refused without the credential,
    // which is not on the engine's command line either.
    let (pid, addr) = engine_addr(&server);
    let series = "spoofed_series{node_id=\"1\",node_name=\"db1\"} 1\n";
    for path in ["/api/v1/import/prometheus", "/api/v1/write"] {
        let status = engine_status(
            &addr,
            &format!(
                "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{series}",
                series.len()
            ),
        );
        assert_eq!(status, 401, "{path}");
    }
    let status = engine_status(
        &addr,
        &format!("GET /api/v1/query?query=1 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 401, "queries too");
    let cmdline =
        String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline"))
            .into_owned();
    assert!(!cmdline.contains("httpAuth"), "{cmdline}");
    assert!(
        server
            .log()
            .iter()
            .all(|l| !l.contains("httpAuth_password")),
        "the credential is never logged"
    );
}

fn walk(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

/// Opens an h2 connection from `config`'s client that never sends a request (its driver
/// answers the server's pings); the driver's task ends when the server closes it.
async fn idle_h2(
    server: &Server,
    config: &rustls::ClientConfig,
) -> Option<tokio::task::JoinHandle<()>> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let tls = tokio::time::timeout(
        Duration::from_secs(2),
        perch_e2e::connect(server.https, "localhost", config.clone()),
    )
    .await
    .ok()?
    .ok()?;
    let (sender, conn) = hyper::client::conn::http2::handshake::<
        _,
        _,
        http_body_util::Empty<bytes::Bytes>,
    >(TokioExecutor::new(), TokioIo::new(tls))
    .await
    .ok()?;
    Some(tokio::spawn(async move {
        let _sender = sender;
        let _ = conn.await;
    }))
}

/// A client on 127.0.0.2 gets `/v1/readyz` within 2 s.
async fn ready_from_another_address(server: &Server) {
    let started = std::time::Instant::now();
    let r = perch_e2e::Http::new(server)
        .from_address("127.0.0.2")
        .send("GET", "/v1/readyz", perch_e2e::Body::None)
        .await;
    assert_eq!(r.status, 200);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_h2_connections_from_one_address_neither_starve_others_nor_stay() {
    let server = Server::start_with_admin(
        Options::default()
            .arg("--max-connections=50")
            .arg("--idle-timeout=3s"),
    );
    // Connections that never start their TLS handshake count too: they hold nothing from
    // another address either.
    let mut silent = Vec::new();
    for _ in 0..60 {
        if let Ok(tcp) = tokio::net::TcpStream::connect(server.https).await {
            silent.push(tcp);
        }
    }
    ready_from_another_address(&server).await;
    drop(silent);

    let config = perch_e2e::client_config(&server.ca_file(), &[b"h2"]);
    let mut held = Vec::new();
    for _ in 0..60 {
        if let Some(driver) = idle_h2(&server, &config).await {
            held.push(driver);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let open = held.iter().filter(|d| !d.is_finished()).count();
    // A quarter of --max-connections from one address; the rest closed at accept.
    assert!((1..=12).contains(&open), "{open} idle connections held");

    // Another client gets in at once.
    ready_from_another_address(&server).await;

    // The idle ones are closed after the timeout (with a GOAWAY), pings or not.
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    while held.iter().any(|d| !d.is_finished()) {
        assert!(
            std::time::Instant::now() < deadline,
            "idle h2 connections still open after the idle timeout"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut admin = perch_e2e::Http::new(&server).from_address("127.0.0.3");
    let r = admin
        .send(
            "POST",
            "/v1/login",
            perch_e2e::Body::Json(
                serde_json::json!({"name": "admin", "password": perch_e2e::STRONG}),
            ),
        )
        .await;
    assert_eq!(r.status, 200);
    let metrics = admin
        .send("GET", "/metrics", perch_e2e::Body::None)
        .await
        .text();
    let count = |reason: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "perch_connections_closed_total{{reason=\"{reason}\"}} "
                ))
            })
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    assert!(count("per_address_limit") >= 48, "{metrics}");
    assert!(count("idle") >= open as u64, "{metrics}");
}

/// A write that declares `length` bytes and sends `sent` of them, holding back the rest.
async fn held_upload(
    server: &Server,
    token: Option<&str>,
    length: usize,
    sent: usize,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    held_post(server, "/v1/metrics/write", token, length, sent).await
}

/// A POST to `path` that declares `length` bytes and sends `sent` of them.
async fn held_post(
    server: &Server,
    path: &str,
    token: Option<&str>,
    length: usize,
    sent: usize,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut tls = perch_e2e::connect(
        server.https,
        "localhost",
        perch_e2e::client_config(&server.ca_file(), &[b"http/1.1"]),
    )
    .await
    .expect("connect");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nContent-Length: {length}\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).await.expect("head");
    tls.write_all(&vec![b'x'; sent]).await.expect("body");
    tls.flush().await.expect("flush");
    tls
}

/// The status line and headers of the answer on `tls`, read within `within`.
async fn answer_head(
    tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    within: Duration,
) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let read = async {
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if tls.read(&mut byte).await.ok()? == 0 {
                return None;
            }
            head.push(byte[0]);
        }
        Some(())
    };
    tokio::time::timeout(within, read).await.ok()??;
    Some(String::from_utf8_lossy(&head).into_owned())
}

#[tokio::test]
async fn bodies_are_read_only_after_admission_and_within_the_body_budget() {
    use tokio::io::AsyncWriteExt;
    let server = Server::start_with_admin(Options::default().arg("--max-body-memory-mib=8"));
    const MIB: usize = 1024 * 1024;

    // Anonymous: 401 at once, without waiting for the body.
    let mut anonymous = held_upload(&server, None, 8 * MIB, 1024).await;
    let head = answer_head(&mut anonymous, Duration::from_secs(3))
        .await
        .expect("an answer before the body");
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");

    // With a token: the first body holds most of the 8 MiB budget while it arrives...
    let token = server.token("editor").await;
    let mut first = held_upload(&server, Some(&token), 6 * MIB, 1024).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...so a second one waits a second for room, then is told to come back.
    let mut second = held_upload(&server, Some(&token), 6 * MIB, 1024).await;
    let head = answer_head(&mut second, Duration::from_secs(5))
        .await
        .expect("an answer");
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );

    // The first one is read to its end (garbage, so 400), and gives its room back.
    first
        .write_all(&vec![b'x'; 6 * MIB - 1024])
        .await
        .expect("the rest");
    let head = answer_head(&mut first, Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("no answer:\n{}", server.log().join("\n")));
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let mut third = held_upload(&server, Some(&token), 6 * MIB, 6 * MIB).await;
    let head = answer_head(&mut third, Duration::from_secs(10))
        .await
        .expect("an answer");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");

    // A declared length over the route's limit: 413 before anything is read.
    let mut huge = held_upload(&server, Some(&token), 9 * MIB, 0).await;
    let head = answer_head(&mut huge, Duration::from_secs(3))
        .await
        .expect("an answer");
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
}

/// A small tmpfs, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount (util-linux)");
        assert!(status.success(), "mounting a tmpfs needs root, as CI runs");
        Self(dir)
    }

    /// Fills the file system to its last byte with `filler`.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.0.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        let mut byte = [0u8; 1];
        while file.write_all(&byte).is_ok() {
            byte[0] = 1;
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

async fn try_login(server: &Server, password: &str) -> perch_e2e::Reply {
    perch_e2e::Http::new(server)
        .send(
            "POST",
            "/v1/login",
            perch_e2e::Body::Json(serde_json::json!({"name": "admin", "password": password})),
        )
        .await
}

#[tokio::test]
async fn a_full_disk_is_refused_with_503_reported_and_recovered_from_without_a_restart() {
    use perch_e2e::STRONG;
    let disk = Tmpfs::mount("48m");
    let start = |data: tempfile::TempDir| {
        let file = disk.0.path().join("admin-password");
        std::fs::write(&file, format!("{STRONG}\n")).expect("write");
        Server::start_in(
            data,
            Options::default()
                .arg(format!("--admin-password-file={}", file.display()))
                .arg("--log=info,perch_auth=debug"),
        )
    };
    let mut server = start(tempfile::tempdir_in(disk.0.path()).expect("data dir"));

    // Every refusal is on record before it goes out: five failures, then kill -9.
    for _ in 0..5 {
        assert_eq!(try_login(&server, "not-the-password-1").await.status, 401);
    }
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(5)).expect("killed");
    let data = std::mem::replace(&mut server.data, tempfile::tempdir().expect("tempdir"));
    let server = start(data);
    let mut admin = server.login("admin", STRONG).await;
    let audit = admin
        .send("GET", "/v1/audit?kind=login_failure", perch_e2e::Body::None)
        .await
        .json();
    assert_eq!(audit["events"].as_array().map(Vec::len), Some(5), "{audit}");

    // The disk fills up. The store has room left in the space it already holds, so
    // writes go on for a while; then they are refused with what is wrong, never a 500.
    let filler = disk.fill();
    let mut refused = None;
    for i in 0..5000 {
        let r = admin
            .send(
                "POST",
                "/v1/tokens",
                perch_e2e::Body::Json(
                    serde_json::json!({"name": format!("filling-the-disk-{i:0>40}"), "role": "viewer"}),
                ),
            )
            .await;
        assert_ne!(r.status, 500, "{}", r.text());
        if r.status != 201 {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("writes on a full disk were answered as done");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["code"], "store_unavailable", "{}", r.text());
    assert!(r.text().contains("no space left"), "{}", r.text());
    assert!(r.header("retry-after").is_some());
    let r = try_login(&server, STRONG).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (503, Some("store_unavailable")),
        "{}",
        r.text()
    );
    let ready = perch_e2e::Http::new(&server)
        .send("GET", "/v1/readyz", perch_e2e::Body::None)
        .await;
    assert_eq!(ready.status, 503, "{}", ready.text());
    let store = ready.json()["checks"]["store"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(
        store.starts_with("unavailable") && store.contains("full"),
        "{store}"
    );

    // Space comes back: so does Perch, without a restart.
    std::fs::remove_file(filler).expect("free the space");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = try_login(&server, STRONG).await;
        if r.status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no recovery after space returned: {} {}\n{}",
            r.status,
            r.text(),
            server.log().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ready = perch_e2e::Http::new(&server)
        .send("GET", "/v1/readyz", perch_e2e::Body::None)
        .await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    let mut admin = server.login("admin", STRONG).await;
    let metrics = admin
        .send("GET", "/metrics", perch_e2e::Body::None)
        .await
        .text();
    assert!(
        metrics.contains("perch_store_errors_total{reason=\"no_space\"}")
            || metrics.contains("perch_store_errors_total{reason=\"unavailable\"}"),
        "{metrics}"
    );
}

/// A remote-write body with `count` series `flood_series{i="<from + k>"}`, one sample each.
fn many_series(from: usize, count: usize) -> Vec<u8> {
    use perch_remote_write::{Label, Sample, TimeSeries, WriteRequest};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    WriteRequest {
        timeseries: (from..from + count)
            .map(|i| TimeSeries {
                labels: vec![
                    Label {
                        name: "__name__".into(),
                        value: "flood_series".into(),
                    },
                    Label {
                        name: "i".into(),
                        value: i.to_string(),
                    },
                ],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: now,
                }],
            })
            .collect(),
    }
    .encode_body()
}

#[tokio::test]
async fn a_node_cannot_create_more_new_series_an_hour_than_the_limit() {
    use perch_e2e::{Body, Http, STRONG};
    let server = Server::start_with_admin(Options::default().arg("--max-new-series-per-node=1000"));
    let mut admin = server.login("admin", STRONG).await;
    let enroll = admin.enroll_token().await["token"].clone();
    let mut machine = Http::new(&server);
    machine.bearer = enroll.as_str().map(str::to_owned);
    let r = machine
        .send(
            "POST",
            "/v1/nodes",
            Body::Json(serde_json::json!({"name": "db1"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let mut node = Http::new(&server);
    node.bearer = r.json()["token"].as_str().map(str::to_owned);
    let mut push = async |body: Vec<u8>| {
        node.send(
            "POST",
            "/v1/metrics/write",
            Body::Raw("application/x-protobuf", body),
        )
        .await
    };

    assert_eq!(push(many_series(0, 600)).await.status, 204);
    // The same series again: not new.
    assert_eq!(push(many_series(0, 600)).await.status, 204);
    // 600 more would make 1,200 new ones this hour: refused whole, naming the limit.
    let r = push(many_series(600, 600)).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (429, Some("series_limit")),
        "{}",
        r.text()
    );
    assert!(
        r.text().contains("1000") && r.text().contains("db1"),
        "{}",
        r.text()
    );
    let wait: u64 = r.header("retry-after").unwrap_or("0").parse().unwrap_or(0);
    assert!((1..=3600).contains(&wait), "Retry-After {wait}");
    // Refused, and not remembered: sent again, it is refused again.
    assert_eq!(push(many_series(600, 600)).await.status, 429);
    // Within the limit, still fine.
    assert_eq!(push(many_series(600, 400)).await.status, 204);
    assert_eq!(push(many_series(0, 1000)).await.status, 204);

    let metrics = admin.send("GET", "/metrics", Body::None).await.text();
    assert!(
        metrics.contains("perch_node_new_series_total{node_name=\"db1\"} 1000"),
        "{metrics}"
    );
    assert!(
        metrics.contains("perch_node_series_limit_refusals_total{node_name=\"db1\"} 2"),
        "{metrics}"
    );
    // The engine's own limits stand behind it.
    let (pid, _) = engine_addr(&server);
    let cmdline =
        String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline"))
            .into_owned();
    assert!(cmdline.contains("-storage.maxHourlySeries="), "{cmdline}");
    assert!(cmdline.contains("-storage.maxDailySeries="), "{cmdline}");
    assert!(
        cmdline.contains("-storage.minFreeDiskSpaceBytes="),
        "{cmdline}"
    );
}

async fn login(http: &mut perch_e2e::Http, password: &str) -> perch_e2e::Reply {
    let body = perch_e2e::Body::Json(serde_json::json!({"name": "admin", "password": password}));
    http.send("POST", "/v1/login", body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_account_guessed_from_many_addresses_is_throttled_but_its_owners_browser_gets_in() {
    use perch_e2e::{Http, STRONG};
    let server = Server::start_with_admin(Options::default());
    // The owner logged in from this browser before: it carries a device cookie.
    let mut owner = Http::new(&server);
    assert_eq!(login(&mut owner, STRONG).await.status, 200);
    assert!(owner.cookie("__Host-perch_device").is_some());

    // An attacker with many addresses, a few guesses from each.
    let mut throttled_at = None;
    'spread: for i in 0..40 {
        let mut attacker = Http::new(&server).from_address(&format!("127.0.1.{}", i + 1));
        for _ in 0..2 {
            let r = login(&mut attacker, "guess-the-admin-password-1").await;
            if r.status == 429 {
                throttled_at = Some(i);
                break 'spread;
            }
            assert_eq!(r.status, 401, "{}", r.text());
        }
    }
    let at = throttled_at.expect("the spread-out guesses were never throttled");
    assert!(at <= 12, "throttled only after {at} addresses");

    // A browser never seen before shares the account's budget, even with the password...
    let mut stranger = Http::new(&server).from_address("127.0.2.1");
    assert_eq!(login(&mut stranger, STRONG).await.status, 429);
    // ...while the owner's known browser logs in during the attack.
    let r = login(&mut owner, STRONG).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A forged device cookie is an unknown device.
    let mut forger = Http::new(&server).from_address("127.0.2.2");
    forger.extra_headers.push((
        "cookie".into(),
        "__Host-perch_device=9999999999.00000000000000000000000000000000.00".into(),
    ));
    assert_eq!(login(&mut forger, STRONG).await.status, 429);
}

#[tokio::test]
async fn a_token_made_by_a_token_dies_with_it_and_huge_passwords_are_refused_unread() {
    use perch_e2e::{Body, Http, STRONG};
    let server = Server::start_with_admin(Options::default());
    let mut admin = server.login("admin", STRONG).await;
    let r = admin
        .send(
            "POST",
            "/v1/tokens",
            Body::Json(serde_json::json!({"name": "t1", "role": "admin"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let t1_id = r.json()["token"]["id"].as_u64().expect("id");
    let mut t1 = Http::new(&server);
    t1.bearer = r.json()["secret"].as_str().map(str::to_owned);
    let r = t1
        .send(
            "POST",
            "/v1/tokens",
            Body::Json(serde_json::json!({"name": "t2", "role": "admin"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let mut t2 = Http::new(&server);
    t2.bearer = r.json()["secret"].as_str().map(str::to_owned);
    assert_eq!(t2.send("GET", "/v1/users", Body::None).await.status, 200);
    let r = admin
        .send("DELETE", &format!("/v1/tokens/{t1_id}"), Body::None)
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        t2.send("GET", "/v1/users", Body::None).await.status,
        401,
        "a token made by a revoked token still works"
    );

    // A 60 KiB password (within the body limit) of U+FDFA, which NFKC makes 18 times
    // longer: refused at once, naming the limit; the body over 64 KiB is not even read.
    let started = std::time::Instant::now();
    let r = login(&mut Http::new(&server), &"\u{FDFA}".repeat(20_000)).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("password_too_long")),
        "{}",
        r.text()
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    // A 1 MB body declared: 413 before a byte of it is sent.
    let mut huge = held_post(&server, "/v1/login", None, 1024 * 1024, 0).await;
    let head = answer_head(&mut huge, Duration::from_secs(3))
        .await
        .expect("an answer");
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
}
