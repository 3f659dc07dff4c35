//! Users, roles and login against the real binary over TLS.

use std::time::Duration;

use perch_e2e::{Body, Http, Options, STRONG, Server};
use serde_json::json;

#[tokio::test]
async fn setup_with_the_code_from_the_log_then_never_again() {
    let server = Server::start(Options::default());
    let code = server.setup_code();
    let file = server.data.path().join("setup-code");
    let on_disk = std::fs::read_to_string(&file).unwrap();
    assert_eq!(on_disk.trim(), code);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        !server
            .log()
            .iter()
            .any(|l| l.starts_with('{') && l.contains(&code)),
        "the code must not be in the JSON log"
    );

    // The front page leads to setup.
    let mut http = Http::new(&server);
    let r = http.send("GET", "/", Body::None).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/setup")));

    // A wrong code, then the right code with a weak password, then success.
    let r = http
        .send("POST", "/v1/setup", Body::Json(json!({"code": "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-A", "name": "admin", "password": STRONG})))
        .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (403, Some("bad_setup_code"))
    );
    let r = http
        .send(
            "POST",
            "/v1/setup",
            Body::Json(
                json!({"code": code.to_lowercase(), "name": "admin", "password": "password1234"}),
            ),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("password_common")),
        "{}",
        r.text()
    );
    let r = http
        .send(
            "POST",
            "/v1/setup",
            Body::Json(json!({"code": code, "name": "admin", "password": STRONG})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(http.cookie("__Host-perch_session").is_some());
    let set_cookie = r.header("set-cookie").unwrap().to_owned();
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attr), "{set_cookie}");
    }
    let me = http.send("GET", "/v1/me", Body::None).await.json();
    assert_eq!(
        (me["name"].as_str(), me["role"].as_str()),
        (Some("admin"), Some("admin"))
    );

    // The code is single-use, and gone from disk.
    let r = Http::new(&server)
        .send(
            "POST",
            "/v1/setup",
            Body::Json(json!({"code": code, "name": "x", "password": STRONG})),
        )
        .await;
    assert_eq!(r.status, 410);
    assert!(!file.exists());
}

#[test]
fn the_admin_password_file_must_pass_the_policy() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("secret");
    std::fs::write(&file, "password1234\n").unwrap();
    let out = Server::run_to_exit(
        data.path(),
        Options::default()
            .arg("--admin-password-file")
            .arg(file.to_str().unwrap()),
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("common and breached"), "{}", out.stderr);
}

#[tokio::test]
async fn the_admin_password_file_creates_the_admin_and_no_setup_code() {
    let server = Server::start_with_admin(Options::default());
    assert!(!server.log().iter().any(|l| l.contains("one-time code")));
    assert!(!server.data.path().join("setup-code").exists());
    let mut admin = server.login("admin", STRONG).await;
    assert_eq!(
        admin.send("GET", "/v1/me", Body::None).await.json()["role"],
        "admin"
    );
    // The access log names the user, and never the password or the session id.
    let line = server
        .wait_for_log(r#""path":"/v1/me""#, Duration::from_secs(3))
        .expect("access line");
    assert!(line.contains(r#""user":"admin""#), "{line}");
    let session = admin.cookie("__Host-perch_session").unwrap().to_owned();
    for l in server.log() {
        assert!(
            !l.contains(STRONG) && !l.contains(&session),
            "secret in log: {l}"
        );
    }
}

#[tokio::test]
async fn failures_are_throttled_per_address_without_blocking_others() {
    let server = Server::start_with_admin(Options::default());
    let mut attacker = Http::new(&server);
    let wrong = json!({"name": "admin", "password": "not-the-password-at-all"});
    for i in 0..5 {
        let r = attacker
            .send("POST", "/v1/login", Body::Json(wrong.clone()))
            .await;
        assert_eq!(r.status, 401, "attempt {i}: {}", r.text());
    }
    let r = attacker
        .send("POST", "/v1/login", Body::Json(wrong.clone()))
        .await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    // Throttled before the password is looked at: even the right one is refused here.
    let right = json!({"name": "admin", "password": STRONG});
    let r = attacker
        .send("POST", "/v1/login", Body::Json(right.clone()))
        .await;
    assert_eq!(r.status, 429);
    // The admin at another address logs in at once.
    let mut admin = Http::new(&server).from_address("127.0.0.2");
    let r = admin.send("POST", "/v1/login", Body::Json(right)).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Counted in metrics and in the audit trail.
    let metrics = admin.send("GET", "/metrics", Body::None).await.text();
    assert!(
        metrics.contains(r#"perch_login_failures_total{reason="bad_password"} 5"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"perch_login_failures_total{reason="throttled"} 2"#),
        "{metrics}"
    );
    let audit = admin
        .send("GET", "/v1/audit?kind=throttled", Body::None)
        .await
        .json();
    let events = audit["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{audit}");
    assert_eq!(events[0]["client"], "127.0.0.1");
    let failures = admin
        .send("GET", "/v1/audit?kind=login_failure&user=admin", Body::None)
        .await
        .json();
    assert_eq!(failures["events"].as_array().unwrap().len(), 5);
    assert_eq!(failures["events"][0]["detail"], "bad_password");
}

#[tokio::test]
async fn an_unknown_user_is_refused_like_a_wrong_password() {
    let server = Server::start_with_admin(Options::default());
    let mut http = Http::new(&server);
    let r = http
        .send(
            "POST",
            "/v1/login",
            Body::Json(json!({"name": "nobody", "password": STRONG})),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (401, Some("invalid_credentials"))
    );
    let r = http
        .send(
            "POST",
            "/v1/login",
            Body::Json(json!({"name": "admin", "password": "wrong-wrong-wrong"})),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (401, Some("invalid_credentials"))
    );
}

#[tokio::test]
async fn idle_sessions_expire() {
    let server = Server::start_with_admin(Options::default().arg("--session-idle").arg("2s"));
    let mut admin = server.login("admin", STRONG).await;
    assert_eq!(admin.send("GET", "/v1/me", Body::None).await.status, 200);
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(admin.send("GET", "/v1/me", Body::None).await.status, 401);
}

#[tokio::test]
async fn sessions_end_on_logout_password_change_role_change_and_deletion() {
    let server = Server::start_with_admin(Options::default());
    let mut admin = server.login("admin", STRONG).await;
    let r = admin
        .send(
            "POST",
            "/v1/users",
            Body::Json(
                json!({"name": "carol", "role": "editor", "password": "temporary-ocelot-42-x"}),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let carol_id = r.json()["id"].as_u64().unwrap();

    // A user an admin created must change the password first, and cannot reuse it.
    let mut carol = server.login("carol", "temporary-ocelot-42-x").await;
    assert_eq!(
        carol.send("GET", "/v1/me", Body::None).await.json()["must_change_password"],
        true
    );
    let r = carol.send("GET", "/", Body::None).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/password")));
    let r = carol
        .send(
            "PUT",
            "/v1/me/password",
            Body::Json(json!({"current": "temporary-ocelot-42-x", "new": "temporary-ocelot-42-x"})),
        )
        .await;
    assert_eq!(r.json()["code"], "password_reused", "{}", r.text());
    let other_tab = carol.clone();
    let r = carol
        .send(
            "PUT",
            "/v1/me/password",
            Body::Json(
                json!({"current": "temporary-ocelot-42-x", "new": "quiet-heron-fishes-at-dawn"}),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(carol.send("GET", "/", Body::None).await.status, 200);
    // The password change ended the other session.
    assert_eq!(
        other_tab
            .clone()
            .send("GET", "/v1/me", Body::None)
            .await
            .status,
        401
    );

    // A role change ends the user's sessions.
    let r = admin
        .send(
            "PUT",
            &format!("/v1/users/{carol_id}/role"),
            Body::Json(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(carol.send("GET", "/v1/me", Body::None).await.status, 401);

    // Logout ends the session on the server: the old cookie is useless.
    let mut carol = server.login("carol", "quiet-heron-fishes-at-dawn").await;
    let stolen = carol.clone();
    assert_eq!(
        carol.send("POST", "/v1/logout", Body::None).await.status,
        204
    );
    assert_eq!(
        stolen
            .clone()
            .send("GET", "/v1/me", Body::None)
            .await
            .status,
        401
    );

    // Deletion ends them too.
    let carol = server.login("carol", "quiet-heron-fishes-at-dawn").await;
    assert_eq!(
        admin
            .send("DELETE", &format!("/v1/users/{carol_id}"), Body::None)
            .await
            .status,
        204
    );
    assert_eq!(
        carol.clone().send("GET", "/v1/me", Body::None).await.status,
        401
    );
}

#[tokio::test]
async fn the_last_admin_stays() {
    let server = Server::start_with_admin(Options::default());
    let mut admin = server.login("admin", STRONG).await;
    let users = admin.send("GET", "/v1/users", Body::None).await.json();
    let id = users["users"][0]["id"].as_u64().unwrap();
    let r = admin
        .send(
            "PUT",
            &format!("/v1/users/{id}/role"),
            Body::Json(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (409, Some("last_admin"))
    );
    let r = admin
        .send("DELETE", &format!("/v1/users/{id}"), Body::None)
        .await;
    assert_eq!(r.status, 409);
}

#[tokio::test]
async fn api_tokens_are_shown_once_expire_and_revoke() {
    let server = Server::start_with_admin(Options::default());
    let mut admin = server.login("admin", STRONG).await;
    let r = admin
        .send(
            "POST",
            "/v1/tokens",
            Body::Json(json!({"name": "grafana", "role": "viewer", "expires_in_days": 30})),
        )
        .await;
    assert_eq!(r.status, 201);
    let secret = r.json()["secret"].as_str().unwrap().to_owned();
    let id = r.json()["token"]["id"].as_u64().unwrap();
    let listed = admin.send("GET", "/v1/tokens", Body::None).await.text();
    assert!(
        !listed.contains(&secret),
        "a listing must not show the secret"
    );
    assert!(std::fs::read_dir(server.data.path().join("perch/db")).is_ok());

    let mut grafana = Http::new(&server);
    grafana.bearer = Some(secret);
    assert_eq!(
        grafana.send("GET", "/v1/me", Body::None).await.json()["role"],
        "viewer"
    );
    assert_eq!(
        grafana.send("GET", "/v1/users", Body::None).await.status,
        403
    );
    assert_eq!(
        grafana.send("GET", "/metrics", Body::None).await.status,
        200
    );
    assert_eq!(
        admin
            .send("DELETE", &format!("/v1/tokens/{id}"), Body::None)
            .await
            .status,
        204
    );
    assert_eq!(grafana.send("GET", "/v1/me", Body::None).await.status, 401);
}

#[tokio::test]
async fn metrics_need_an_admin_or_a_token_and_readyz_stays_open() {
    let server = Server::start_with_admin(Options::default());
    let mut anonymous = Http::new(&server);
    assert_eq!(
        anonymous.send("GET", "/metrics", Body::None).await.status,
        401
    );
    assert_eq!(
        anonymous.send("GET", "/v1/readyz", Body::None).await.status,
        200
    );
    let mut admin = server.login("admin", STRONG).await;
    let mut vic = server.user("vic", "viewer").await;
    assert_eq!(vic.send("GET", "/metrics", Body::None).await.status, 403);
    assert_eq!(admin.send("GET", "/metrics", Body::None).await.status, 200);
}

#[tokio::test]
async fn a_change_acknowledged_before_kill_9_survives() {
    let mut server = Server::start_with_admin(Options::default());
    let mut admin = server.login("admin", STRONG).await;
    let r = admin
        .send(
            "POST",
            "/v1/users",
            Body::Json(
                json!({"name": "durable", "role": "viewer", "password": "temporary-ocelot-42-x"}),
            ),
        )
        .await;
    assert_eq!(r.status, 201);
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(5)).expect("killed");
    let data = std::mem::replace(&mut server.data, tempfile::tempdir().unwrap());
    let again = Server::start_in(data, Options::default());
    let r = again.login("durable", "temporary-ocelot-42-x").await;
    assert!(r.cookie("__Host-perch_session").is_some());
}

#[tokio::test]
async fn forms_without_the_csrf_token_or_from_another_origin_are_refused() {
    let server = Server::start_with_admin(Options::default());
    let mut admin = server.login("admin", STRONG).await;
    // The JSON API with a session cookie but without X-CSRF-Token.
    let mut no_token = admin.clone();
    no_token.csrf = None;
    let r = no_token
        .send(
            "POST",
            "/v1/tokens",
            Body::Json(json!({"name": "x", "role": "viewer"})),
        )
        .await;
    assert_eq!((r.status, r.json()["code"].as_str()), (403, Some("csrf")));
    // A page form with the right token is accepted.
    let r = admin
        .send(
            "POST",
            "/tokens",
            Body::Form(&[("name", "ok"), ("role", "viewer")]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("shown only this once"));
}

#[tokio::test]
async fn the_setup_code_is_replaced_at_each_start_while_no_admin_exists() {
    let mut first = Server::start(Options::default());
    let old = first.setup_code();
    first.signal("TERM");
    first.wait_exit(Duration::from_secs(10)).expect("stopped");
    let data = std::mem::replace(&mut first.data, tempfile::tempdir().unwrap());
    let second = Server::start_in(data, Options::default());
    let new = second.setup_code();
    assert_ne!(old, new);
    let mut http = Http::new(&second);
    let r = http
        .send(
            "POST",
            "/v1/setup",
            Body::Json(json!({"code": old, "name": "admin", "password": STRONG})),
        )
        .await;
    assert_eq!(r.status, 403, "the old code must be dead: {}", r.text());
    let r = http
        .send(
            "POST",
            "/v1/setup",
            Body::Json(json!({"code": new, "name": "admin", "password": STRONG})),
        )
        .await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn a_password_past_the_maximum_age_must_be_changed() {
    let server = Server::start_with_admin(Options::default().arg("--password-max-age").arg("1s"));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut admin = server.login("admin", STRONG).await;
    let me = admin.send("GET", "/v1/me", Body::None).await.json();
    assert_eq!(me["must_change_password"], true, "{me}");
    assert_eq!(
        admin.send("GET", "/v1/users", Body::None).await.json()["code"],
        "password_change_required"
    );
    let r = admin
        .send(
            "PUT",
            "/v1/me/password",
            Body::Json(json!({"current": STRONG, "new": "quiet-heron-fishes-at-dawn"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(admin.send("GET", "/v1/users", Body::None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_guesses_gets_five_password_checks_at_most() {
    let server = Server::start_with_admin(Options::default());
    let http = Http::new(&server);
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let mut h = http.clone();
        burst.spawn(async move {
            h.send(
                "POST",
                "/v1/login",
                Body::Json(json!({"name": "admin", "password": "guess-guess-guess"})),
            )
            .await
            .status
        });
    }
    let mut checked = 0;
    while let Some(status) = burst.join_next().await {
        match status.unwrap() {
            401 => checked += 1,
            429 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(checked, 5, "only five guesses may reach the password check");
}

#[tokio::test]
async fn a_token_stops_working_when_its_creator_is_no_longer_an_admin() {
    let server = Server::start_with_admin(Options::default());
    let mut admin = server.login("admin", STRONG).await;
    let mut eve = server.user("eve", "admin").await;
    let r = eve
        .send(
            "POST",
            "/v1/tokens",
            Body::Json(json!({"name": "eve-script", "role": "admin"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let mut script = Http::new(&server);
    script.bearer = Some(r.json()["secret"].as_str().unwrap().to_owned());
    assert_eq!(
        script.send("GET", "/v1/users", Body::None).await.status,
        200
    );
    let eve_id = admin.user_record("eve").await["id"].as_u64().unwrap();
    let r = admin
        .send(
            "PUT",
            &format!("/v1/users/{eve_id}/role"),
            Body::Json(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        script.send("GET", "/v1/users", Body::None).await.status,
        401
    );
}

/// A user's time zone: set on the account, shown on every page's times, refused when unknown.
#[tokio::test]
async fn each_user_reads_times_in_their_own_zone() {
    let server = Server::start_with_admin(Options::default());
    let mut admin = server.login("admin", STRONG).await;
    server.token("viewer").await;
    let page = admin.send("GET", "/tokens", Body::None).await.text();
    assert!(page.contains(" UTC <small>"), "UTC by default: {page}");

    let r = admin
        .send(
            "PUT",
            "/v1/me/time-zone",
            Body::Json(json!({"zone": "Mars/Olympus"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("not a time zone"), "{}", r.text());
    let r = admin
        .send(
            "PUT",
            "/v1/me/time-zone",
            Body::Json(json!({"zone": "Asia/Tokyo"})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        admin.send("GET", "/v1/me", Body::None).await.json()["time_zone"],
        "Asia/Tokyo"
    );
    let page = admin.send("GET", "/tokens", Body::None).await.text();
    assert!(page.contains(" JST <small>"), "in the user's zone: {page}");
    // Another user still reads UTC.
    let mut other = server.user("utc-reader", "admin").await;
    let page = other.send("GET", "/tokens", Body::None).await.text();
    assert!(
        page.contains(" UTC <small>") && !page.contains("JST"),
        "{page}"
    );
    // Back to UTC with an empty zone; the Password page offers the zone names.
    let r = admin
        .send("PUT", "/v1/me/time-zone", Body::Json(json!({"zone": ""})))
        .await;
    assert_eq!(r.status, 204);
    let page = admin.send("GET", "/password", Body::None).await.text();
    assert!(
        page.contains(r#"<option value="Europe/Berlin">"#),
        "zone names offered"
    );
    assert!(
        admin
            .send("GET", "/tokens", Body::None)
            .await
            .text()
            .contains(" UTC <small>")
    );
}
