//! The authorization matrix (every route against every kind of caller) and the CSRF rules,
//! through the router as a request takes it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, LOCATION, ORIGIN};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use perch_auth::{Auth, AuthConfig, Principal, Role, SecondFactorPolicy, Store};

use super::dispatch;
use super::table::{ROUTES, face_of};
use crate::request::{Access, App, Body, Face, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use crate::selfmon::SelfMetrics;

fn location(resp: &Response<Body>) -> Option<&str> {
    resp.headers().get(LOCATION).and_then(|v| v.to_str().ok())
}

const HOST_NAME: &str = "perch.test";
const STRONG: &str = "violet-tractor-lantern-9";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Anonymous,
    Session(Role),
    Token(Role),
    /// A node token (a fresh node per case: one route deletes its own node).
    Node,
    /// An unused enrollment token.
    Enroll,
}

struct Fixture {
    app: Arc<App>,
    _dir: tempfile::TempDir,
    tokens: Vec<(Role, String)>,
    admin: Principal,
}

impl Fixture {
    async fn node_token(&self) -> String {
        let n = self.app.auth.nodes().unwrap().len();
        let request = perch_auth::EnrollRequest {
            name: format!("node-{n}"),
            ..Default::default()
        };
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        self.app
            .auth
            .enroll(&self.admin, request, ip)
            .await
            .unwrap()
            .1
    }

    async fn enroll_token(&self) -> String {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        self.app
            .auth
            .create_enroll_token(&self.admin, Duration::from_secs(600), ip)
            .await
            .unwrap()
            .1
    }
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(SelfMetrics::new());
    let store = Store::open(&dir.path().join("db")).unwrap();
    let auth = Auth::new(
        store,
        AuthConfig {
            data_dir: dir.path().to_path_buf(),
            session_idle: Duration::from_secs(600),
            session_lifetime: Duration::from_secs(3600),
            password_min_len: 12,
            password_max_age: None,
            require_second_factor: SecondFactorPolicy::Off,
        },
        perch_auth::LoginFailures::new(|_| {}),
    )
    .unwrap();
    let secret_file = dir.path().join("admin-password");
    std::fs::write(&secret_file, STRONG).unwrap();
    assert!(auth.admin_from_file("admin", &secret_file).await.unwrap());
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let admin = auth.login("admin", STRONG, ip).await.unwrap();
    let admin = auth.session(&admin.id).unwrap().unwrap();
    for role in [Role::Viewer, Role::Editor] {
        let name = role.as_str();
        auth.create_user(&admin, name, role, "temporary-ocelot-42-x", ip)
            .await
            .unwrap();
        let s = auth.login(name, "temporary-ocelot-42-x", ip).await.unwrap();
        let p = auth.session(&s.id).unwrap().unwrap();
        auth.change_password(&p, "temporary-ocelot-42-x", STRONG, ip)
            .await
            .unwrap();
    }
    let mut tokens = Vec::new();
    for role in Role::ALL {
        let (_, secret) = auth
            .create_token(&admin, role.as_str(), role, None, ip)
            .await
            .unwrap();
        tokens.push((role, secret));
    }
    let auth = Arc::new(auth);
    let engine = crate::engine::Engine::new(Duration::from_secs(5));
    let qan = Arc::new(
        perch_qan::Store::open(&dir.path().join("qan"), perch_qan::StoreLimits::default()).unwrap(),
    );
    let backups = crate::backup::Backups::new(
        crate::backup::Sources {
            data_dir: dir.path().to_path_buf(),
            cert_dir: dir.path().join("nginx"),
            dashboards_dir: dir.path().join("dashboards"),
            config_file: None,
            auth: auth.clone(),
            qan: qan.clone(),
        },
        engine.clone(),
        dir.path().join("victoriametrics"),
        metrics.clone(),
        crate::backup::Settings::default(),
    );
    let alerting = crate::alerting::Alerting::new(crate::alerting::AlertingConfig {
        vmalert_bin: "vmalert".into(),
        alertmanager_bin: "prometheus-alertmanager".into(),
        alertmanager_url: None,
        data_dir: dir.path().to_path_buf(),
        evaluation_interval: Duration::from_secs(30),
        group_wait: Duration::from_secs(30),
        group_interval: Duration::from_secs(300),
        repeat_interval: Duration::from_secs(3600),
        external_url: "https://localhost".into(),
    })
    .unwrap();
    let app = Arc::new(App {
        alerting,
        dashboards_dir: dir.path().join("dashboards"),
        engine,
        query_limiter: crate::engine::QueryLimiter::new(4),
        series_limit: crate::engine::SeriesLimit::new(100_000),
        metrics,
        auth,
        backups: Arc::new(backups),
        session_lifetime_s: 3600,
        draining: false.into(),
        body_timeout: Duration::from_secs(5),
        body_budget: crate::request::BodyBudget::new(
            64 << 20,
            super::largest_body_limit(),
            Duration::from_secs(1),
        ),
        certs: None,
        cert_dir: dir.path().join("nginx"),
        qan,
        qan_examples_for_viewers: false,
    });
    Fixture {
        app,
        _dir: dir,
        tokens,
        admin,
    }
}

fn allowed(access: Access, who: Who) -> bool {
    match (access, who) {
        (Access::Public, _) => true,
        (Access::Metrics, Who::Token(_)) | (Access::Metrics, Who::Session(Role::Admin)) => true,
        (Access::Metrics, _) => false,
        (Access::Role(min), Who::Session(r) | Who::Token(r)) => r >= min,
        (Access::Enroll, Who::Session(r) | Who::Token(r)) => r >= Role::Editor,
        (Access::Enroll, Who::Enroll) => true,
        (Access::Write, Who::Session(r) | Who::Token(r)) => r >= Role::Editor,
        (Access::Write | Access::Node, Who::Node) => true,
        (
            Access::Role(_) | Access::Enroll | Access::Node | Access::Write,
            Who::Anonymous | Who::Node | Who::Enroll | Who::Session(_) | Who::Token(_),
        ) => false,
    }
}

/// A denial by the authorization layer, as opposed to anything a handler answers (the
/// machine code is `code` in Perch's API, `errorType` in Prometheus's).
async fn is_denial(resp: Response<Body>, api: bool) -> bool {
    use http_body_util::BodyExt;
    let status = resp.status();
    let to = location(&resp).unwrap_or("").to_owned();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    if api {
        matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
            && ["code", "errorType"].iter().any(|key| {
                body.contains(&format!(r#""{key}":"unauthenticated""#))
                    || body.contains(&format!(r#""{key}":"forbidden""#))
            })
    } else {
        (status == StatusCode::SEE_OTHER && to.starts_with("/login?next="))
            || (status == StatusCode::FORBIDDEN && body.contains("Not allowed"))
    }
}

/// Every route in the table against every kind of caller: the authorization matrix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix() {
    let fx = fixture().await;
    let identities = [
        Who::Anonymous,
        Who::Session(Role::Viewer),
        Who::Session(Role::Editor),
        Who::Session(Role::Admin),
        Who::Token(Role::Viewer),
        Who::Token(Role::Editor),
        Who::Token(Role::Admin),
        Who::Node,
        Who::Enroll,
    ];
    // Requests come from another address than the fixture's logins, so that the failed
    // logins the matrix provokes throttle only themselves.
    let peer: SocketAddr = "127.0.0.9:40000".parse().unwrap();
    let login_ip: IpAddr = "127.0.0.1".parse().unwrap();
    let mut checked = 0;
    for route in ROUTES {
        let path = route
            .path
            .replace("{id}", "999999")
            .replace("{file}", "perch.css");
        let face = face_of(&path);
        let api = face != Face::Page;
        for who in identities {
            let mut b = Request::builder()
                .method(route.method.clone())
                .uri(path.as_str())
                .header(HOST, HOST_NAME)
                .header(ORIGIN, format!("https://{HOST_NAME}"));
            // Valid CSRF proof for every case, so that only authorization is measured:
            // the pre-login double-submit pair on public routes, the session's token elsewhere.
            let mut cookies = vec![format!("{}=c0ffee", LOGIN_CSRF_COOKIE)];
            let mut body = "csrf=c0ffee".to_owned();
            match who {
                Who::Anonymous => {}
                Who::Session(role) => {
                    // A fresh session per case: logout routes end theirs.
                    let name = role.as_str();
                    let s = fx.app.auth.login(name, STRONG, login_ip).await.unwrap();
                    cookies.push(format!("{}={}", SESSION_COOKIE, s.id));
                    b = b.header("x-csrf-token", s.csrf.as_str());
                    if route.guard.access != Access::Public {
                        body = format!("csrf={}", s.csrf);
                    }
                }
                Who::Token(role) => {
                    let secret = &fx.tokens.iter().find(|(r, _)| *r == role).unwrap().1;
                    b = b.header(http::header::AUTHORIZATION, format!("Bearer {secret}"));
                }
                Who::Node => {
                    let secret = fx.node_token().await;
                    b = b.header(http::header::AUTHORIZATION, format!("Bearer {secret}"));
                }
                Who::Enroll => {
                    let secret = fx.enroll_token().await;
                    b = b.header(http::header::AUTHORIZATION, format!("Bearer {secret}"));
                }
            }
            b = b.header(http::header::COOKIE, cookies.join("; "));
            let (content_type, body) = if api && route.method != Method::GET {
                ("application/json", "{}".to_owned())
            } else {
                ("application/x-www-form-urlencoded", body)
            };
            let req = b
                .header(CONTENT_TYPE, content_type)
                .body(Full::new(Bytes::from(body)))
                .unwrap();
            let (_, resp) = dispatch(&fx.app, peer, req).await;
            let denied = is_denial(resp, api).await;
            assert_eq!(
                !denied,
                allowed(route.guard.access, who),
                "{} {} as {who:?}",
                route.method,
                route.path
            );
            checked += 1;
        }
    }
    assert_eq!(checked, ROUTES.len() * identities.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_need_the_csrf_token_and_our_origin() {
    let fx = fixture().await;
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let s = fx.app.auth.login("admin", STRONG, peer.ip()).await.unwrap();
    let cookie = format!("{}={}", SESSION_COOKIE, s.id);
    let cases = [
        (Some(format!("https://{HOST_NAME}")), "csrf=wrong", false),
        (
            Some("https://evil.example".to_owned()),
            format!("csrf={}", s.csrf).leak() as &str,
            false,
        ),
        (None, format!("csrf={}", s.csrf).leak() as &str, false),
        (
            Some(format!("https://{HOST_NAME}")),
            format!("csrf={}", s.csrf).leak() as &str,
            true,
        ),
    ];
    for (origin, body, ok) in cases {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri("/tokens")
            .header(HOST, HOST_NAME)
            .header(http::header::COOKIE, cookie.as_str())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(o) = &origin {
            b = b.header(ORIGIN, o.as_str());
        }
        let req = b
            .body(Full::new(Bytes::from(format!("{body}&name=t&role=viewer"))))
            .unwrap();
        let (_, resp) = dispatch(&fx.app, peer, req).await;
        let refused = resp.status() == StatusCode::FORBIDDEN;
        assert_eq!(
            !refused,
            ok,
            "origin {origin:?}, body {body}: {}",
            resp.status()
        );
    }
    // A bearer token needs no CSRF token: it is not sent by browsers on their own.
    let admin_token = &fx.tokens.iter().find(|(r, _)| *r == Role::Admin).unwrap().1;
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1/tokens")
        .header(HOST, HOST_NAME)
        .header(http::header::AUTHORIZATION, format!("Bearer {admin_token}"))
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(r#"{"name":"x","role":"viewer"}"#)))
        .unwrap();
    let (_, resp) = dispatch(&fx.app, peer, req).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
}

/// One request through the router as `bearer` (an API token's secret), or anonymously.
async fn call(
    fx: &Fixture,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> (StatusCode, http::HeaderMap, String) {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, HOST_NAME)
        .header(CONTENT_TYPE, "application/json");
    if let Some(secret) = bearer {
        b = b.header(http::header::AUTHORIZATION, format!("Bearer {secret}"));
    }
    send(fx, b.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await
}

/// The router's answer to `req`: status, headers and the body as text.
async fn send(fx: &Fixture, req: Request<Full<Bytes>>) -> (StatusCode, http::HeaderMap, String) {
    use http_body_util::BodyExt;
    let peer: SocketAddr = "127.0.0.7:40000".parse().unwrap();
    let (_, resp) = dispatch(&fx.app, peer, req).await;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn token(fx: &Fixture, role: Role) -> &str {
    &fx.tokens.iter().find(|(r, _)| *r == role).unwrap().1
}

fn code(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body).unwrap()["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_api_creates_changes_and_deletes() {
    let fx = fixture().await;
    let admin = token(&fx, Role::Admin).to_owned();
    let body = format!(r#"{{"name":"carol","role":"viewer","password":"{STRONG}"}}"#);
    let (status, _, out) = call(&fx, Method::POST, "/v1/users", Some(&admin), &body).await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    let id = serde_json::from_str::<serde_json::Value>(&out).unwrap()["id"]
        .as_u64()
        .unwrap();
    let (status, _, out) = call(&fx, Method::POST, "/v1/users", Some(&admin), &body).await;
    assert_eq!(
        (status, code(&out)),
        (StatusCode::CONFLICT, "name_taken".into())
    );
    let path = format!("/v1/users/{id}/role");
    let (status, _, _) = call(
        &fx,
        Method::PUT,
        &path,
        Some(&admin),
        r#"{"role":"editor"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, out) = call(&fx, Method::PUT, &path, Some(&admin), r#"{"role":"owner"}"#).await;
    assert_eq!(
        (status, code(&out)),
        (StatusCode::BAD_REQUEST, "bad_input".into())
    );
    assert!(out.contains("the JSON body is not valid"), "{out}");
    let (_, _, out) = call(&fx, Method::GET, "/v1/users", Some(&admin), "").await;
    assert!(out.contains(r#""name":"carol","role":"editor""#), "{out}");
    let path = format!("/v1/users/{id}");
    let (status, _, _) = call(&fx, Method::DELETE, &path, Some(&admin), "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, out) = call(&fx, Method::DELETE, &path, Some(&admin), "").await;
    assert_eq!(
        (status, code(&out)),
        (StatusCode::NOT_FOUND, "not_found".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tokens_api_checks_the_expiry_and_shows_the_secret_once() {
    let fx = fixture().await;
    let admin = token(&fx, Role::Admin).to_owned();
    let (status, _, out) = call(
        &fx,
        Method::POST,
        "/v1/tokens",
        Some(&admin),
        r#"{"name":"t","role":"viewer","expires_in_days":0}"#,
    )
    .await;
    assert_eq!(
        (status, code(&out)),
        (StatusCode::BAD_REQUEST, "bad_input".into())
    );
    assert!(out.contains("expires_in_days is from 1 to 3650"), "{out}");
    let (status, _, out) = call(
        &fx,
        Method::POST,
        "/v1/tokens",
        Some(&admin),
        r#"{"name":"t","role":"viewer","expires_in_days":30}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let (status, _, out) = call(&fx, Method::GET, "/v1/me", Some(&secret), "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(out.contains(r#""kind":"token""#), "{out}");
    let (_, _, list) = call(&fx, Method::GET, "/v1/tokens", Some(&admin), "").await;
    assert!(!list.contains(&secret), "a listing never holds a secret");
    let id = created["token"]["id"].as_u64().unwrap();
    let path = format!("/v1/tokens/{id}");
    let (status, _, _) = call(&fx, Method::DELETE, &path, Some(&admin), "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, headers, out) = call(&fx, Method::GET, "/v1/me", Some(&secret), "").await;
    assert_eq!(
        (status, code(&out)),
        (StatusCode::UNAUTHORIZED, "unauthenticated".into())
    );
    assert!(headers.contains_key(http::header::WWW_AUTHENTICATE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_token_reads_and_removes_only_its_own_node() {
    let fx = fixture().await;
    let node = fx.node_token().await;
    let (status, _, out) = call(&fx, Method::GET, "/v1/node", Some(&node), "").await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert!(out.contains(r#""name":"node-0""#), "{out}");
    let (status, _, _) = call(&fx, Method::GET, "/v1/nodes", Some(&node), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = call(&fx, Method::DELETE, "/v1/node", Some(&node), "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = call(&fx, Method::GET, "/v1/node", Some(&node), "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_take_the_face_of_the_route() {
    let fx = fixture().await;
    let viewer = token(&fx, Role::Viewer).to_owned();
    // The JSON API: a code.
    let (status, headers, out) = call(&fx, Method::DELETE, "/v1/me", Some(&viewer), "").await;
    assert_eq!(
        (status, code(&out)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed".into())
    );
    assert_eq!(headers[http::header::ALLOW], "GET, HEAD");
    let (status, _, out) = call(&fx, Method::GET, "/v1/nothing", Some(&viewer), "").await;
    assert_eq!(
        (status, code(&out)),
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    // Prometheus's API: its own shape.
    let (status, headers, out) = call(
        &fx,
        Method::GET,
        "/prometheus/api/v1/admin/tsdb/snapshot",
        Some(&viewer),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        out.contains(r#""errorType":"not_found""#) && out.contains(r#""status":"error""#),
        "{out}"
    );
    assert!(headers.get(http::header::RETRY_AFTER).is_none());
    let (status, headers, out) = call(
        &fx,
        Method::GET,
        "/prometheus/api/v1/query?query=1",
        Some(&viewer),
        "",
    )
    .await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "the engine is not started here"
    );
    assert!(out.contains(r#""errorType":"unavailable""#), "{out}");
    assert_eq!(headers[http::header::RETRY_AFTER], "5");
    // Remote write: the writer is told to keep its samples.
    let editor = token(&fx, Role::Editor).to_owned();
    let (status, _, out) = call(
        &fx,
        Method::POST,
        "/v1/metrics/write",
        Some(&editor),
        "junk",
    )
    .await;
    assert_eq!(
        (status, code(&out)),
        (StatusCode::BAD_REQUEST, "bad_data".into())
    );
    // Pages: a page, with the status.
    let (status, headers, out) = call(&fx, Method::GET, "/d/missing", Some(&viewer), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        headers[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(out.contains("There is no such dashboard."), "{out}");
    let (status, _, out) = call(
        &fx,
        Method::GET,
        "/explore?from=yesterday",
        Some(&viewer),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        out.contains("Cannot show that range") && out.contains("&#39;from&#39; is not a time"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_route_limit_are_refused_after_admission() {
    let fx = fixture().await;
    let admin = token(&fx, Role::Admin).to_owned();
    let big = "x".repeat(1024 * 1024 + 1);
    let (status, _, out) = call(&fx, Method::POST, "/v1/users", Some(&admin), &big).await;
    assert_eq!(
        (status, code(&out)),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large".into())
    );
    // Anonymous: refused from the headers, whatever the body.
    let (status, _, out) = call(&fx, Method::POST, "/v1/users", None, &big).await;
    assert_eq!(
        (status, code(&out)),
        (StatusCode::UNAUTHORIZED, "unauthenticated".into())
    );
    // The write path takes more than 1 MiB (and refuses it as data, not as size).
    let editor = token(&fx, Role::Editor).to_owned();
    let (status, _, out) = call(&fx, Method::POST, "/v1/metrics/write", Some(&editor), &big).await;
    assert_eq!(
        (status, code(&out)),
        (StatusCode::BAD_REQUEST, "bad_data".into()),
        "{out}"
    );
}

/// A form posted by a browser: this site's origin, the given cookies and CSRF field.
async fn post_form(
    fx: &Fixture,
    path: &str,
    cookies: &str,
    form: &str,
) -> (StatusCode, http::HeaderMap, String) {
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(HOST, HOST_NAME)
        .header(ORIGIN, format!("https://{HOST_NAME}"))
        .header(http::header::COOKIE, cookies)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(form.to_owned())))
        .unwrap();
    send(fx, req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_form_comes_back_with_the_reason() {
    let fx = fixture().await;
    // Login: the form again, 401, the name kept and the reason shown.
    let pre = format!("{LOGIN_CSRF_COOKIE}=c0ffeec0ffeec0ffeec0ffeec0ffeec0");
    let (status, headers, page) = post_form(
        &fx,
        "/login",
        &pre,
        "csrf=c0ffeec0ffeec0ffeec0ffeec0ffeec0&name=admin&password=wrong-horse-battery",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        headers[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.contains("Wrong user name or password."), "{page}");
    assert!(
        page.contains(r#"value="admin""#),
        "the name is kept: {page}"
    );
    // Login that works: the session cookie, and away to the start page.
    let (status, headers, _) = post_form(
        &fx,
        "/login",
        &pre,
        &format!("csrf=c0ffeec0ffeec0ffeec0ffeec0ffeec0&name=admin&password={STRONG}&next=/nodes"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/nodes");
    let cookie = headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(SESSION_COOKIE))
        .expect("a session cookie");
    let id = cookie.split(';').next().unwrap().to_owned();
    let session = fx
        .app
        .auth
        .session(id.split_once('=').unwrap().1)
        .unwrap()
        .unwrap();
    let perch_auth::Via::Session { csrf, .. } = &session.via else {
        unreachable!("a browser session")
    };
    // A user with a weak password: the users page again, 400, with the policy's reason.
    let (status, _, page) = post_form(
        &fx,
        "/users",
        &id,
        &format!("csrf={csrf}&name=dave&role=viewer&password=password1234"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let refusal = fx
        .app
        .auth
        .create_user(
            &fx.admin,
            "dave",
            Role::Viewer,
            "password1234",
            "127.0.0.1".parse().unwrap(),
        )
        .await
        .unwrap_err()
        .to_string();
    let shown = refusal
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;");
    assert!(page.contains(&shown), "{shown} not in {page}");
    // A refused token keeps its name, role and expiry in the form.
    let (status, _, page) = post_form(
        &fx,
        "/tokens",
        &id,
        &format!("csrf={csrf}&name=grafana-ro&role=editor&days=99999"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains(r#"value="grafana-ro""#)
            && page.contains(r#"<option value="editor" selected>"#)
            && page.contains(r#"value="99999""#),
        "{page}"
    );
    // And one that passes: back to the list with the success line.
    let (status, headers, _) = post_form(
        &fx,
        "/users",
        &id,
        &format!("csrf={csrf}&name=dave&role=viewer&password=temporary-ocelot-42-x"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/users?done=created");
}
