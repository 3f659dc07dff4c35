//! The pages in real headless Chromium (Debian's chromium and chromium-driver), driven over
//! WebDriver: setup with the code from the log, login, the forced password change for a user
//! an admin created, logout. Screenshots go to `target/screenshots/` to be looked at.

use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use perch_e2e::chromium::{Cdp, Page, browser};
use perch_e2e::{Options, STRONG, Server};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_login_forced_change_and_logout_in_chromium() {
    let server = Server::start(Options::default());
    let code = server.setup_code();
    let (_driver, c) = browser(&server).await;
    let page = Page::new(&c, &server);
    page.viewport(1280, 800, false).await;

    // The front page leads to setup; the code from the log creates the admin.
    page.goto("/").await;
    page.at("/setup").await;
    page.shot("01-setup").await;
    page.clean("setup").await;
    page.fill("code", &code.to_lowercase()).await;
    page.fill("name", "admin").await;
    page.fill("password", "password1234").await;
    page.submit("/setup").await;
    page.at("/setup").await;
    assert!(
        page.text(".notice.error").await.contains("common"),
        "weak password accepted"
    );
    page.shot("02-setup-refused").await;
    // The refusal is a 400, which the console reports; nothing else may be there.
    assert_eq!(page.console_errors().await.len(), 1);
    // The code is kept; the password's fault is under the password.
    let kept = c.find(Locator::Id("code")).await.unwrap();
    assert_eq!(
        kept.prop("value").await.unwrap().as_deref(),
        Some(code.to_lowercase().as_str())
    );
    assert!(page.text("#password-error").await.contains("common"));
    page.fill("code", &code).await;
    page.fill("password", STRONG).await;
    page.submit("/setup").await;
    page.at("/").await;
    assert!(page.text("h1").await.contains("Overview"));
    assert!(page.text("header").await.contains("admin"));
    page.shot("03-home-admin").await;
    page.clean("home").await;

    // A refused new user: the form keeps the name and role, and says why beside them.
    page.goto("/users").await;
    page.fill("new-name", "erin").await;
    c.find(Locator::Css("#new-role option[value='editor']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    page.fill("new-password", "password1234").await;
    page.submit("/users").await;
    page.at("/users").await;
    assert!(
        page.text("#new-user-error")
            .await
            .contains("The user was not created")
    );
    let name = c.find(Locator::Id("new-name")).await.unwrap();
    assert_eq!(name.prop("value").await.unwrap().as_deref(), Some("erin"));
    let role = c.find(Locator::Id("new-role")).await.unwrap();
    assert_eq!(role.prop("value").await.unwrap().as_deref(), Some("editor"));
    assert!(!page.text("table").await.contains("erin"));
    page.shot("03b-user-refused").await;
    assert_eq!(page.console_errors().await.len(), 1, "the 400 only");

    // The admin creates a viewer with a temporary password.
    page.goto("/users").await;
    page.fill("new-name", "dora").await;
    page.fill("new-password", "temporary-ocelot-42-x").await;
    page.submit("/users").await;
    page.at("/users").await;
    assert!(page.text(".notice.success").await.contains("User created"));
    assert!(page.text("table").await.contains("dora"));
    page.shot("04-users").await;
    page.clean("users").await;

    // Add node: a single-use enrollment token inside the exact perch-admin commands.
    page.goto("/nodes").await;
    assert!(page.text("table").await.contains("No nodes yet"));
    page.goto("/nodes/add").await;
    page.submit("/nodes/add").await;
    let insecure = page.text("#command-insecure").await;
    let fingerprint = page.text("#fingerprint").await;
    assert!(
        insecure.starts_with("PERCH_ENROLL_TOKEN=perch_enroll_")
            && insecure.contains(" perch-admin config --server localhost:")
            && insecure.ends_with(&format!(
                "--server-insecure-ssl --server-fingerprint {fingerprint}"
            )),
        "{insecure}"
    );
    assert!(
        page.text("#command-ssl")
            .await
            .contains("--ca-file ca-certs.pem")
    );
    assert_eq!(page.text("#fingerprint").await.split(':').count(), 32);
    assert!(page.text("#server-local").await.contains("other"));
    assert!(
        c.find(Locator::Id("server-uncovered")).await.is_err(),
        "localhost is covered"
    );
    page.shot("04b-add-node").await;
    // The name other machines use, typed on the page, goes into the commands.
    page.fill("server", "perch.example.net").await;
    page.submit("/nodes/add").await;
    let typed = page
        .text_containing("#command-insecure", "perch.example.net")
        .await;
    assert!(
        typed.contains(" perch-admin config --server perch.example.net --server-insecure-ssl"),
        "{typed}"
    );
    assert!(
        c.find(Locator::Id("server-local")).await.is_err(),
        "no warning for a name others can use"
    );
    // ... but the generated certificate does not cover it: the page says so and how to fix.
    let uncovered = page.text("#server-uncovered").await;
    assert!(
        uncovered.contains("does not cover") && uncovered.contains("PERCH_TLS_SAN"),
        "{uncovered}"
    );
    page.shot("04c-add-node-other-name").await;
    page.clean("add node").await;

    // Log out, log in as dora: the password change cannot be skipped.
    page.submit("/logout").await;
    page.at("/login").await;
    page.login("dora", "temporary-ocelot-42-x", "/password")
        .await;
    page.goto("/").await;
    page.at("/password").await;
    page.goto("/users").await;
    page.at("/password").await;
    page.shot("05-forced-change").await;
    page.clean("forced change").await;
    page.fill("current", "temporary-ocelot-42-x").await;
    page.fill("new", "dora dora dora").await;
    page.fill("confirm", "dora dora dora").await;
    page.submit("/password").await;
    page.at("/password").await;
    let refusal = page.text(".notice.error").await;
    assert!(refusal.contains("user name"), "{refusal}");
    page.shot("06-change-refused").await;
    assert_eq!(page.console_errors().await.len(), 1);
    page.fill("current", "temporary-ocelot-42-x").await;
    page.fill("new", "quiet-heron-fishes-at-dawn").await;
    page.fill("confirm", "quiet-heron-fishes-at-dawn").await;
    page.submit("/password").await;
    page.at("/").await;
    assert!(page.text("h1").await.contains("Overview"));
    assert!(
        page.text(".notice.success")
            .await
            .contains("Password changed")
    );
    assert!(page.text("header").await.contains("dora"));
    assert!(
        !page.text("header").await.contains("Users"),
        "a viewer sees no admin links"
    );
    page.shot("07-home-viewer").await;
    page.clean("viewer home").await;
    // Her own time zone, from the names offered.
    page.goto("/password").await;
    page.fill("zone", "Europe/Berlin").await;
    page.submit("/password/time-zone").await;
    page.at("/password").await;
    assert!(
        page.text(".notice.success")
            .await
            .contains("Time zone saved")
    );
    page.shot("07a-time-zone").await;
    page.goto("/").await;
    page.goto("/users").await;
    assert!(page.text("h1").await.contains("Not allowed"));
    let why = page.text("main").await;
    assert!(
        why.contains("needs the admin role") && why.contains("you are viewer"),
        "what is needed, and who can grant it: {why}"
    );
    assert_eq!(page.console_errors().await.len(), 1, "the 403 only");
    // A viewer sees the nodes, but cannot add one.
    page.goto("/nodes").await;
    assert!(!page.text("main").await.contains("Add node"));
    page.goto("/nodes/add").await;
    assert!(page.text("h1").await.contains("Not allowed"));
    assert_eq!(page.console_errors().await.len(), 1, "the 403 only");

    // Logout says so; the admin deletes dora, asked first, and can step back.
    page.submit("/logout").await;
    page.at("/login").await;
    assert!(page.text(".notice.success").await.contains("signed out"));
    page.login("admin", STRONG, "/").await;
    page.goto("/users").await;
    page.click_link("Delete").await;
    page.wait_url("the question", |u| u.path().ends_with("/delete"))
        .await;
    assert!(page.text("#question").await.contains("dora"));
    assert!(page.text("#loss").await.contains("cannot be undone"));
    page.shot("07b-confirm-delete").await;
    page.clean("confirm delete").await;
    page.click_link("Cancel").await;
    page.at("/users").await;
    assert!(page.text("table").await.contains("dora"), "nothing done");
    page.click_link("Delete").await;
    page.wait_url("the question", |u| u.path().ends_with("/delete"))
        .await;
    let question = page.path().await;
    page.submit(&question).await;
    page.at("/users").await;
    assert!(page.text(".notice.success").await.contains("User deleted"));
    assert!(!page.text("table").await.contains("dora"));
    page.clean("deleted").await;

    // Logout ends the session; the login page at phone width.
    page.submit("/logout").await;
    page.at("/login").await;
    page.goto("/").await;
    page.at("/login").await;
    page.viewport(390, 844, true).await;
    page.goto("/login").await;
    page.shot("08-login-phone").await;

    page.clean("login at phone width").await;
    c.close().await.unwrap();
}

/// The dashboards in Chromium with a real agent's data: the overview and the node page at
/// desktop and phone widths with no console errors, the range picker changing the URL and
/// the charts, hover values, and no Add node for a viewer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_in_chromium() {
    use perch_e2e::admin::Admin;

    let server = Server::start_with_admin(Options::default());
    let admin = Admin::new();
    admin
        .enroll(
            &server,
            "db-1",
            &["--interval", "2s", "--labels", "env=prod,team=data"],
        )
        .await;
    let _agent = admin.agent();
    server
        .login("admin", STRONG)
        .await
        .wait_query(
            "count_over_time(node_load1{node_name=\"db-1\"}[1m]) >= 20",
            Duration::from_secs(60),
            |r| !r.is_empty(),
        )
        .await;
    server.user("vera", "viewer").await;

    let (_driver, c) = browser(&server).await;
    let page = Page::new(&c, &server);
    page.goto("/login").await;
    page.login("admin", STRONG, "/").await;
    page.goto("/?range=15m").await;
    assert!(page.text("table.overview").await.contains("db-1"));
    assert!(page.text("table.overview").await.contains("up"));
    page.shot("10-overview-desktop").await;
    page.clean("overview").await;

    // The node page, from the overview's link.
    page.click_link("db-1").await;
    page.wait_url("the node page", |u| u.path().starts_with("/nodes/"))
        .await;
    assert!(page.text("h1").await.contains("db-1"));
    assert!(page.text(".facts").await.contains("env=prod"));
    let charts = c.find_all(Locator::Css("figure.chart")).await.unwrap();
    assert_eq!(charts.len(), 9, "the node dashboard's nine panels");
    let start_15m = charts[0].attr("data-start").await.unwrap().expect("data");
    page.shot("11-node-desktop").await;
    page.clean("node page").await;
    // Chart text keeps its size whatever the panel's width.
    let label_px = |c: &fantoccini::Client| {
        let c = c.clone();
        async move {
            c.execute(
                "const t = document.querySelector('figure.chart svg.chart-area text'); \
                 return parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().d;",
                vec![],
            )
            .await
            .unwrap()
            .as_f64()
            .unwrap()
        }
    };
    let desktop_px = label_px(&c).await;

    // Hover values: the pointer over a chart shows the tooltip.
    c.find(Locator::Css("figure.chart svg.chart-area"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let tip = c.find(Locator::Css(".chart-tip")).await.unwrap();
    assert!(tip.is_displayed().await.unwrap(), "the hover tooltip shows");
    assert!(tip.text().await.unwrap().contains("UTC"));
    page.shot("11b-node-hover").await;

    // The range picker: 6h changes the URL and the charts.
    page.click_link("6h").await;
    page.wait_url("range=6h in the URL", |u| {
        u.query().is_some_and(|q| q.contains("range=6h"))
    })
    .await;
    let first = c.find(Locator::Css("figure.chart")).await.unwrap();
    let start_6h = first.attr("data-start").await.unwrap().unwrap_or_default();
    assert_ne!(start_6h, start_15m, "the charts follow the range");
    page.clean("6h").await;

    // A phone.
    page.viewport(390, 844, true).await;
    page.goto("/?range=15m").await;
    page.shot("12-overview-phone").await;
    page.clean("overview on a phone").await;
    // Every column is there as a card; the menu is one button, opened without script.
    for column in ["Fullest disk", "Load / core", "Uptime"] {
        let cell = c
            .find(Locator::Css(&format!(
                "table.overview td[data-label='{column}']"
            )))
            .await
            .unwrap();
        assert!(cell.is_displayed().await.unwrap(), "{column} on a phone");
    }
    let nodes_link = c
        .find(Locator::Css(".menu-links a[href='/nodes']"))
        .await
        .unwrap();
    assert!(
        !nodes_link.is_displayed().await.unwrap(),
        "the menu starts closed"
    );
    c.find(Locator::Css("label.menu-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(nodes_link.is_displayed().await.unwrap(), "the menu opens");
    page.shot("12b-menu-phone").await;
    page.click_link("db-1").await;
    let _ = page.text("figure.chart").await;
    page.shot("13-node-phone").await;
    let phone_px = label_px(&c).await;
    assert!(
        (desktop_px - phone_px).abs() < 1.0 && phone_px >= 11.0,
        "chart labels {desktop_px}px on a desktop, {phone_px}px on a phone"
    );
    page.clean("node page on a phone").await;
    page.assert_fits(390.0).await;

    // Explore and the exporter browser render too.
    page.viewport(1280, 800, false).await;
    page.goto(
        "/explore?q=rate(node_cpu_seconds_total%7Bmode%3D%22user%22%7D%5B%24rate%5D)&range=15m",
    )
    .await;
    let _ = page.text("figure.chart").await;
    page.shot("14-explore").await;
    page.clean("explore").await;
    // The metric names are offered as one types; a range keeps the query and its unit.
    let offered = c
        .find(Locator::Css("#metric-names option[value='node_load1']"))
        .await;
    assert!(offered.is_ok(), "node_load1 is offered");
    page.goto("/explore?q=node_memory_MemAvailable_bytes&unit=bytes&range=15m")
        .await;
    page.click_link("1h").await;
    page.wait_url("the 1h range", |u| {
        u.query().is_some_and(|q| q.contains("range=1h"))
    })
    .await;
    let url = c.current_url().await.unwrap();
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert!(
        query.contains(&("unit".into(), "bytes".into()))
            && query.contains(&("q".into(), "node_memory_MemAvailable_bytes".into())),
        "{url}"
    );

    // A viewer sees no Add node.
    page.submit("/logout").await;
    page.at("/login").await;
    page.login("vera", perch_e2e::OWN, "/").await;
    page.goto("/nodes").await;
    assert!(page.text("table").await.contains("db-1"));
    assert!(
        c.find(Locator::Css("a[href='/nodes/add']")).await.is_err(),
        "a viewer sees no Add node"
    );
    page.clean("viewer").await;
}

/// The code of the base32 secret `secret` for the step `offset` steps from now.
fn totp_code(secret: &str, offset: i64) -> String {
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .expect("base32");
    let at = perch_time::unix_now() + offset * perch_auth::totp::STEP_SECONDS;
    perch_auth::totp::code(&secret, perch_auth::totp::step_at(at))
}

/// Six digits that are no code of `secret` this step, the one before or the one after.
fn totp_wrong(secret: &str) -> String {
    let window = [-1, 0, 1].map(|d| totp_code(secret, d));
    (0..)
        .map(|n| format!("{n:06}"))
        .find(|c| !window.contains(c))
        .expect("a million codes, three of them in the window")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_must_enrol_a_second_factor_then_signs_in_with_codes_in_chromium() {
    let server = Server::start_with_admin(Options::default().arg("--require-2fa=admin"));
    let (_driver, c) = browser(&server).await;
    let page = Page::new(&c, &server);
    page.viewport(1280, 800, false).await;

    // The password is right, and nothing opens before a second factor is set up.
    page.goto("/login").await;
    page.login("admin", STRONG, "/two-factor").await;
    assert!(
        page.text(".notice.hint")
            .await
            .contains("needs a second factor")
    );
    page.goto("/users").await;
    page.at("/two-factor").await;
    page.shot("2fa-01-forced").await;
    page.clean("forced enrolment").await;

    // Set up: the QR code drawn on the page, the key to type; the app's code turns it on.
    page.submit("/two-factor/begin").await;
    let secret = page.text("#secret").await;
    assert!(
        c.find(Locator::Css(".qr svg path")).await.is_ok(),
        "the QR code"
    );
    page.shot("2fa-02-enrol").await;
    page.viewport(390, 844, true).await;
    page.shot("2fa-02-enrol-phone").await;
    page.viewport(1280, 800, false).await;
    page.fill("code", &totp_code(&secret, 0)).await;
    page.submit("/two-factor/confirm").await;
    let codes = page.text("#recovery-codes").await;
    let recovery: Vec<String> = codes.split_whitespace().map(str::to_owned).collect();
    assert_eq!(recovery.len(), 10, "{codes}");
    page.shot("2fa-03-recovery-codes").await;
    c.issue_cmd(Cdp(
        "Emulation.setEmulatedMedia",
        json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
    ))
    .await
    .unwrap();
    page.shot("2fa-03-recovery-codes-dark").await;
    page.clean("enrolled").await;
    page.goto("/users").await;
    page.at("/users").await;
    assert!(page.text("table").await.contains("on"));

    // Out and in again: the second step asks for a code.
    page.submit("/logout").await;
    page.at("/login").await;
    page.login("admin", STRONG, "/login/second-factor").await;
    page.shot("2fa-04-second-step").await;
    // The code that turned it on was used: refused. So is a wrong one.
    page.fill("code", &totp_code(&secret, 0)).await;
    page.submit("/login/second-factor").await;
    assert!(page.text(".notice.error").await.contains("code is wrong"));
    page.shot("2fa-05-code-refused").await;
    let _ = page.console_errors().await;
    page.fill("code", &totp_code(&secret, 1)).await;
    page.submit("/login/second-factor").await;
    page.at("/").await;
    assert!(page.text("h1").await.contains("Overview"));

    // A recovery code, once.
    page.submit("/logout").await;
    page.at("/login").await;
    page.login("admin", STRONG, "/login/second-factor").await;
    page.fill("code", &recovery[0]).await;
    page.submit("/login/second-factor").await;
    page.at("/two-factor").await;
    assert!(page.text(".notice.hint").await.contains("recovery code"));
    assert!(
        page.text(".notice.success")
            .await
            .contains("9 recovery codes left")
    );
    page.shot("2fa-06-recovery-used").await;
    page.submit("/logout").await;
    page.at("/login").await;
    page.login("admin", STRONG, "/login/second-factor").await;
    page.fill("code", &recovery[0]).await;
    page.submit("/login/second-factor").await;
    assert!(page.text(".notice.error").await.contains("code is wrong"));
    let _ = page.console_errors().await;
    page.viewport(390, 844, true).await;
    page.shot("2fa-07-second-step-phone").await;
    page.viewport(1280, 800, false).await;
    // Wrong codes are throttled like wrong passwords.
    let mut throttled = false;
    for _ in 0..10 {
        page.fill("code", &totp_wrong(&secret)).await;
        page.submit("/login/second-factor").await;
        if page
            .text(".notice.error")
            .await
            .contains("Too many failed attempts")
        {
            throttled = true;
            break;
        }
    }
    assert!(throttled, "wrong codes were never throttled");
    let _ = page.console_errors().await;

    // A user with a second factor, made through the API; the admin resets it on the
    // Users page.
    let mut api = perch_e2e::Http::new(&server).from_address("127.0.0.3");
    let body = |v: serde_json::Value| perch_e2e::Body::Json(v);
    let r = api
        .send(
            "POST",
            "/v1/login",
            body(json!({"name": "admin", "password": STRONG})),
        )
        .await;
    assert_eq!(r.json()["second_factor_required"], true);
    let r = api
        .send(
            "POST",
            "/v1/login/second-factor",
            body(json!({"code": recovery[1]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = api
        .send(
            "POST",
            "/v1/users",
            body(json!({"name": "eve", "role": "viewer", "password": perch_e2e::TEMPORARY})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let mut eve = perch_e2e::Http::new(&server).from_address("127.0.0.4");
    eve.send(
        "POST",
        "/v1/login",
        body(json!({"name": "eve", "password": perch_e2e::TEMPORARY})),
    )
    .await;
    let r = eve
        .send(
            "PUT",
            "/v1/me/password",
            body(json!({"current": perch_e2e::TEMPORARY, "new": perch_e2e::OWN})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = eve
        .send("POST", "/v1/me/second-factor", perch_e2e::Body::None)
        .await;
    let eve_secret = r.json()["secret"].as_str().unwrap().to_owned();
    let r = eve
        .send(
            "POST",
            "/v1/me/second-factor/confirm",
            body(json!({"code": totp_code(&eve_secret, 0)})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The browser's admin waits out the throttle, signs in with another recovery code,
    // and resets eve's second factor on the Users page.
    tokio::time::sleep(Duration::from_secs(3)).await;
    page.fill("code", &recovery[2]).await;
    page.submit("/login/second-factor").await;
    page.at("/two-factor").await;
    page.goto("/users").await;
    page.at("/users").await;
    let users = page.text("table").await;
    assert!(users.contains("eve"), "{users}");
    let eve_id = api.user_record("eve").await["id"].as_u64().unwrap();
    page.shot("2fa-08-users").await;
    page.submit(&format!("/users/{eve_id}/second-factor/reset"))
        .await;
    page.at("/users").await;
    assert!(
        page.text(".notice.success")
            .await
            .contains("Second factor reset")
    );
    page.shot("2fa-09-reset").await;
    page.clean("reset").await;
    assert_eq!(api.user_record("eve").await["second_factor"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backups_page_takes_one_and_offers_it_for_download_in_chromium() {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("key.txt");
    let made = Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .expect("age-keygen (Debian's age package)");
    assert!(made.status.success());
    let recipient = std::fs::read_to_string(&key)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(str::to_owned))
        .unwrap();
    let server = Server::start_with_admin(
        Options::default()
            .arg("--backup-dir")
            .arg(keys.path().join("backups").to_str().unwrap())
            .arg("--backup-recipient")
            .arg(recipient),
    );
    let (_driver, c) = browser(&server).await;
    let page = Page::new(&c, &server);
    page.goto("/login").await;
    page.login("admin", STRONG, "/").await;
    page.click_link("Backups").await;
    page.at("/backups").await;
    assert!(page.text("#backups tbody").await.contains("No backups"));
    assert!(page.text(".facts").await.contains("1 recipient"));
    page.shot("backups-1-empty").await;
    page.submit("/backups").await;
    // The page refreshes itself while the backup runs, then lists it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let link = loop {
        if let Ok(a) = c.find(Locator::Css("#backups tbody a")).await
            && let Ok(text) = a.text().await
        {
            break text;
        }
        assert!(Instant::now() < deadline, "the backup is listed");
        tokio::time::sleep(Duration::from_millis(300)).await;
        if c.find(Locator::Id("backup-running")).await.is_err() {
            page.goto("/backups").await;
        }
    };
    assert!(
        link.starts_with("perch-backup-") && link.ends_with(".age"),
        "{link}"
    );
    let row = page.text("#backups tbody tr").await;
    assert!(row.contains("admin"), "who took it: {row}");
    page.shot("backups-2-taken").await;
    page.viewport(390, 844, true).await;
    page.goto("/backups").await;
    page.shot("backups-3-phone").await;
    page.clean("backups").await;
    let href = c
        .find(Locator::Css("#backups tbody a"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(href, format!("/backups/{link}"));
    let mut api = server.login("admin", STRONG).await;
    let r = api.send("GET", &href, perch_e2e::Body::None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert!(r.body.starts_with(b"age-encryption.org/v1\n"));
}
