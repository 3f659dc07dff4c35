//! The second factor against the real server: enrolment forced for admins, the two-step
//! sign-in of the JSON API, codes used once, recovery codes, the throttle, an admin's
//! reset, the audit trail, and the key file.

use std::time::Duration;

use perch_auth::totp;
use perch_e2e::{Body, Http, Options, STRONG, Server};
use serde_json::json;

/// The code of the secret `base32` for the step `offset` steps from now.
fn code(base32: &str, offset: i64) -> String {
    let secret = data_encoding::BASE32_NOPAD
        .decode(base32.as_bytes())
        .expect("base32");
    let now = perch_time::unix_now() + offset * totp::STEP_SECONDS;
    totp::code(&secret, totp::step_at(now))
}

/// Six digits that are no code of `base32` this step, the one before or the one after.
fn wrong_code(base32: &str) -> String {
    let window = [code(base32, -1), code(base32, 0), code(base32, 1)];
    (0..)
        .map(|n| format!("{n:06}"))
        .find(|c| !window.contains(c))
        .expect("a million codes, three of them in the window")
}

async fn login(server: &Server, name: &str, password: &str) -> (Http, perch_e2e::Reply) {
    let mut http = Http::new(server);
    let r = http
        .send(
            "POST",
            "/v1/login",
            Body::Json(json!({"name": name, "password": password})),
        )
        .await;
    (http, r)
}

/// Enrols `http`'s user: the secret (base32) and the recovery codes.
async fn enrol(http: &mut Http) -> (String, Vec<String>) {
    let r = http.send("POST", "/v1/me/second-factor", Body::None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let secret = r.json()["secret"].as_str().expect("secret").to_owned();
    assert!(
        r.json()["uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let r = http
        .send(
            "POST",
            "/v1/me/second-factor/confirm",
            Body::Json(json!({"code": code(&secret, 0)})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let codes: Vec<String> = r.json()["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes)
}

#[tokio::test]
async fn admins_must_enrol_and_then_sign_in_in_two_steps() {
    let server = Server::start_with_admin(Options::default().arg("--require-2fa=admin"));

    // An admin without a second factor: nothing but enrolment.
    let (mut admin, r) = login(&server, "admin", STRONG).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = admin.send("GET", "/v1/users", Body::None).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (403, Some("second_factor_enrolment_required")),
        "{}",
        r.text()
    );
    let r = admin.send("POST", "/v1/me/second-factor", Body::None).await;
    let secret = r.json()["secret"].as_str().unwrap().to_owned();
    let r = admin
        .send(
            "POST",
            "/v1/me/second-factor/confirm",
            Body::Json(json!({"code": wrong_code(&secret)})),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (401, Some("invalid_code"))
    );
    let r = admin
        .send(
            "POST",
            "/v1/me/second-factor/confirm",
            Body::Json(json!({"code": code(&secret, 0)})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let recovery: Vec<String> = serde_json::from_value(r.json()["recovery_codes"].clone()).unwrap();
    assert_eq!(recovery.len(), 10);
    assert_eq!(admin.send("GET", "/v1/users", Body::None).await.status, 200);

    // Signing in again: the password opens only the second step.
    let (mut second, r) = login(&server, "admin", STRONG).await;
    assert_eq!(r.json()["second_factor_required"], true, "{}", r.text());
    let r = second.send("GET", "/v1/me", Body::None).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (401, Some("second_factor_required"))
    );
    // The code used to confirm is spent; the next step's works, once.
    let r = second
        .send(
            "POST",
            "/v1/login/second-factor",
            Body::Json(json!({"code": code(&secret, 0)})),
        )
        .await;
    assert_eq!(r.status, 401, "a code is good once: {}", r.text());
    let next = code(&secret, 1);
    let r = second
        .send(
            "POST",
            "/v1/login/second-factor",
            Body::Json(json!({"code": next})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        second.send("GET", "/v1/users", Body::None).await.status,
        200
    );

    // A recovery code once, not twice.
    let (mut third, _) = login(&server, "admin", STRONG).await;
    let r = third
        .send(
            "POST",
            "/v1/login/second-factor",
            Body::Json(json!({"code": recovery[0]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["recovery_codes_left"], 9);
    let (mut fourth, _) = login(&server, "admin", STRONG).await;
    let r = fourth
        .send(
            "POST",
            "/v1/login/second-factor",
            Body::Json(json!({"code": recovery[0]})),
        )
        .await;
    assert_eq!(r.status, 401);

    // An admin resets someone else's second factor, not their own.
    let r = second
        .send(
            "POST",
            "/v1/users",
            Body::Json(json!({"name": "eve", "role": "viewer", "password": perch_e2e::TEMPORARY})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let (mut eve, _) = login(&server, "eve", perch_e2e::TEMPORARY).await;
    let r = eve
        .send(
            "PUT",
            "/v1/me/password",
            Body::Json(json!({"current": perch_e2e::TEMPORARY, "new": perch_e2e::OWN})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    enrol(&mut eve).await;
    assert_eq!(second.user_record("eve").await["second_factor"], true);
    let admin_id = second.user_record("admin").await["id"].as_u64().unwrap();
    let eve_id = second.user_record("eve").await["id"].as_u64().unwrap();
    let r = second
        .send(
            "DELETE",
            &format!("/v1/users/{}/second-factor", admin_id),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = second
        .send(
            "DELETE",
            &format!("/v1/users/{}/second-factor", eve_id),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        eve.send("GET", "/v1/me", Body::None).await.status,
        401,
        "a reset signs the user out"
    );
    let (mut eve_again, r) = login(&server, "eve", perch_e2e::OWN).await;
    assert_eq!(r.json().get("second_factor_required"), None, "{}", r.text());
    assert_eq!(
        eve_again.send("GET", "/v1/me", Body::None).await.status,
        200
    );

    // Wrong codes count in the login throttle.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = fourth
            .send(
                "POST",
                "/v1/login/second-factor",
                Body::Json(json!({"code": wrong_code(&secret)})),
            )
            .await;
        statuses.push(r.status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");

    let audit = second
        .send("GET", "/v1/audit?limit=200", Body::None)
        .await
        .text();
    for kind in [
        "second_factor_enabled",
        "recovery_code_used",
        "second_factor_reset",
    ] {
        assert!(audit.contains(kind), "{kind}: {audit}");
    }
    let metrics = second.send("GET", "/metrics", Body::None).await.text();
    assert!(
        metrics.contains("perch_login_failures_total{reason=\"bad_second_factor\"}")
            && !metrics.contains("perch_login_failures_total{reason=\"bad_second_factor\"} 0\n"),
        "{metrics}"
    );
    assert!(
        !server.log().iter().any(|l| l.contains(&secret)),
        "the secret is never logged"
    );
}

#[tokio::test]
async fn the_second_factor_key_file_missing_stops_the_start_with_the_reason() {
    let mut server = Server::start_with_admin(Options::default().arg("--require-2fa=admin"));
    let (mut admin, _) = login(&server, "admin", STRONG).await;
    enrol(&mut admin).await;
    let key = server.data.path().join("perch").join("second-factor.key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(15)).expect("stopped");
    std::fs::remove_file(&key).unwrap();
    let exited = Server::run_to_exit(server.data.path(), Options::default());
    assert_eq!(exited.status.code(), Some(2), "{}", exited.stderr);
    assert!(
        exited.stderr.contains("second-factor.key") && exited.stderr.contains("missing"),
        "{}",
        exited.stderr
    );
}
