//! perch-admin against the real server: trust modes, enrollment, the agent's pushes (built-in
//! collector and a real node_exporter), identity stamping, no gap across a server restart,
//! unregister.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use perch_e2e::admin::{Admin, enroll_token, node_exporter, server_arg, text};
use perch_e2e::{Body, Http, Options, STRONG, Server, TestPki, free_port};

/// The agent's interval in these tests.
const INTERVAL_S: u64 = 2;

/// Enrolls with `--server-insecure-ssl` and a fresh token, with a short interval.
async fn enroll_pinned(server: &Server, admin: &Admin, name: &str) {
    let interval = format!("{INTERVAL_S}s");
    admin
        .enroll(
            server,
            name,
            &["--interval", &interval, "--labels", "env=e2e"],
        )
        .await;
}

async fn viewer(server: &Server) -> Http {
    server.login("admin", STRONG).await
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("config")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_ssl_needs_a_trusted_chain() {
    let server = Server::start_with_admin(Options::default());
    let token = enroll_token(&server).await;
    let admin = Admin::new();
    // The self-signed server without its CA: refused, with the way out.
    let out = admin.run(&[
        "config",
        "--server",
        &server_arg(&server),
        "--server-ssl",
        "--enroll-token",
        &token,
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not trusted")
            && err.contains("--server-insecure-ssl")
            && err.contains("--ca-file"),
        "{err}"
    );
    assert!(!admin.config.exists());
    // With the CA file: verified, and the token (unused so far) works.
    let ca = server.ca_file();
    let out = admin.run(&[
        "config",
        "--server",
        &server_arg(&server),
        "--server-ssl",
        "--ca-file",
        ca.to_str().unwrap(),
        "--enroll-token",
        &token,
        "--node-name",
        "verified-node",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(mode(&admin.config), 0o600);
    let config = std::fs::read_to_string(&admin.config).unwrap();
    assert!(config.contains("trust = \"verified\""), "{config}");
    assert!(!config.contains("pin_sha256"), "{config}");
    // Single use: a second machine cannot enroll with the same token.
    let other = Admin::new();
    let out = other.config_insecure(&server, &["--enroll-token", &token]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    // An existing config is not overwritten without --force.
    let out = admin.config_insecure(&server, &["--enroll-token", "x"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_ssl_pins_and_a_new_key_is_refused() {
    let server = Server::start_with_admin(Options::default());
    let admin = Admin::new();
    enroll_pinned(&server, &admin, "pinned-node").await;
    let config = std::fs::read_to_string(&admin.config).unwrap();
    assert!(config.contains("trust = \"pinned\""), "{config}");
    let out = admin.run(&["--json", "status"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(status["reachable"], true, "{}", text(&out));
    assert_eq!(status["token_ok"], true, "{}", text(&out));
    // The agent is not running yet: status says so and exits 5.
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    // The support archive: status, the config and the rest, and never the token.
    let summary = admin.dir.path().join("summary.tar");
    let out = admin.run(&["summary", "--filename", summary.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(mode(&summary), 0o600);
    let archive = std::fs::read(&summary).unwrap();
    let token = config
        .lines()
        .find_map(|l| l.strip_prefix("token = "))
        .unwrap()
        .trim_matches('"');
    assert!(token.len() > 20);
    assert!(
        !archive.windows(token.len()).any(|w| w == token.as_bytes()),
        "the node token is not in the summary"
    );
    let listing = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&summary)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    for part in [
        "versions.txt",
        "status.json",
        "agent.toml",
        "buffer.txt",
        "agent-log.txt",
    ] {
        assert!(listing.contains(part), "{part} in {listing}");
    }
    let text_of_archive = String::from_utf8_lossy(&archive);
    assert!(text_of_archive.contains("pinned-node") && text_of_archive.contains("perch-admin"));

    // The server gets a new key: the pin refuses it, loudly, and says how to re-pin.
    TestPki::current(&["localhost"]).install(&server.cert_dir);
    let deadline = Instant::now() + Duration::from_secs(10);
    let out = loop {
        let out = admin.run(&["status"]);
        if out.status.code() == Some(3) || Instant::now() > deadline {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("PUBLIC KEY CHANGED") && all.contains("config --force"),
        "{all}"
    );
    // Config mode is 0600; readable by others, it is refused.
    assert_eq!(mode(&admin.config), 0o600);
    std::fs::set_permissions(&admin.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = admin.run(&["list"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_by_user_needs_an_editor() {
    let server = Server::start_with_admin(Options::default());
    let _editor = server.user("ed", "editor").await;
    let _viewer = server.user("vi", "viewer").await;
    let admin = Admin::new();
    let password = admin.dir.path().join("password");
    std::fs::write(&password, format!("{}\n", perch_e2e::OWN)).unwrap();
    let base = [
        "--server-password-file",
        password.to_str().unwrap(),
        "--node-name",
        "by-user",
    ];
    let out = admin.config_insecure(&server, &[&base[..], &["--server-user", "vi"]].concat());
    assert_eq!(
        out.status.code(),
        Some(4),
        "a viewer cannot enroll: {}",
        text(&out)
    );
    let out = admin.config_insecure(&server, &[&base[..], &["--server-user", "ed"]].concat());
    assert!(out.status.success(), "{}", text(&out));
    let config = std::fs::read_to_string(&admin.config).unwrap();
    assert!(
        !config.contains(perch_e2e::OWN),
        "the password is never stored"
    );
    assert!(config.contains("perch_node_"), "{config}");
    // The node exists on the server, enrolled by the user.
    let mut http = viewer(&server).await;
    let nodes = http.send("GET", "/v1/nodes", Body::None).await.json();
    let node = &nodes["nodes"][0];
    assert_eq!(
        (node["name"].as_str(), node["enrolled_by"].as_str()),
        (Some("by-user"), Some("ed"))
    );
    // The same name again needs --force, which replaces the node.
    let other = Admin::new();
    std::fs::write(other.dir.path().join("pw"), perch_e2e::OWN).unwrap();
    let pw = other.dir.path().join("pw");
    let again = [
        "--server-password-file",
        pw.to_str().unwrap(),
        "--node-name",
        "by-user",
        "--server-user",
        "ed",
    ];
    let out = other.config_insecure(&server, &again);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    let out = other.config_insecure(&server, &[&again[..], &["--force"]].concat());
    assert!(out.status.success(), "{}", text(&out));
    // The replaced node's token no longer works.
    let out = admin.run(&["status"]);
    assert!(text(&out).contains("REFUSED"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_ships_the_node_and_an_exporter_and_cannot_write_as_another_node() {
    let server = Server::start_with_admin(Options::default());
    let admin = Admin::new();
    enroll_pinned(&server, &admin, "shipper").await;
    let (_exporter, port) = node_exporter().expect(
        "prometheus-node-exporter (Debian package) is needed: apt-get install prometheus-node-exporter",
    );
    let url = format!("http://127.0.0.1:{port}/metrics");
    let out = admin.run(&["add", "exporter", "node_exporter", "--url", &url]);
    assert!(out.status.success(), "{}", text(&out));
    let out = admin.run(&["--json", "list"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(list["exporters"][0]["url"], url.as_str());
    let _agent = admin.agent();
    let mut http = viewer(&server).await;
    // Two intervals, plus the engine's 5 s freshness window (-search.latencyOffset), plus
    // slack for a loaded CI machine.
    let within = Duration::from_secs(2 * INTERVAL_S + 5 + 3);
    let cpu = http
        .wait_query(
            r#"node_cpu_seconds_total{job="node",node_name="shipper",mode="idle",env="e2e"}"#,
            within,
            |r| !r.is_empty(),
        )
        .await;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(cpu.len(), cores, "one idle series per cpu: {cpu:?}");
    assert!(
        cpu[0]["metric"]["node_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    http.wait_query(
        r#"up{job="node_exporter",node_name="shipper"} == 1"#,
        within,
        |r| r.len() == 1,
    )
    .await;
    http.wait_query(
        r#"node_exporter_build_info{job="node_exporter",node_name="shipper"}"#,
        within,
        |r| r.len() == 1,
    )
    .await;
    // The built-in collector and node_exporter agree on the machine's memory.
    let ours = http
        .wait_query(
            r#"node_memory_MemTotal_bytes{node_name="shipper"}"#,
            within,
            |r| r.len() == 2,
        )
        .await;
    assert_eq!(ours[0]["value"][1], ours[1]["value"][1], "{ours:?}");
    // The agent's pushes repeat their series' labels: after the first, the server compares
    // them with those that passed instead of checking them again.
    let metrics = http.send("GET", "/metrics", Body::None).await.text();
    let total = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let recalled = total("perch_write_series_recalled_total ");
    assert!(
        recalled > 0 && recalled < total("perch_write_series_total "),
        "{metrics}"
    );

    // The node's own token cannot write as another node: the server stamps its identity.
    let config = std::fs::read_to_string(&admin.config).unwrap();
    let token = config
        .lines()
        .find_map(|l| l.strip_prefix("token = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let mut forger = Http::new(&server);
    forger.bearer = Some(token);
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let body = perch_remote_write::WriteRequest {
        timeseries: vec![perch_remote_write::TimeSeries {
            labels: [
                ("__name__", "forged_metric"),
                ("node_id", "999"),
                ("node_name", "victim"),
            ]
            .iter()
            .map(|(k, v)| perch_remote_write::Label {
                name: (*k).into(),
                value: (*v).into(),
            })
            .collect(),
            samples: vec![perch_remote_write::Sample {
                value: 1.0,
                timestamp: now_ms - 10_000,
            }],
        }],
    }
    .encode_body();
    let r = forger
        .send(
            "POST",
            "/v1/metrics/write",
            Body::Raw("application/x-protobuf", body),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let forged = http
        .wait_query("forged_metric", within, |r| r.len() == 1)
        .await;
    assert_eq!(forged[0]["metric"]["node_name"], "shipper", "{forged:?}");
    assert_ne!(forged[0]["metric"]["node_id"], "999");
    // A node token is no user: it cannot query or manage anything.
    let r = forger
        .send("GET", "/prometheus/api/v1/query?query=up", Body::None)
        .await;
    assert_eq!(r.status, 403);
    let r = forger.send("GET", "/v1/nodes", Body::None).await;
    assert_eq!(r.status, 403);

    // status sees the running agent and its pushes.
    let out = admin.run(&["--json", "status"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(status["agent"]["running"], true, "{}", text(&out));
    assert!(
        status["agent"]["last_push_ok"].is_number(),
        "{}",
        text(&out)
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // unregister: the node is deleted, its token revoked, the config removed.
    let out = admin.run(&["unregister"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!admin.config.exists());
    let r = forger
        .send(
            "POST",
            "/v1/metrics/write",
            Body::Raw("application/x-protobuf", Vec::new()),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    let nodes = http.send("GET", "/v1/nodes", Body::None).await.json();
    assert_eq!(nodes["nodes"].as_array().map(Vec::len), Some(0), "{nodes}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_for_a_minute_leaves_no_gap() {
    let port = free_port();
    let listen: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let opts = || Options {
        listen: Some(listen),
        ..Options::default()
    };
    let server = Server::start_with_admin(opts());
    let admin = Admin::new();
    enroll_pinned(&server, &admin, "steady").await;
    let _agent = admin.agent();
    let mut http = viewer(&server).await;
    http.wait_query(
        r#"node_time_seconds{node_name="steady"}"#,
        Duration::from_secs(30),
        |r| r.len() == 1,
    )
    .await;
    let stopped_at = time::OffsetDateTime::now_utc().unix_timestamp();
    let data = server.stop_keeping_data();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let file = data.path().join("admin-password");
    let server = Server::start_in(
        data,
        opts()
            .arg("--admin-password-file")
            .arg(file.to_str().unwrap()),
    );
    let restarted_at = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut http = viewer(&server).await;
    // The buffered rounds arrive: every interval of the outage has its sample.
    let window = restarted_at - stopped_at + 10;
    let query = format!(r#"node_time_seconds{{node_name="steady"}}[{window}s]"#);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let at = (restarted_at + 5).to_string();
        let r = http
            .send(
                "POST",
                "/prometheus/api/v1/query",
                Body::Form(&[("query", &query), ("time", &at)]),
            )
            .await
            .json();
        let values = r["data"]["result"][0]["values"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let times: Vec<f64> = values.iter().filter_map(|v| v[0].as_f64()).collect();
        let covered = times.first().is_some_and(|t| *t <= (stopped_at - 1) as f64)
            && times.last().is_some_and(|t| *t >= restarted_at as f64);
        let widest = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        if covered && widest <= (2 * INTERVAL_S) as f64 + 0.5 {
            assert!(times.len() as i64 >= (restarted_at - stopped_at) / INTERVAL_S as i64);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a gap: widest {widest} s over {} samples, covered {covered}: {r}",
            times.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_given_fingerprint_is_checked_before_the_token_is_sent() {
    let server = Server::start_with_admin(Options::default());
    let token = enroll_token(&server).await;
    let admin = Admin::new();
    let wrong = perch_certs::spki_sha256_hex(&[0x11; 32]);
    let base = ["--enroll-token", &token, "--node-name", "fingerprinted"];
    let out = admin.config_insecure(
        &server,
        &[&base[..], &["--server-fingerprint", &wrong]].concat(),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(!admin.config.exists());
    // The token was never sent: it still enrolls, with the right fingerprint.
    let mut http = server.login("admin", STRONG).await;
    let right = http.enroll_token().await["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = admin.config_insecure(
        &server,
        &[&base[..], &["--server-fingerprint", &right]].concat(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let config = std::fs::read_to_string(&admin.config).unwrap();
    assert!(config.contains(&right), "{config}");

    // An enrollment token cannot replace an existing node, even with --force.
    let other = Admin::new();
    let token = enroll_token(&server).await;
    let out = other.config_insecure(
        &server,
        &[
            "--enroll-token",
            &token,
            "--node-name",
            "fingerprinted",
            "--force",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot replace it"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_tokens_made_with_an_api_token_die_with_it() {
    let server = Server::start_with_admin(Options::default());
    let mut admin = server.login("admin", STRONG).await;
    let r = admin
        .send(
            "POST",
            "/v1/tokens",
            Body::Json(serde_json::json!({"name": "automation", "role": "editor"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let (api_id, api_secret) = (
        r.json()["token"]["id"].as_u64().unwrap(),
        r.json()["secret"].as_str().unwrap().to_owned(),
    );
    let mut automation = Http::new(&server);
    automation.bearer = Some(api_secret);
    let first = automation.enroll_token().await["token"].clone();
    let second = automation.enroll_token().await["token"].clone();
    let enroll = |token: serde_json::Value, name: &str| {
        let mut machine = Http::new(&server);
        machine.bearer = token.as_str().map(str::to_owned);
        let body = Body::Json(serde_json::json!({ "name": name }));
        async move { machine.send("POST", "/v1/nodes", body).await }
    };
    // While the API token lives, its enrollment tokens work.
    let r = enroll(first, "first").await;
    assert_eq!(r.status, 201, "{}", r.text());
    // Revoked, it takes the unused ones with it.
    let r = admin
        .send("DELETE", &format!("/v1/tokens/{api_id}"), Body::None)
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = enroll(second, "second").await;
    assert_eq!(r.status, 401, "{}", r.text());
}
