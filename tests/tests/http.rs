//! The request stack against the real binary: headers, redirects, limits, logs, shutdown.

use std::time::{Duration, Instant};

use perch_e2e::{
    Options, Server, binary, client_config, connect, get, get_h2, send_h1_method, send_h2,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn every_response_carries_the_security_headers_and_is_logged_without_query() {
    let server = Server::start(Options::default());
    let config = client_config(&server.ca_file(), &[b"h2"]);
    for path in ["/v1/readyz", "/nope?token=s3cret"] {
        let tls = connect(server.https, "localhost", config.clone())
            .await
            .unwrap();
        let reply = get_h2(tls, path).await;
        assert_eq!(
            reply.header("strict-transport-security"),
            Some("max-age=31536000")
        );
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("x-frame-options"), Some("DENY"));
        assert_eq!(reply.header("referrer-policy"), Some("same-origin"));
        let csp = reply.header("content-security-policy").unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
    }
    let line = server
        .wait_for_log("\"path\":\"/nope\"", Duration::from_secs(3))
        .expect("access log line");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["status"], 404);
    assert_eq!(v["method"], "GET");
    assert_eq!(v["client"], "127.0.0.1");
    assert_eq!(v["proto"], "HTTP/2");
    assert!(v["time"].is_string() && v["duration_ms"].is_number() && v["bytes"].is_number());
    assert!(
        !server.log().iter().any(|l| l.contains("s3cret")),
        "query string leaked into logs"
    );
}

#[tokio::test]
async fn the_access_log_file_is_created_0640() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("access.log");
    let server = Server::start(
        Options::default()
            .arg("--access-log-file")
            .arg(file.to_str().unwrap()),
    );
    let tls = connect(
        server.https,
        "localhost",
        client_config(&server.ca_file(), &[b"http/1.1"]),
    )
    .await
    .unwrap();
    let (reply, _conn) = get(tls, "/v1/readyz").await;
    assert_eq!(reply.status, 200);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !std::fs::read_to_string(&file)
        .unwrap_or_default()
        .contains("/v1/readyz")
    {
        assert!(Instant::now() < deadline, "access log file not written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o640
    );
}

#[tokio::test]
async fn plain_http_redirects_to_https_with_path_and_query() {
    let server = Server::start(Options::default());
    let http = server.http.expect("redirect listener");
    let mut tcp = tokio::net::TcpStream::connect(http).await.unwrap();
    tcp.write_all(
        b"GET /some/page?x=1 HTTP/1.1\r\nHost: perch.example.test\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 308"), "{out}");
    let want = format!(
        "location: https://perch.example.test:{}/some/page?x=1\r\n",
        server.https.port()
    );
    assert!(out.to_ascii_lowercase().contains(&want), "{out}");
    assert!(
        out.to_ascii_lowercase()
            .contains("strict-transport-security")
    );
}

#[tokio::test]
async fn metrics_show_requests_connections_and_certificate_expiry() {
    let server = Server::start_with_admin(Options::default());
    let token = server.token("viewer").await;
    let config = client_config(&server.ca_file(), &[b"http/1.1"]);
    let tls = connect(server.https, "localhost", config).await.unwrap();
    let (_, mut conn) = get(tls, "/v1/readyz").await;
    // A failed handshake: a plain-text client on the TLS port.
    let mut junk = tokio::net::TcpStream::connect(server.https).await.unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let _ = junk.read(&mut [0u8; 64]).await;
    let reply = perch_e2e::send_h1_with(&mut conn, "/metrics", Some(&token))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    let text = String::from_utf8(reply.body.to_vec()).unwrap();
    assert!(
        text.contains(r#"perch_http_requests_total{route="readyz",status="200"}"#),
        "{text}"
    );
    assert!(text.contains("perch_open_connections 1"), "{text}");
    assert!(
        text.contains("perch_tls_handshake_failures_total{reason="),
        "{text}"
    );
    assert!(text.contains(r#"perch_build_info{version=""#), "{text}");
    let leaf = perch_certs::CertDir::new(&server.cert_dir)
        .load(Default::default())
        .unwrap();
    let expiry = format!(
        "perch_tls_certificate_expiry_timestamp_seconds {}",
        leaf.leaf.not_after
    );
    assert!(text.contains(&expiry), "{text}");
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let server = Server::start(Options::default().arg("--max-header-bytes").arg("8192"));
    let tls = connect(
        server.https,
        "localhost",
        client_config(&server.ca_file(), &[b"http/1.1"]),
    )
    .await
    .unwrap();
    let mut tls = tls;
    let big = "a".repeat(20_000);
    let req = format!("GET /v1/readyz HTTP/1.1\r\nHost: localhost\r\nX-Big: {big}\r\n\r\n");
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut out)).await;
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 431"), "{out}");
}

#[tokio::test]
async fn slow_handshakes_and_slow_headers_are_cut_off() {
    let server = Server::start_with_admin(
        Options::default()
            .arg("--handshake-timeout")
            .arg("1s")
            .arg("--header-read-timeout")
            .arg("1s"),
    );
    let token = server.token("viewer").await;
    // No ClientHello at all.
    let mut idle = tokio::net::TcpStream::connect(server.https).await.unwrap();
    let start = Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut [0u8; 16])).await;
    assert!(
        matches!(n, Ok(Ok(0)) | Ok(Err(_))),
        "connection not closed: {n:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(3));

    // Half a request head, never finished.
    let mut tls = connect(
        server.https,
        "localhost",
        client_config(&server.ca_file(), &[b"http/1.1"]),
    )
    .await
    .unwrap();
    tls.write_all(b"GET /v1/readyz HTTP/1.1\r\nHost: loc")
        .await
        .unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "slow request head not cut off");
    assert!(start.elapsed() < Duration::from_secs(3));

    let tls = connect(
        server.https,
        "localhost",
        client_config(&server.ca_file(), &[b"http/1.1"]),
    )
    .await
    .unwrap();
    let (_, mut conn) = get(tls, "/v1/readyz").await;
    let text = perch_e2e::send_h1_with(&mut conn, "/metrics", Some(&token))
        .await
        .unwrap();
    let text = String::from_utf8(text.body.to_vec()).unwrap();
    assert!(
        text.contains(r#"perch_tls_handshake_failures_total{reason="timeout"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn the_connection_cap_holds_new_connections_until_one_closes() {
    let server = Server::start(
        Options {
            no_http: true,
            ..Options::default()
        }
        .arg("--max-connections")
        .arg("2")
        .arg("--max-connections-per-address")
        .arg("3"),
    );
    let config = client_config(&server.ca_file(), &[b"http/1.1"]);
    let a = connect(server.https, "localhost", config.clone())
        .await
        .unwrap();
    let (ra, conn_a) = get(a, "/v1/readyz").await;
    let b = connect(server.https, "localhost", config.clone())
        .await
        .unwrap();
    let (rb, _conn_b) = get(b, "/v1/readyz").await;
    assert_eq!((ra.status, rb.status), (200, 200));
    let third = tokio::spawn(connect(server.https, "localhost", config));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        !third.is_finished(),
        "a third connection was served past the cap of 2"
    );
    drop(conn_a);
    let served = tokio::time::timeout(Duration::from_secs(5), third).await;
    assert!(
        matches!(served, Ok(Ok(Ok(_)))),
        "the third connection was not served after one closed"
    );
}

#[tokio::test]
async fn sigterm_finishes_a_request_in_flight_then_exits_0() {
    let mut server = Server::start(Options::default());
    let mut tls = connect(
        server.https,
        "localhost",
        client_config(&server.ca_file(), &[b"http/1.1"]),
    )
    .await
    .unwrap();
    // A request whose body is still arriving when SIGTERM comes.
    tls.write_all(b"POST /v1/readyz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n01")
        .await
        .unwrap();
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.signal("TERM");
    assert!(
        server
            .wait_for_log("shutting down", Duration::from_secs(3))
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );
    // New connections are no longer accepted.
    assert!(
        tokio::net::TcpStream::connect(server.https).await.is_err(),
        "still accepting after SIGTERM"
    );
    tls.write_all(b"23456789").await.unwrap();
    tls.flush().await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut out)).await;
    let out = String::from_utf8_lossy(&out);
    assert!(
        out.starts_with("HTTP/1.1 405"),
        "in-flight request not answered: {out}"
    );
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("exited after draining");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn healthcheck_subcommand_reports_ready_and_not_ready() {
    let mut server = Server::start(Options::default());
    let run = |server: &Server| {
        std::process::Command::new(binary("perch-server"))
            .arg("healthcheck")
            .arg("--data-dir")
            .arg(server.data.path())
            .arg("--cert-dir")
            .arg(&server.cert_dir)
            .arg("--listen")
            .arg(format!("0.0.0.0:{}", server.https.port()))
            .output()
            .unwrap()
    };
    let readyz_lines = |server: &Server| {
        // The access log is written in batches every 100 ms.
        std::thread::sleep(Duration::from_millis(400));
        server
            .log()
            .iter()
            .filter(|l| l.contains("\"path\":\"/v1/readyz\""))
            .count()
    };
    let before = tokio::task::block_in_place(|| readyz_lines(&server));
    let ok = tokio::task::block_in_place(|| run(&server));
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Docker's probes stay out of the access log; other readiness checks do not.
    assert_eq!(
        tokio::task::block_in_place(|| readyz_lines(&server)),
        before
    );
    let mut http = perch_e2e::Http::new(&server);
    assert_eq!(
        http.send("GET", "/v1/readyz", perch_e2e::Body::None)
            .await
            .status,
        200
    );
    assert_eq!(
        tokio::task::block_in_place(|| readyz_lines(&server)),
        before + 1
    );
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(5)).expect("exit");
    let down = tokio::task::block_in_place(|| run(&server));
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("not ready"));
}

/// HEAD is answered like GET without a body, over HTTP/1.1 and h2 (an h2 answer to HEAD that
/// carries a body is a protocol error for the client).
#[tokio::test]
async fn head_answers_like_get_without_a_body_over_both_protocols() {
    let server = Server::start(Options::default());
    for path in ["/v1/readyz", "/setup", "/static/perch.css"] {
        let h2 = client_config(&server.ca_file(), &[b"h2"]);
        let tls = connect(server.https, "localhost", h2.clone())
            .await
            .unwrap();
        let got = get_h2(tls, path).await;
        assert!(!got.body.is_empty(), "GET {path} has a body");
        let tls = connect(server.https, "localhost", h2).await.unwrap();
        let head = send_h2(tls, http::Method::HEAD, path)
            .await
            .unwrap_or_else(|e| panic!("HEAD {path} over h2: {e:?}"));
        assert_eq!(head.status, got.status, "HEAD {path} over h2");
        assert!(head.body.is_empty(), "HEAD {path} over h2 has a body");
        assert_eq!(
            head.header("content-type"),
            got.header("content-type"),
            "{path}"
        );

        let h1 = client_config(&server.ca_file(), &[b"http/1.1"]);
        let tls = connect(server.https, "localhost", h1).await.unwrap();
        let (_, mut sender) = get(tls, path).await;
        let head = send_h1_method(&mut sender, http::Method::HEAD, path, None)
            .await
            .unwrap_or_else(|e| panic!("HEAD {path} over HTTP/1.1: {e:?}"));
        assert_eq!(head.status, got.status, "HEAD {path} over HTTP/1.1");
        assert!(head.body.is_empty(), "HEAD {path} over HTTP/1.1 has a body");
    }
}
