//! Alerting with the real vmalert and Alertmanager from Debian, as a user sets it up: a
//! webhook contact point (with a write-only token) and routing; stopping an agent fires
//! "node down" to the webhook and starting it again sends the resolution; a silence made
//! before it fires holds it back and its expiry lets it through; a login flood fires the
//! brute-force alert; a test notification reaches a local SMTP server; a bad custom rule
//! file is refused and shown while a good one is used; a killed vmalert or Alertmanager is
//! restarted and readiness says so meanwhile; restarting Perch keeps a pending alert's
//! `for:` progress.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use perch_e2e::admin::Admin;
use perch_e2e::alerting::{Smtp, Webhook};
use perch_e2e::chromium::{Page, browser};
use perch_e2e::{Body, Http, Options, STRONG, Server};
use serde_json::{Value, json};

/// Short clocks, so that the test takes seconds: rules every 2 s, Perch's own metrics
/// every 2 s, Alertmanager's first notification after 1 s and the next after 2 s.
fn fast() -> Options {
    Options::default()
        .arg("--alert-evaluation-interval=2s")
        .arg("--alert-group-wait=1s")
        .arg("--alert-group-interval=2s")
        .arg("--self-scrape-interval=2s")
}

async fn ok(http: &mut Http, method: &str, path: &str, body: Value) -> Value {
    let body = if body.is_null() {
        Body::None
    } else {
        Body::Json(body)
    };
    let r = http.send(method, path, body).await;
    assert!(
        (200..300).contains(&r.status),
        "{method} {path}: {} {}",
        r.status,
        r.text()
    );
    if r.text().is_empty() {
        Value::Null
    } else {
        r.json()
    }
}

/// Waits until `f` gives something, at most `within`; `what` names it in the failure.
async fn until<T>(within: Duration, what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn alert(http: &mut Http, name: &str, node: Option<&str>) -> Option<Value> {
    let list = ok(http, "GET", "/v1/alerts", Value::Null).await;
    list["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["name"] == name && node.is_none_or(|n| a["labels"]["node_name"] == n))
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_down_silences_brute_force_email_custom_rules_and_restarts() {
    let server = Server::start_with_admin(fast());
    let mut admin = server.login("admin", STRONG).await;
    let ready = ok(&mut admin, "GET", "/v1/readyz", Value::Null).await;
    assert_eq!(
        (
            ready["checks"]["vmalert"].as_str(),
            ready["checks"]["alertmanager"].as_str()
        ),
        (Some("ok"), Some("ok")),
        "{ready}"
    );
    // vmalert and Alertmanager answer on loopback only to Perch's credentials.
    for (pattern, flag, path) in [
        ("vmalert -envflag", "-httpListenAddr=", "/api/v1/alerts"),
        ("alertmanager", "--web.listen-address=", "/api/v2/silences"),
    ] {
        let pid = server.child_pid(pattern).expect("the child runs");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let addr = String::from_utf8_lossy(&cmdline)
            .split('\0')
            .find_map(|a| a.strip_prefix(flag).map(str::to_owned))
            .expect("its listen address");
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        use std::io::{Read, Write};
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(
            answer.starts_with("HTTP/1.0 401") || answer.starts_with("HTTP/1.1 401"),
            "{pattern}: {answer}"
        );
    }

    // A webhook contact point with a token, as the default; the token is never shown again.
    let hook = Webhook::start();
    ok(
        &mut admin,
        "POST",
        "/v1/receivers",
        json!({"name": "ops-hook", "kind": "webhook",
        "fields": {"url": hook.url, "token": "hook-token-5521"}}),
    )
    .await;
    ok(
        &mut admin,
        "PUT",
        "/v1/routing",
        json!({"default_receiver": "ops-hook", "routes": []}),
    )
    .await;
    let listed = ok(&mut admin, "GET", "/v1/receivers", Value::Null).await;
    assert!(!listed.to_string().contains("hook-token-5521"), "{listed}");
    assert_eq!(
        listed["receivers"][0]["secrets_set"],
        json!(["token"]),
        "{listed}"
    );
    let stored = server.data.path().join("alerting").join("receivers.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&stored).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Bad input names the field; a Viewer cannot see contact points; an Editor cannot add one.
    let r = admin
        .send(
            "POST",
            "/v1/receivers",
            Body::Json(json!({"name": "x", "kind": "webhook", "fields": {"url": "ftp://x"}})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.json()["error"].as_str().unwrap().starts_with("url:"),
        "{}",
        r.text()
    );
    let mut viewer = server.user("vera", "viewer").await;
    assert_eq!(
        viewer.send("GET", "/v1/receivers", Body::None).await.status,
        403
    );
    assert_eq!(
        viewer
            .send("POST", "/v1/silences", Body::Json(json!({})))
            .await
            .status,
        403
    );
    assert_eq!(
        viewer.send("GET", "/v1/alerts", Body::None).await.status,
        200
    );
    let mut editor = server.user("eddie", "editor").await;
    assert_eq!(
        editor
            .send("POST", "/v1/receivers", Body::Json(json!({})))
            .await
            .status,
        403
    );

    // Node down after 6 s without a push; a bad parameter is refused with its name.
    let r = editor
        .send(
            "PUT",
            "/v1/rules/node_down",
            Body::Json(json!({"enabled": true, "params": {"duration": "6 s"}})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("duration"), "{}", r.text());
    ok(
        &mut editor,
        "PUT",
        "/v1/rules/node_down",
        json!({"enabled": true, "params": {"duration": "6s"}}),
    )
    .await;
    ok(
        &mut editor,
        "PUT",
        "/v1/rules/login_brute_force",
        json!({"enabled": true, "params": {"threshold": "5"}}),
    )
    .await;

    let agent_admin = Admin::new();
    agent_admin
        .enroll(&server, "alert-host", &["--interval", "1s"])
        .await;
    let agent = agent_admin.agent();
    admin
        .wait_query(
            "perch_node_last_push_timestamp_seconds{node_name=\"alert-host\"}",
            Duration::from_secs(30),
            |r| !r.is_empty(),
        )
        .await;

    // A silence made before it fires holds the notification back.
    let made = ok(&mut editor, "POST", "/v1/silences", json!({"matchers": [{"name": "alertname", "value": "PerchNodeDown"},
        {"name": "node_name", "value": "alert-host"}], "duration": "1h", "comment": "planned reboot"})).await;
    let silence = made["id"].as_str().unwrap().to_owned();
    drop(agent);
    let down = until(Duration::from_secs(60), "node down firing", async || {
        alert(&mut admin, "PerchNodeDown", Some("alert-host"))
            .await
            .filter(|a| a["state"] == "firing")
    })
    .await;
    assert_eq!(down["silenced_by"], json!([silence]), "{down}");
    assert!(
        down["summary"].as_str().unwrap().contains("alert-host"),
        "{down}"
    );
    // The node's badges: on its row of the overview and on its page.
    let nodes = ok(&mut admin, "GET", "/v1/nodes", Value::Null).await;
    let id = nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "alert-host")
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    until(Duration::from_secs(15), "the node's badges", async || {
        let page = admin
            .send("GET", &format!("/nodes/{id}"), Body::None)
            .await
            .text();
        let overview = admin.send("GET", "/", Body::None).await.text();
        let badge = "class=\"badge\" href=\"/alerts\">";
        (page.contains(badge) && overview.contains(badge)).then_some(())
    })
    .await;
    assert!(
        hook.find("PerchNodeDown", "firing").is_none(),
        "a silenced alert was notified"
    );
    let silences = ok(&mut viewer, "GET", "/v1/silences", Value::Null).await;
    let s = silences["silences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == silence.as_str())
        .unwrap();
    assert_eq!(
        (s["createdBy"].as_str(), s["comment"].as_str()),
        (Some("eddie"), Some("planned reboot"))
    );

    // Its expiry lets it through, with the token.
    ok(
        &mut editor,
        "DELETE",
        &format!("/v1/silences/{silence}"),
        Value::Null,
    )
    .await;
    let fired = until(Duration::from_secs(30), "node down notified", async || {
        hook.find("PerchNodeDown", "firing")
    })
    .await;
    assert_eq!(
        fired["alerts"][0]["labels"]["node_name"], "alert-host",
        "{fired}"
    );
    assert!(
        hook.received()
            .iter()
            .all(|(auth, _)| auth.as_deref() == Some("Bearer hook-token-5521"))
    );

    // The agent back: resolved.
    let agent = agent_admin.agent();
    until(Duration::from_secs(60), "node down resolved", async || {
        hook.find("PerchNodeDown", "resolved")
    })
    .await;
    drop(agent);

    // A login flood fires the brute-force alert.
    for i in 0..30 {
        let mut anon = Http::new(&server);
        let _ = anon
            .send(
                "POST",
                "/v1/login",
                Body::Json(json!({"name": format!("guess{i}"), "password": "wrong-password-1"})),
            )
            .await;
    }
    until(
        Duration::from_secs(60),
        "brute force notified",
        async || hook.find("PerchLoginBruteForce", "firing"),
    )
    .await;

    // Email: a test notification reaches the SMTP server.
    let smtp = Smtp::start();
    ok(&mut admin, "POST", "/v1/receivers", json!({"name": "ops-mail", "kind": "email",
        "fields": {"to": "oncall@example.test", "from": "perch@example.test", "smarthost": smtp.addr,
                   "require_tls": "false"}})).await;
    ok(
        &mut admin,
        "POST",
        "/v1/receivers/ops-mail/test",
        Value::Null,
    )
    .await;
    let mail = until(Duration::from_secs(30), "test email", async || {
        smtp.wait_for("PerchTestNotification", Duration::ZERO)
    })
    .await;
    assert!(mail.contains("oncall@example.test"), "{mail}");
    let r = admin
        .send("DELETE", "/v1/receivers/ops-hook", Body::None)
        .await;
    assert_eq!(
        r.status,
        400,
        "a routed contact point is not deleted: {}",
        r.text()
    );
    ok(&mut admin, "DELETE", "/v1/receivers/ops-mail", Value::Null).await;

    // Custom rule files: a good one is used, a bad one is shown with vmalert's error.
    let alerts_dir = server.data.path().join("alerts");
    std::fs::write(alerts_dir.join("good.yml"), "groups:\n- name: team\n  rules:\n  - alert: TeamAlways\n    expr: vector(1)\n    labels:\n      severity: info\n").unwrap();
    std::fs::write(
        alerts_dir.join("bad.yml"),
        "groups:\n- name: broken\n  rules:\n  - alert: Broken\n    expr: up == = 1\n",
    )
    .unwrap();
    let rules = until(
        Duration::from_secs(40),
        "custom files checked",
        async || {
            let rules = ok(&mut viewer, "GET", "/v1/rules", Value::Null).await;
            let files = rules["custom_files"].as_array()?.clone();
            let team = rules["groups"]
                .as_array()?
                .iter()
                .any(|g| g["name"] == "team");
            (files.len() == 2 && team).then_some(rules)
        },
    )
    .await;
    let files = rules["custom_files"].as_array().unwrap();
    let bad = files.iter().find(|f| f["name"] == "bad.yml").unwrap();
    assert!(
        bad["error"].as_str().unwrap().contains("up == = 1"),
        "{bad}"
    );
    assert!(
        files
            .iter()
            .any(|f| f["name"] == "good.yml" && f["error"].is_null())
    );
    until(Duration::from_secs(30), "custom rule firing", async || {
        alert(&mut viewer, "TeamAlways", None).await
    })
    .await;

    // A killed vmalert and Alertmanager come back; readiness says so meanwhile.
    for (pattern, check) in [
        ("vmalert -envflag", "vmalert"),
        ("alertmanager", "alertmanager"),
    ] {
        let pid = server
            .child_pid(pattern)
            .unwrap_or_else(|| panic!("no {pattern} child"));
        std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
        let mut anon = Http::new(&server);
        let line = until(
            Duration::from_secs(10),
            "readiness reports it",
            async || {
                let r = anon.send("GET", "/v1/readyz", Body::None).await;
                (r.status == 503).then(|| {
                    r.json()["checks"][check]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                })
            },
        )
        .await;
        assert!(line != "ok", "{line}");
        until(Duration::from_secs(30), "ready again", async || {
            (anon.send("GET", "/v1/readyz", Body::None).await.status == 200).then_some(())
        })
        .await;
        assert_ne!(server.child_pid(pattern), Some(pid));
    }
    let metrics = admin.send("GET", "/metrics", Body::None).await.text();
    assert!(
        metrics.contains("perch_vmalert_restarts_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("perch_alertmanager_restarts_total 1"),
        "{metrics}"
    );

    // The pages, in Chromium: a silence in one click from the Alerts page.
    let (_driver, c) = browser(&server).await;
    let page = Page::new(&c, &server);
    page.goto("/login").await;
    page.login("admin", STRONG, "/").await;
    page.goto("/alerts").await;
    let table = page.text("table.alerts").await;
    assert!(
        table.contains("TeamAlways") && table.contains("firing"),
        "{table}"
    );
    assert!(
        page.text("nav a.alerts-link")
            .await
            .chars()
            .any(|c| c.is_ascii_digit()),
        "the badge counts firing alerts"
    );
    page.shot("50-alerts-desktop").await;
    page.clean("alerts").await;
    c.find(Locator::XPath(
        "//tr[.//strong[text()='TeamAlways']]//button[@value='1h']",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    page.wait_url("the alerts again", |u| {
        u.query().is_some_and(|q| q.contains("done=silenced"))
    })
    .await;
    let row = page.text("tr.alert-firing").await;
    assert!(
        page.text("table.alerts").await.contains("silenced"),
        "{row}"
    );
    page.goto("/alerts/silences").await;
    let silences = page.text("table.silences").await;
    assert!(
        silences.contains("alertname=TeamAlways") && silences.contains("admin"),
        "{silences}"
    );
    page.shot("51-silences-desktop").await;
    page.goto("/alerts/rules").await;
    let custom = page.text("pre.custom-error").await;
    assert!(custom.contains("up == = 1"), "{custom}");
    page.shot("52-rules-desktop").await;
    page.goto("/alerts/contact-points").await;
    let receivers = page.text("table.receivers").await;
    assert!(
        receivers.contains("ops-hook") && receivers.contains("token: set"),
        "{receivers}"
    );
    assert!(!c.source().await.unwrap().contains("hook-token-5521"));
    page.shot("53-contact-points-desktop").await;
    page.clean("alerting pages").await;
    page.viewport(390, 844, true).await;
    for (path, shot) in [
        ("/alerts", "54-alerts-phone"),
        ("/alerts/silences", "55-silences-phone"),
        ("/alerts/contact-points", "56-contact-points-phone"),
        ("/alerts/rules", "57-rules-phone"),
    ] {
        page.goto(path).await;
        let _ = page.text("h1").await;
        page.shot(shot).await;
        page.assert_fits(390.0).await;
    }
    page.clean("alerting pages on a phone").await;

    // The audit trail holds every change; no secret reached the log.
    let audit = ok(&mut admin, "GET", "/v1/audit?limit=500", Value::Null)
        .await
        .to_string();
    for kind in [
        "contact_point_saved",
        "routing_changed",
        "alert_rule_changed",
        "silence_created",
        "silence_expired",
        "contact_point_tested",
        "contact_point_deleted",
    ] {
        assert!(audit.contains(kind), "{kind} not audited");
    }
    assert!(!audit.contains("hook-token-5521"));
    assert!(server.log().iter().all(|l| !l.contains("hook-token-5521")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_a_pending_alerts_progress() {
    let server = Server::start_with_admin(fast());
    std::fs::write(
        server.data.path().join("alerts").join("slow.yml"),
        "groups:\n- name: slow\n  rules:\n  - alert: SlowToFire\n    expr: vector(1)\n    for: 45s\n",
    )
    .unwrap();
    let mut admin = server.login("admin", STRONG).await;
    let pending = until(Duration::from_secs(40), "pending", async || {
        alert(&mut admin, "SlowToFire", None)
            .await
            .filter(|a| a["state"] == "pending")
    })
    .await;
    let since = pending["since_unix"].as_i64().unwrap();
    // Its state reaches the engine, then Perch restarts on the same data.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let data = server.stop_keeping_data();
    let server = Server::start_in(data, fast());
    let mut admin = server.login("admin", STRONG).await;
    let after = until(Duration::from_secs(40), "pending again", async || {
        alert(&mut admin, "SlowToFire", None).await
    })
    .await;
    let again = after["since_unix"].as_i64().unwrap();
    assert!(
        (again - since).abs() <= 2,
        "the for: clock restarted: {since} then {again} ({after})"
    );
    // It fires 45 s after it first became true, not 45 s after the restart.
    let fired = until(Duration::from_secs(60), "firing", async || {
        alert(&mut admin, "SlowToFire", None)
            .await
            .filter(|a| a["state"] == "firing")
    })
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        now - since < 45 + 20,
        "fired {}s after it became true: {fired}",
        now - since
    );
}
