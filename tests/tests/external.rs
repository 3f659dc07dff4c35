//! The external metrics engine: the real Prometheus 2.x (Debian's `prometheus`, with its
//! remote-write receiver) behind the real server, and an in-test HTTPS upstream that records
//! what reaches it (credentials Perch adds, identity headers it drops).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use perch_e2e::{Body, Http, Options, STRONG, Server, TestPki, free_port, remote_write_body};

/// A Prometheus server with the remote-write receiver on, storing in a temporary directory.
struct Prometheus {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// A standalone Alertmanager, as an operator's own, in a temporary directory.
struct Alertmanager {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    async fn start() -> Alertmanager {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: nobody\nreceivers:\n- name: nobody\n",
        )
        .expect("write");
        let port = free_port();
        let child = Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.path().display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run prometheus-alertmanager (install Debian's prometheus-alertmanager)");
        let am = Alertmanager {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(get(&am.url("/-/ready")).await, Some((200, _))) {
            assert!(Instant::now() < deadline, "alertmanager not ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        am
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Its API's answer at `path`, as JSON.
    async fn json(&self, path: &str) -> serde_json::Value {
        let (status, body) = get(&self.url(path)).await.expect("alertmanager answers");
        assert_eq!(status, 200);
        serde_json::from_slice(&body).expect("json")
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start() -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir, free_port())
    }

    fn start_in(dir: tempfile::TempDir, port: u16) -> Prometheus {
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 1m\n").expect("config");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run prometheus (install Debian's prometheus)");
        let prometheus = Prometheus { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let url = prometheus.url("/-/ready");
        let ready = std::thread::spawn(move || {
            runtime.block_on(async move {
                while Instant::now() < deadline {
                    if get(&url).await.is_some_and(|(status, _)| status == 200) {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                false
            })
        })
        .join()
        .expect("probe");
        assert!(ready, "prometheus not ready within 30 s");
        prometheus
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Stops it (SIGTERM, then SIGKILL), keeping its data directory.
    fn stop(mut self) -> (tempfile::TempDir, u16) {
        self.terminate();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        (dir, self.port)
    }

    fn terminate(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// A plain-HTTP GET: the status and the body, or `None` if nothing answered.
async fn get(url: &str) -> Option<(u16, bytes::Bytes)> {
    use http_body_util::{BodyExt, Empty};
    let client: hyper_util::client::legacy::Client<_, Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let resp = tokio::time::timeout(
        Duration::from_secs(5),
        client.get(url.parse().expect("uri")),
    )
    .await
    .ok()?
    .ok()?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    Some((status, body))
}

fn now_s() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn external_args(opts: Options, write: &str, query: &str) -> Options {
    opts.arg("--metrics-write-url")
        .arg(write)
        .arg("--metrics-query-url")
        .arg(query)
}

#[tokio::test]
async fn prometheus_as_the_external_engine_end_to_end() {
    let prometheus = Prometheus::start();
    let alertmanager = Alertmanager::start().await;
    let server = Server::start_with_admin(external_args(
        Options::default()
            .arg(format!("--alertmanager-url={}", alertmanager.url("")))
            .arg("--alert-evaluation-interval=2s"),
        &prometheus.url("/api/v1/write"),
        &prometheus.url(""),
    ));
    // Ready with the external engine, and nothing bundled.
    let ready = Http::new(&server)
        .send("GET", "/v1/readyz", Body::None)
        .await
        .json();
    assert_eq!(ready["checks"]["metrics_engine"], "ok", "{ready}");
    assert!(
        server
            .wait_for_log("using an external metrics engine", Duration::from_secs(1))
            .is_some()
    );
    assert_eq!(server.engine_pid(), None, "a bundled engine runs");
    assert!(!server.data.path().join("victoriametrics").exists());

    // Written through Perch with an Editor token...
    let mut agent = server.with_token("editor").await;
    let mut grafana = server.with_token("viewer").await;
    let now = now_s();
    let at = (now - 60) * 1000;
    let r = agent
        .send(
            "POST",
            "/v1/metrics/write",
            Body::Raw(
                "application/x-protobuf",
                remote_write_body(
                    "perch_ext_metric",
                    &[("job", "e2e"), ("instance", "a")],
                    42.5,
                    at,
                ),
            ),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = agent
        .send(
            "POST",
            "/victoriametrics/api/v1/write",
            Body::Raw(
                "application/x-protobuf",
                remote_write_body(
                    "perch_ext_metric",
                    &[("job", "e2e"), ("instance", "b")],
                    -7.25,
                    at,
                ),
            ),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());

    // ... read back through Perch, equal to what Prometheus itself holds.
    grafana
        .wait_query("perch_ext_metric", Duration::from_secs(15), |r| {
            r.len() == 2
        })
        .await;
    let query = format!("query=perch_ext_metric&time={}", now - 30);
    let r = grafana
        .send(
            "GET",
            &format!("/prometheus/api/v1/query?{query}"),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let through_perch = r.json();
    let (status, direct) = get(&prometheus.url(&format!("/api/v1/query?{query}")))
        .await
        .expect("prometheus answers");
    assert_eq!(status, 200);
    let direct: serde_json::Value = serde_json::from_slice(&direct).expect("json");
    let sorted = |v: &serde_json::Value| {
        let mut series = v["data"]["result"].as_array().cloned().unwrap_or_default();
        series.sort_by_key(|s| s["metric"]["instance"].to_string());
        series
    };
    assert_eq!(sorted(&through_perch), sorted(&direct));
    let values: Vec<String> = sorted(&direct)
        .iter()
        .map(|s| s["value"][1].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(values, ["42.5", "-7.25"]);
    // The other read endpoints, and a query posted as a form (Grafana's way).
    let r = grafana
        .send(
            "GET",
            "/prometheus/api/v1/label/instance/values",
            Body::None,
        )
        .await
        .json();
    assert_eq!(r["data"], serde_json::json!(["a", "b"]), "{r}");
    let r = grafana
        .send(
            "POST",
            "/prometheus/api/v1/query",
            Body::Form(&[
                ("query", "sum(perch_ext_metric)"),
                ("time", &(now - 30).to_string()),
            ]),
        )
        .await
        .json();
    assert_eq!(r["data"]["result"][0]["value"][1], "35.25", "{r}");
    let r = grafana
        .send("GET", "/prometheus/api/v1/status/buildinfo", Body::None)
        .await
        .json();
    assert_eq!(r["status"], "success", "{r}");
    // Prometheus's own error shape comes through.
    let r = grafana
        .send("GET", "/prometheus/api/v1/query?query=sum(", Body::None)
        .await;
    assert_eq!(
        (r.status, r.json()["errorType"].as_str()),
        (400, Some("bad_data")),
        "{}",
        r.text()
    );

    // Alerting with both outside: vmalert evaluates a rule of the operator's against
    // Prometheus, and its alert reaches the operator's Alertmanager (none is bundled), where
    // a silence made through Perch goes too.
    assert_eq!(ready["checks"]["alertmanager"], "ok", "{ready}");
    std::fs::write(
        server.data.path().join("alerts").join("ext.yml"),
        "groups:\n- name: ext\n  rules:\n  - alert: ExtHigh\n    expr: perch_ext_metric > 40\n",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let alerts = alertmanager.json("/api/v2/alerts").await;
        if alerts
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["labels"]["alertname"] == "ExtHigh" && a["labels"]["instance"] == "a")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ExtHigh did not reach the external Alertmanager: {alerts}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut editor = server.with_token("editor").await;
    let r = editor
        .send(
            "POST",
            "/v1/silences",
            Body::Json(
                serde_json::json!({"matchers": [{"name": "alertname", "value": "ExtHigh"}],
                "duration": "1h", "comment": "known"}),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let silences = alertmanager.json("/api/v2/silences").await;
    assert!(
        silences.to_string().contains("token:test-editor"),
        "{silences}"
    );
    let bundled = Command::new("pgrep")
        .args([
            "-P",
            &server.child.id().to_string(),
            "-f",
            "prometheus-alertmanager",
        ])
        .output()
        .unwrap();
    assert!(bundled.stdout.is_empty(), "a bundled Alertmanager runs");

    // Prometheus goes away: writes get 503 (agents keep their samples), queries
    // `unavailable`, readiness names the external engine, and the appliance stays up.
    let (dir, port) = prometheus.stop();
    let r = agent
        .send(
            "POST",
            "/v1/metrics/write",
            Body::Raw(
                "application/x-protobuf",
                remote_write_body(
                    "perch_ext_metric",
                    &[("instance", "c")],
                    1.0,
                    now_s() * 1000,
                ),
            ),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (503, Some("unavailable")),
        "{}",
        r.text()
    );
    assert!(r.header("retry-after").is_some());
    let r = grafana
        .send("GET", "/prometheus/api/v1/query?query=1", Body::None)
        .await;
    assert_eq!(
        (r.status, r.json()["errorType"].as_str()),
        (503, Some("unavailable")),
        "{}",
        r.text()
    );
    let (status, line) = engine_readiness(&server, Duration::from_secs(15), |l| l != "ok").await;
    assert_eq!(status, 503, "{line}");
    assert!(
        line.starts_with("unavailable: external engine:") && line.contains("connection refused"),
        "{line}"
    );
    let mut admin = server.login("admin", STRONG).await;
    assert_eq!(admin.send("GET", "/v1/me", Body::None).await.status, 200);

    // Back again on the same port and data: queries work at once, readiness follows.
    let prometheus = Prometheus::start_in(dir, port);
    let r = grafana
        .send(
            "GET",
            &format!("/prometheus/api/v1/query?{query}"),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(sorted(&r.json()), sorted(&direct));
    server.wait_ready(Duration::from_secs(20));
    drop(prometheus);
}

/// What the recording upstream saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    version: http::Version,
    headers: http::HeaderMap,
    body: bytes::Bytes,
}

/// An HTTPS upstream (h2 and HTTP/1.1) that demands `expected_auth`, records every
/// request, and answers like a Prometheus API: buildinfo, an empty query result, 204 for
/// writes.
struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Holds the CA file and the credential files Perch is given.
    files: tempfile::TempDir,
    /// The CA file that trusts the upstream's certificate, as a flag's argument.
    ca: String,
}

impl Recorder {
    async fn start(expected_auth: &'static str) -> Recorder {
        let pki = TestPki::current(&["localhost", "127.0.0.1"]);
        let files = tempfile::tempdir().expect("tempdir");
        let ca = files.path().join("upstream-ca.pem");
        std::fs::write(&ca, &pki.ca_pem).expect("write the CA file");
        let (addr, seen) = recording_upstream(&pki, expected_auth).await;
        Recorder {
            addr,
            seen,
            files,
            ca: ca.to_str().expect("path").to_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// A file `name` holding `content`, as a flag's argument.
    fn file(&self, name: &str, content: &str) -> String {
        let path = self.files.path().join(name);
        std::fs::write(&path, content).expect("write a secret file");
        path.to_str().expect("path").to_owned()
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

/// Serves the recorder's upstream on a loopback port, with `pki`'s leaf certificate.
async fn recording_upstream(
    pki: &TestPki,
    expected_auth: &'static str,
) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    use http_body_util::{BodyExt, Full};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let certs = vec![CertificateDer::from_pem_slice(pki.leaf_pem.as_bytes()).expect("leaf")];
    let key = PrivateKeyDer::from_pem_slice(pki.leaf_key_pem.as_bytes()).expect("key");
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let record = record.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    move |req: http::Request<hyper::body::Incoming>| {
                        let record = record.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let target = parts
                                .uri
                                .path_and_query()
                                .map_or_else(String::new, |pq| pq.as_str().to_owned());
                            record.lock().expect("lock").push(Seen {
                                method: parts.method.to_string(),
                                target: target.clone(),
                                version: parts.version,
                                headers: parts.headers.clone(),
                                body,
                            });
                            let authorised = parts
                                .headers
                                .get(http::header::AUTHORIZATION)
                                .is_some_and(|v| v == expected_auth);
                            let (status, text) = if !authorised {
                                (
                                    401,
                                    r#"{"status":"error","errorType":"unauthorized","error":"who are you"}"#,
                                )
                            } else if target.ends_with("/api/v1/status/buildinfo") {
                                (200, r#"{"status":"success","data":{"version":"recorder"}}"#)
                            } else if target.contains("/api/v1/query") {
                                (
                                    200,
                                    r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
                                )
                            } else if target.starts_with("/api/v1/push") {
                                (204, "")
                            } else {
                                (404, "not here")
                            };
                            let resp = http::Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .header("set-cookie", "upstream=1")
                                .header("access-control-allow-origin", "*")
                                .body(Full::new(bytes::Bytes::from_static(text.as_bytes())))
                                .expect("response");
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });
    (addr, seen)
}

/// Polls `/v1/readyz` (bounded) until its metrics-engine line satisfies `done`: the status
/// and that line.
async fn engine_readiness(
    server: &Server,
    within: Duration,
    done: impl Fn(&str) -> bool,
) -> (u16, String) {
    let deadline = Instant::now() + within;
    loop {
        let r = Http::new(server)
            .send("GET", "/v1/readyz", Body::None)
            .await;
        let line = r.json()["checks"]["metrics_engine"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if done(&line) {
            return (r.status, line);
        }
        assert!(Instant::now() < deadline, "{}", r.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends GET `path` to Perch with a bearer token plus headers a client might use to pose
/// as someone else.
async fn query_with_forged_identity(server: &Server, token: &str, path: &str) -> u16 {
    use http_body_util::{BodyExt, Empty};
    let config = perch_e2e::client_config(&server.ca_file(), &[b"http/1.1"]);
    let tls = perch_e2e::connect(server.https, "localhost", config)
        .await
        .expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .expect("handshake");
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", format!("localhost:{}", server.https.port()))
        .header("authorization", format!("Bearer {token}"))
        .header("cookie", "__Host-perch_session=forged; other=1")
        .header("x-webauth-user", "admin")
        .header("x-forwarded-for", "6.6.6.6")
        .header("forwarded", "for=6.6.6.6")
        .header("x-real-ip", "6.6.6.6")
        .body(Empty::<bytes::Bytes>::new())
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    assert!(resp.headers().get("set-cookie").is_none());
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let _ = resp.into_body().collect().await;
    status
}

// The recording upstream runs on this runtime while the server starts (blocking).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_gets_perchs_credentials_and_never_the_clients() {
    let up = Recorder::start("Bearer upstream-bearer-7f3a").await;
    let server = Server::start_with_admin(
        external_args(
            Options::default(),
            &up.url("/api/v1/push?tenant=a"),
            &up.url("/select/0/prometheus"),
        )
        .arg("--metrics-ca-file")
        .arg(&up.ca)
        .arg("--metrics-bearer-token-file")
        .arg(up.file("token", "upstream-bearer-7f3a\n")),
    );
    // Ready means the probe passed: TLS verified against the CA file, bearer accepted.
    let probes = up.seen();
    assert!(
        probes
            .iter()
            .any(|s| s.target == "/select/0/prometheus/api/v1/status/buildinfo"),
        "{probes:?}"
    );
    let viewer = server.token("viewer").await;
    let status =
        query_with_forged_identity(&server, &viewer, "/prometheus/api/v1/query?query=up").await;
    assert_eq!(status, 200);
    // (vmalert's rule queries and Perch's own metrics reach the engine too.)
    let query = up
        .seen()
        .into_iter()
        .rev()
        .find(|s| s.target == "/select/0/prometheus/api/v1/query?query=up")
        .expect("the query reached the upstream");
    assert_eq!(query.target, "/select/0/prometheus/api/v1/query?query=up");
    assert_eq!(query.version, http::Version::HTTP_2, "pooled h2 by ALPN");
    let h = &query.headers;
    assert_eq!(h["authorization"], "Bearer upstream-bearer-7f3a");
    assert_eq!(h.get_all("authorization").iter().count(), 1);
    for gone in ["cookie", "x-webauth-user", "x-real-ip"] {
        assert!(h.get(gone).is_none(), "{gone} reached the upstream: {h:?}");
    }
    // Perch's own Forwarded (RFC 7239), not the one the client forged.
    assert_eq!(
        h["forwarded"],
        format!(
            "for=127.0.0.1;proto=https;host=\"localhost:{}\"",
            server.https.port()
        )
        .as_str()
    );
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(
        h["x-forwarded-host"],
        format!("localhost:{}", server.https.port()).as_str()
    );

    // A write arrives at the write URL as written, re-encoded, with the same credentials.
    let mut agent = server.with_token("editor").await;
    let r = agent
        .send(
            "POST",
            "/v1/metrics/write",
            Body::Raw(
                "application/x-protobuf",
                remote_write_body("perch_rec_metric", &[("job", "rec")], 3.5, now_s() * 1000),
            ),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let write = up
        .seen()
        .into_iter()
        .find(|s| {
            s.method == "POST"
                && s.target == "/api/v1/push?tenant=a"
                && perch_remote_write::WriteRequest::decode_body(
                    &s.body,
                    &perch_remote_write::Limits::default(),
                    now_s() * 1000,
                )
                .is_ok_and(|w| {
                    w.timeseries.iter().any(|t| {
                        t.labels
                            .iter()
                            .any(|l| l.name == "__name__" && l.value == "perch_rec_metric")
                    })
                })
        })
        .expect("the write reached the upstream");
    assert_eq!(
        write.headers["authorization"],
        "Bearer upstream-bearer-7f3a"
    );
    assert_eq!(write.headers["content-encoding"], "snappy");
    let decoded = perch_remote_write::WriteRequest::decode_body(
        &write.body,
        &perch_remote_write::Limits::default(),
        now_s() * 1000,
    )
    .expect("a valid remote-write body");
    assert_eq!(decoded.timeseries.len(), 1);
    assert_eq!(decoded.timeseries[0].samples[0].value, 3.5);

    // The secret is never logged.
    let log = server.log().join("\n");
    assert!(!log.contains("upstream-bearer-7f3a"), "{log}");
}

// The recording upstream runs on this runtime while the server starts (blocking).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_and_an_untrusted_certificate() {
    // base64("perch:pw-secret-1")
    let up = Recorder::start("Basic cGVyY2g6cHctc2VjcmV0LTE=").await;
    let password = up.file("password", "pw-secret-1\n");
    let basic = |opts: Options| {
        external_args(opts, &up.url("/api/v1/push"), &up.url("/"))
            .arg("--metrics-basic-auth-user")
            .arg("perch")
            .arg("--metrics-basic-auth-password-file")
            .arg(&password)
    };
    let server = Server::start_with_admin(
        basic(Options::default())
            .arg("--metrics-ca-file")
            .arg(&up.ca),
    );
    let viewer = server.token("viewer").await;
    let status =
        query_with_forged_identity(&server, &viewer, "/prometheus/api/v1/query?query=1").await;
    assert_eq!(status, 200);
    assert!(up.seen().iter().any(|s| s.target == "/api/v1/query?query=1"
        && s.headers["authorization"] == "Basic cGVyY2g6cHctc2VjcmV0LTE="));
    assert!(!server.log().join("\n").contains("pw-secret-1"));
    drop(server);

    // Without the CA file the upstream's certificate is not trusted: not ready, and says so.
    let server = Server::start_with_admin(basic(Options {
        not_ready: true,
        ..Options::default()
    }));
    let (status, _) = engine_readiness(&server, Duration::from_secs(10), |l| {
        l.contains("not trusted")
    })
    .await;
    assert_eq!(status, 503);
}

#[test]
fn external_flags_are_checked_at_start() {
    let data = tempfile::tempdir().expect("tempdir");
    let out = Server::run_to_exit(
        data.path(),
        Options::default()
            .arg("--metrics-write-url")
            .arg("http://127.0.0.1:9/api/v1/write"),
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("--metrics-query-url"), "{}", out.stderr);

    let missing = data.path().join("no-such-token");
    let out = Server::run_to_exit(
        data.path(),
        external_args(
            Options::default(),
            "http://127.0.0.1:9/api/v1/write",
            "http://127.0.0.1:9",
        )
        .arg("--metrics-bearer-token-file")
        .arg(missing.to_str().expect("path")),
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("--metrics-bearer-token-file") && out.stderr.contains("no-such-token"),
        "{}",
        out.stderr
    );

    let out = Server::run_to_exit(
        data.path(),
        external_args(
            Options::default(),
            "http://perch:secret@127.0.0.1:9/api/v1/write",
            "http://127.0.0.1:9",
        ),
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("credentials"), "{}", out.stderr);
}
