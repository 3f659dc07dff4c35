//! The metrics engine: the real VictoriaMetrics (Debian's victoria-metrics), supervised by
//! the real server, queried through Perch's Prometheus API over TLS.

use std::time::{Duration, Instant};

use perch_e2e::{Body, Http, Options, STRONG, Server, remote_write_body};

async fn viewer(server: &Server) -> Http {
    server.with_token("viewer").await
}

#[tokio::test]
async fn queries_reach_the_engine_for_viewers_only() {
    let server = Server::start_with_admin(Options::default());
    let ready = Http::new(&server)
        .send("GET", "/v1/readyz", Body::None)
        .await
        .json();
    assert_eq!(ready["checks"]["metrics_engine"], "ok", "{ready}");
    let mut grafana = viewer(&server).await;
    let r = grafana
        .send("GET", "/prometheus/api/v1/query?query=1%2B1", Body::None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "success");
    assert_eq!(r.json()["data"]["result"][0]["value"][1], "2");
    // Grafana posts its queries as a form.
    let r = grafana
        .send(
            "POST",
            "/prometheus/api/v1/query",
            Body::Form(&[("query", "2*3")]),
        )
        .await;
    assert_eq!(
        r.json()["data"]["result"][0]["value"][1],
        "6",
        "{}",
        r.text()
    );
    let r = grafana
        .send("GET", "/prometheus/api/v1/labels", Body::None)
        .await;
    assert_eq!(r.json()["status"], "success", "{}", r.text());
    // A bad query keeps Prometheus's error shape.
    let r = grafana
        .send("GET", "/prometheus/api/v1/query?query=sum(", Body::None)
        .await;
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (422, Some("error")),
        "{}",
        r.text()
    );
    // Only the read API; nobody anonymous.
    let r = grafana
        .send(
            "GET",
            "/prometheus/api/v1/admin/tsdb/delete_series",
            Body::None,
        )
        .await;
    assert_eq!(
        (r.status, r.json()["errorType"].as_str()),
        (404, Some("not_found"))
    );
    let r = Http::new(&server)
        .send("GET", "/prometheus/api/v1/query?query=1", Body::None)
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn a_killed_engine_is_restarted_and_the_appliance_stays_up() {
    let mut server = Server::start_with_admin(Options::default());
    let pid = server
        .engine_pid()
        .expect("victoria-metrics runs as a child");
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    // Still answering, and logins work while the engine is away.
    let mut admin = server.login("admin", STRONG).await;
    assert_eq!(admin.send("GET", "/v1/me", Body::None).await.status, 200);
    assert!(
        server
            .wait_for_log("metrics engine stopped; restarting", Duration::from_secs(5))
            .is_some()
    );
    server.wait_ready(Duration::from_secs(20));
    let again = server.engine_pid().expect("a new engine");
    assert_ne!(again, pid);
    let metrics = admin.send("GET", "/metrics", Body::None).await.text();
    assert!(
        metrics.contains("perch_metrics_engine_restarts_total 1"),
        "{metrics}"
    );
    // SIGTERM stops the engine with the server.
    server.signal("TERM");
    assert_eq!(
        server
            .wait_exit(Duration::from_secs(15))
            .and_then(|s| s.code()),
        Some(0)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{again}")).exists() {
        assert!(Instant::now() < deadline, "the engine outlived the server");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn without_an_engine_users_still_log_in_and_readiness_says_why() {
    let server = Server::start_with_admin(
        Options {
            not_ready: true,
            ..Options::default()
        }
        .arg("--victoria-metrics-bin")
        .arg("/nonexistent/victoria-metrics"),
    );
    let mut admin = server.login("admin", STRONG).await;
    let r = admin.send("GET", "/v1/readyz", Body::None).await;
    assert_eq!(r.status, 503);
    let why = r.json()["checks"]["metrics_engine"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        why.starts_with("unavailable") && why.contains("/nonexistent/victoria-metrics"),
        "{why}"
    );
    let mut grafana = viewer(&server).await;
    let r = grafana
        .send("GET", "/prometheus/api/v1/query?query=1", Body::None)
        .await;
    assert_eq!(
        (r.status, r.json()["errorType"].as_str()),
        (503, Some("unavailable")),
        "{}",
        r.text()
    );
    assert!(r.header("retry-after").is_some());
}

#[tokio::test]
async fn samples_written_through_perch_are_read_back_through_perch() {
    let server = Server::start_with_admin(Options::default());
    let mut agent = server.with_token("editor").await;
    let mut grafana = viewer(&server).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let at = (now - 120) * 1000;
    let body = remote_write_body(
        "perch_test_metric",
        &[("job", "e2e"), ("instance", "a")],
        42.5,
        at,
    );
    let r = agent
        .send(
            "POST",
            "/v1/metrics/write",
            Body::Raw("application/x-protobuf", body.clone()),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    // PMM's path works too.
    let other = remote_write_body(
        "perch_test_metric",
        &[("job", "e2e"), ("instance", "b")],
        7.0,
        at,
    );
    let r = agent
        .send(
            "POST",
            "/victoriametrics/api/v1/write",
            Body::Raw("application/x-protobuf", other),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());

    let query = format!(
        "/prometheus/api/v1/query?query=perch_test_metric&time={}",
        now - 60
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let result = loop {
        let r = grafana.send("GET", &query, Body::None).await.json();
        if r["data"]["result"].as_array().is_some_and(|a| a.len() == 2) {
            break r;
        }
        assert!(Instant::now() < deadline, "samples not visible: {r}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let series = result["data"]["result"].as_array().unwrap();
    let a = series
        .iter()
        .find(|s| s["metric"]["instance"] == "a")
        .unwrap();
    assert_eq!(a["value"][1], "42.5");
    assert_eq!(a["metric"]["job"], "e2e");

    // Refused whole, and nothing reaches the engine.
    let bad = remote_write_body("perch_bad_metric", &[("1nvalid", "x")], 1.0, at);
    let r = agent
        .send(
            "POST",
            "/v1/metrics/write",
            Body::Raw("application/x-protobuf", bad),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("bad_data")),
        "{}",
        r.text()
    );
    let r = agent
        .send(
            "POST",
            "/v1/metrics/write",
            Body::Raw("application/x-protobuf", b"garbage".to_vec()),
        )
        .await;
    assert_eq!(r.status, 400);
    let future = remote_write_body("perch_future_metric", &[], 1.0, (now + 3600) * 1000);
    let r = agent
        .send(
            "POST",
            "/v1/metrics/write",
            Body::Raw("application/x-protobuf", future),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Each refused series, looked for at its own time: absent.
    for (name, at_s) in [
        ("perch_bad_metric", now - 60),
        ("perch_future_metric", now + 3600),
    ] {
        let when = at_s.to_string();
        let r = grafana
            .send(
                "POST",
                "/prometheus/api/v1/query",
                Body::Form(&[("query", name), ("time", &when)]),
            )
            .await
            .json();
        assert_eq!(r["status"], "success", "{r}");
        assert_eq!(
            r["data"]["result"].as_array().map(Vec::len),
            Some(0),
            "{name}: {r}"
        );
    }

    // Viewers and strangers cannot write.
    let r = grafana
        .send(
            "POST",
            "/v1/metrics/write",
            Body::Raw("application/x-protobuf", body.clone()),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = Http::new(&server)
        .send(
            "POST",
            "/v1/metrics/write",
            Body::Raw("application/x-protobuf", body),
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn writes_without_an_engine_get_503_and_retry_after() {
    let server = Server::start_with_admin(
        Options {
            not_ready: true,
            ..Options::default()
        }
        .arg("--victoria-metrics-bin")
        .arg("/nonexistent/victoria-metrics"),
    );
    let mut agent = server.with_token("editor").await;
    let body = remote_write_body(
        "up",
        &[],
        1.0,
        time::OffsetDateTime::now_utc().unix_timestamp() * 1000,
    );
    let r = agent
        .send(
            "POST",
            "/v1/metrics/write",
            Body::Raw("application/x-protobuf", body),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (503, Some("unavailable")),
        "{}",
        r.text()
    );
    assert!(r.header("retry-after").is_some());
}
