//! Databases as PMM does them, against real servers from Debian (MariaDB and PostgreSQL,
//! started here in temporary directories): `perch-admin add mysql|postgresql` refuses a
//! wrong password in the database's words, runs the exporters as supervised children
//! without credentials on any command line, labels every series with the service; the
//! MySQL and PostgreSQL dashboards draw exactly what their PromQL gives; a stopped database
//! is down in `list`, `status` (exit 5), the node page, the overview and the Services page;
//! the pages are looked at in Chromium on a desktop and a phone.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use perch_e2e::admin::{Admin, text};
use perch_e2e::charts::{assert_panels_match, panels, unescape};
use perch_e2e::chromium::{Page, browser};
use perch_e2e::databases::{MariaDb, Postgres};
use perch_e2e::{Body, Options, STRONG, Server};

const MYSQL_PW: &str = "My-Monitor#pw 1";
const PG_PW: &str = "Pg-Monitor/pw:2@x";

/// Every process's command line, for finding secrets in them.
fn command_lines() -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(raw) = std::fs::read(entry.path().join("cmdline")) {
            all.push_str(&String::from_utf8_lossy(&raw).replace('\0', " "));
            all.push('\n');
        }
    }
    all
}

/// Waits (bounded) until `perch-admin list --json` says `service` is up (or down).
fn wait_health(admin: &Admin, service: &str, up: bool, within: Duration) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let out = admin.run(&["list", "--json"]);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let found = list["services"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == service))
            .cloned()
            .unwrap_or_default();
        if found["health"]["up"] == up {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{service} is not {} in time: {list}",
            if up { "up" } else { "down" }
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_watched_as_pmm_does() {
    let server = Server::start_with_admin(Options::default());
    let mut maria = MariaDb::start();
    let mut pg = Postgres::start();
    maria.sql(&format!(
        "CREATE USER 'perch'@'127.0.0.1' IDENTIFIED BY '{MYSQL_PW}' WITH MAX_USER_CONNECTIONS 10; \
         GRANT SELECT, PROCESS, SLAVE MONITOR ON *.* TO 'perch'@'127.0.0.1'; \
         CREATE USER 'bare'@'127.0.0.1' IDENTIFIED BY 'bare-pw-123'; \
         CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY AUTO_INCREMENT, v INT);"
    ));
    pg.sql(&format!(
        "CREATE ROLE perch LOGIN PASSWORD '{}'; GRANT pg_monitor TO perch;",
        PG_PW.replace('\'', "''")
    ));
    pg.sql("CREATE DATABASE shop");
    // Query Analytics' extension, in a server that does not load its library.
    pg.sql("CREATE EXTENSION pg_stat_statements");

    let admin = Admin::new();
    admin
        .enroll(
            &server,
            "db-host",
            &["--interval", "2s", "--labels", "dc=eu1"],
        )
        .await;
    let mut http = server.login("admin", STRONG).await;
    let nodes = http.send("GET", "/v1/nodes", Body::None).await.json();
    let id = nodes["nodes"][0]["id"].as_u64().expect("node id");
    let maria_addr = format!("127.0.0.1:{}", maria.port);

    // Without the exporter installed, the package to install is named.
    let empty = admin.dir.path().join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let out = admin.run_env(
        &["add", "postgresql", "--username", "perch"],
        &[("PATH", empty.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("apt-get install prometheus-postgres-exporter"),
        "{}",
        text(&out)
    );

    // A wrong password: refused in the database's own words, nothing saved.
    let out = admin.run(&[
        "add",
        "mysql",
        "db-mysql",
        &maria_addr,
        "--username",
        "perch",
        "--password",
        "wrong",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("Access denied for user 'perch'") && said.contains("Nothing was added"),
        "{said}"
    );
    assert!(
        said.contains("visible to other users"),
        "the --password warning: {said}"
    );
    let out = admin.run_env(
        &[
            "add",
            "postgresql",
            "db-pg",
            "--host",
            "127.0.0.1",
            "--port",
            &pg.port.to_string(),
            "--username",
            "perch",
        ],
        &[("PERCH_DB_PASSWORD", "not-it")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("password authentication failed for user \"perch\""),
        "{}",
        text(&out)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("not-it"),
        "the password is not echoed: {}",
        text(&out)
    );
    // A user without privileges: added, with the exact GRANT to run.
    let out = admin.run_env(
        &[
            "add",
            "mysql",
            "bare",
            &maria_addr,
            "--username",
            "bare",
            "--skip-connection-check",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = admin.run(&["remove", "mysql", "bare"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = admin.run_env(
        &["add", "mysql", "bare", &maria_addr, "--username", "bare"],
        &[("PERCH_DB_PASSWORD", "bare-pw-123")],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("GRANT PROCESS, SLAVE MONITOR ON *.* TO 'bare'@'127.0.0.1';"),
        "{}",
        text(&out)
    );
    assert!(admin.run(&["remove", "mysql", "bare"]).status.success());

    // The real ones: a password file for MySQL, the environment for PostgreSQL.
    let pwfile = admin.dir.path().join("mysql-pw");
    std::fs::write(&pwfile, format!("{MYSQL_PW}\n")).unwrap();
    let out = admin.run(&[
        "add",
        "mysql",
        "db-mysql",
        &maria_addr,
        "--username",
        "perch",
        "--password-file",
        pwfile.to_str().unwrap(),
        "--environment",
        "prod",
        "--cluster",
        "shop",
        "--replication-set",
        "rs1",
        "--custom-labels",
        "team=payments",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("MariaDB"),
        "{}",
        text(&out)
    );
    // Query Analytics is on, and says what the server lacks (its performance_schema).
    assert!(
        text(&out).contains("performance_schema is off: add performance_schema=ON"),
        "{}",
        text(&out)
    );
    let out = admin.run_env(
        &[
            "add",
            "postgresql",
            "db-pg",
            "--host",
            "127.0.0.1",
            "--port",
            &pg.port.to_string(),
            "--username",
            "perch",
            "--environment",
            "staging",
            "--cluster",
            "shop",
        ],
        &[("PERCH_DB_PASSWORD", PG_PW)],
    );
    assert!(out.status.success(), "{}", text(&out));
    // The extension is there but the library is not loaded: what to set, and the restart.
    assert!(
        text(&out).contains("pg_stat_statements is not loaded: set shared_preload_libraries = 'pg_stat_statements' in postgresql.conf and restart PostgreSQL"),
        "{}",
        text(&out)
    );
    let config = std::fs::metadata(&admin.config).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&config.permissions()) & 0o777,
        0o600
    );

    let log = admin.dir.path().join("agent.log");
    let agent = admin.agent_logged(&log);
    let started = Instant::now();
    let mut viewer = server.user("vic", "viewer").await;
    viewer
        .wait_query(
            &format!(
                "mysql_up{{node_id=\"{id}\",node_name=\"db-host\",dc=\"eu1\",service_name=\"db-mysql\",service_type=\"mysql\",environment=\"prod\",cluster=\"shop\",replication_set=\"rs1\",team=\"payments\"}} == 1"
            ),
            Duration::from_secs(30),
            |r| !r.is_empty(),
        )
        .await;
    viewer
        .wait_query(
            &format!(
                "pg_up{{node_id=\"{id}\",service_name=\"db-pg\",service_type=\"postgresql\",environment=\"staging\",cluster=\"shop\"}} == 1"
            ),
            Duration::from_secs(30),
            |r| !r.is_empty(),
        )
        .await;
    let first_seen = started.elapsed();
    eprintln!("both services' series were queryable {first_seen:?} after the agent started");
    // Two intervals (2 s), plus the engine's 5 s before a sample is shown, plus a second for
    // a loaded machine.
    assert!(
        first_seen <= Duration::from_secs(10),
        "the services' series took {first_seen:?}"
    );
    // Every series of a service carries its labels (none without them).
    let unlabelled = viewer
        .wait_query(
            "count({job=~\"mysql|postgresql\",service_name=\"\"})",
            Duration::from_secs(1),
            |_| true,
        )
        .await;
    assert!(
        unlabelled.is_empty(),
        "series of a service without its labels: {unlabelled:?}"
    );

    // No password on any command line; the exporters are the agent's children.
    let lines = command_lines();
    for secret in [MYSQL_PW, PG_PW, "Pg-Monitor%2Fpw"] {
        assert!(
            !lines.contains(secret),
            "a password on a command line: {lines}"
        );
    }
    assert!(
        lines.contains("prometheus-mysqld-exporter --config.my-cnf="),
        "{lines}"
    );
    assert!(
        lines.contains("prometheus-postgres-exporter --web.listen-address=127.0.0.1:"),
        "{lines}"
    );
    for file in std::fs::read_dir(admin.dir.path().join("perch").join("services"))
        .unwrap()
        .flatten()
    {
        let mode = std::os::unix::fs::PermissionsExt::mode(&file.metadata().unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600, "{}", file.path().display());
    }

    // Some work for the rates.
    for i in 0..30 {
        maria.sql(&format!(
            "INSERT INTO shop.orders (v) VALUES ({i}); SELECT COUNT(*) FROM shop.orders;"
        ));
        pg.sql(&format!("CREATE TABLE IF NOT EXISTS t (v int); INSERT INTO t VALUES ({i}); SELECT count(*) FROM t;"));
    }
    viewer
        .wait_query(
            &format!("count_over_time(mysql_global_status_uptime{{node_id=\"{id}\"}}[1m]) >= 20"),
            Duration::from_secs(90),
            |r| !r.is_empty(),
        )
        .await;
    wait_health(&admin, "db-mysql", true, Duration::from_secs(10));

    // An exporter that dies is started again, and the service comes back.
    let state_file = admin.dir.path().join("perch").join("agent-state.json");
    let pids = |file: &std::path::Path| -> Vec<u64> {
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(file).unwrap_or_default()).unwrap_or_default();
        state["exporter_pids"]
            .as_array()
            .map(|a| a.iter().filter_map(serde_json::Value::as_u64).collect())
            .unwrap_or_default()
    };
    let before = pids(&state_file);
    assert_eq!(before.len(), 2, "two exporters: {before:?}");
    std::process::Command::new("kill")
        .args(["-9", &before[0].to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = pids(&state_file);
        if now.len() == 2 && !now.contains(&before[0]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the exporter was not started again: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_health(&admin, "db-mysql", true, Duration::from_secs(20));
    wait_health(&admin, "db-pg", true, Duration::from_secs(20));
    let list = admin.run(&["list"]);
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        listed.contains("db-mysql MySQL 10.") && listed.contains("db-pg PostgreSQL 1"),
        "{listed}"
    );
    assert!(listed.contains("UP since"), "{listed}");
    let status = admin.run(&["status"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));

    // Frozen, so that the page's queries and the direct ones see the same samples.
    drop(agent);
    tokio::time::sleep(Duration::from_secs(8)).await;
    for (kind, service, empty) in [
        (
            "mysql",
            "db-mysql",
            &[
                "Replication lag",
                "Replication IO and SQL threads",
                "Table locks waited",
            ][..],
        ),
        (
            "postgresql",
            "db-pg",
            &["Deadlocks", "Temporary file bytes"][..],
        ),
    ] {
        let page = viewer
            .send(
                "GET",
                &format!("/d/{kind}?node={id}&service={service}&range=15m"),
                Body::None,
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.text());
        let html = page.text();
        assert!(html.contains(&format!("{service} on db-host")), "{html}");
        assert_panels_match(
            &mut viewer,
            &html,
            &panels(kind),
            &[("$node_id", &id.to_string()), ("$service_name", service)],
            empty,
        )
        .await;
    }
    // A service dashboard needs its service; a name that could escape PromQL is refused.
    let r = viewer.send("GET", "/d/mysql", Body::None).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = viewer
        .send(
            "GET",
            &format!("/d/mysql?node={id}&service=x%22%7Dor%20up%7Bx%3D%22"),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());

    // The Services page, the node page and the overview list both, up.
    let agent = admin.agent_logged(&log);
    wait_health(&admin, "db-pg", true, Duration::from_secs(20));
    tokio::time::sleep(Duration::from_secs(6)).await;
    let services = unescape(&viewer.send("GET", "/services", Body::None).await.text());
    for want in [
        "db-mysql",
        "db-pg",
        "MariaDB",
        "15.",
        "PostgreSQL",
        "prod",
        "staging",
        &format!("/d/mysql?node={id}&service=db-mysql"),
    ] {
        assert!(
            services.contains(want),
            "{want} on the Services page: {services}"
        );
    }
    assert!(!services.contains("status down"), "{services}");
    let only = viewer
        .send("GET", "/services?type=postgresql", Body::None)
        .await
        .text();
    assert!(
        only.contains("db-pg") && !only.contains(">db-mysql<"),
        "{only}"
    );
    let node = unescape(
        &viewer
            .send("GET", &format!("/nodes/{id}"), Body::None)
            .await
            .text(),
    );
    assert!(
        node.contains(&format!("/d/postgresql?node={id}&service=db-pg")),
        "{node}"
    );

    // The database stops: down in list, status (exit 5), the node page, the overview.
    pg.kill();
    wait_health(&admin, "db-pg", false, Duration::from_secs(20));
    // The exporter's open connection breaks first ("bad connection"); its next attempt
    // gives the database's reason.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let down = wait_health(&admin, "db-pg", false, Duration::from_secs(5));
        let why = down["health"]["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if why.contains("connection refused") {
            break;
        }
        assert!(Instant::now() < deadline, "{down}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let list = admin.run(&["list"]);
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        listed.contains("db-pg PostgreSQL") && listed.contains("DOWN since"),
        "{listed}"
    );
    let status = admin.run(&["status"]);
    assert_eq!(status.status.code(), Some(5), "{}", text(&status));
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("db-pg (PostgreSQL): DOWN"),
        "{}",
        text(&status)
    );
    let status_json: serde_json::Value =
        serde_json::from_slice(&admin.run(&["status", "--json"]).stdout).unwrap();
    assert!(
        status_json["problems"]
            .to_string()
            .contains("PostgreSQL db-pg is down"),
        "{status_json}"
    );
    viewer
        .wait_query(
            &format!("perch_target_up{{node_id=\"{id}\",service_name=\"db-pg\"}} == 0"),
            Duration::from_secs(20),
            |r| !r.is_empty(),
        )
        .await;
    viewer
        .wait_query(
            &format!("perch_target_error_info{{node_id=\"{id}\",service_name=\"db-pg\",error=~\".*connection refused.*\"}}"),
            Duration::from_secs(20),
            |r| !r.is_empty(),
        )
        .await;
    // The page reads the engine as of now: what the query above saw shows within seconds.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let node = viewer
            .send("GET", &format!("/nodes/{id}"), Body::None)
            .await
            .text();
        let shown = node.contains("target-down")
            && node.contains("connection refused")
            && node.contains("PostgreSQL, since 20");
        if shown {
            break;
        }
        assert!(Instant::now() < deadline, "{node}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let overview = viewer.send("GET", "/", Body::None).await.text();
    assert!(
        overview.contains("target-down") && overview.contains("db-pg"),
        "{overview}"
    );
    let services = viewer.send("GET", "/services", Body::None).await.text();
    assert!(
        services.contains("1 of these services is down"),
        "{services}"
    );

    // In Chromium, desktop and phone.
    let (_driver, c) = browser(&server).await;
    let page = Page::new(&c, &server);
    page.goto("/login").await;
    page.login("admin", STRONG, "/").await;
    page.goto("/services").await;
    assert!(page.text("table.services").await.contains("db-mysql"));
    page.shot("30-services-desktop").await;
    page.clean("services").await;
    page.click_link("db-mysql").await;
    page.wait_url("the MySQL dashboard", |u| u.path() == "/d/mysql")
        .await;
    let charts = c.find_all(Locator::Css("figure.chart")).await.unwrap();
    assert_eq!(charts.len(), panels("mysql").len());
    page.shot("31-mysql-desktop").await;
    page.clean("mysql dashboard").await;
    page.goto(&format!("/d/postgresql?node={id}&service=db-pg&range=15m"))
        .await;
    let _ = page.text("figure.chart").await;
    page.shot("32-postgresql-desktop").await;
    page.clean("postgresql dashboard").await;
    page.goto(&format!("/nodes/{id}")).await;
    assert!(page.text("ul.targets").await.contains("db-pg"));
    page.shot("33-node-services-desktop").await;
    page.viewport(390, 844, true).await;
    page.goto("/services").await;
    page.shot("34-services-phone").await;
    page.clean("services on a phone").await;
    page.assert_fits(390.0).await;
    page.goto(&format!("/d/mysql?node={id}&service=db-mysql&range=15m"))
        .await;
    let _ = page.text("figure.chart").await;
    page.shot("35-mysql-phone").await;
    page.goto(&format!("/d/postgresql?node={id}&service=db-pg&range=15m"))
        .await;
    let _ = page.text("figure.chart").await;
    page.shot("36-postgresql-phone").await;
    page.clean("dashboards on a phone").await;

    // remove: the exporter stops with it; the agent stops the rest when it stops.
    let out = admin.run(&["remove", "postgresql", "db-pg"]);
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(15);
    while command_lines().contains("prometheus-postgres-exporter --web.listen-address=127.0.0.1:") {
        assert!(
            Instant::now() < deadline,
            "the removed service's exporter still runs"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(agent);
    assert!(
        !command_lines().contains("prometheus-mysqld-exporter --config.my-cnf="),
        "the agent stopped its exporters: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // An agent killed with SIGKILL leaves its exporter; the next agent stops it.
    let agent = admin.agent_logged(&log);
    wait_health(&admin, "db-mysql", true, Duration::from_secs(20));
    let orphan = pids(&state_file);
    agent.kill9();
    assert!(command_lines().contains("prometheus-mysqld-exporter --config.my-cnf="));
    let agent = admin.agent_logged(&log);
    let deadline = Instant::now() + Duration::from_secs(10);
    while orphan.iter().any(|p| {
        std::path::Path::new(&format!("/proc/{p}")).exists()
            && !std::fs::read_to_string(format!("/proc/{p}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
    }) {
        assert!(
            Instant::now() < deadline,
            "the old exporter {orphan:?} still runs"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(agent);
    maria.kill();

    // No secret in the logs.
    let agent_log = std::fs::read_to_string(&log).unwrap();
    let server_log = server.log().join("\n");
    for secret in [MYSQL_PW, PG_PW, "Pg-Monitor%2Fpw", "bare-pw-123"] {
        assert!(
            !agent_log.contains(secret),
            "a password in the agent's log: {agent_log}"
        );
        assert!(
            !server_log.contains(secret),
            "a password in the server's log"
        );
    }
    assert!(
        agent_log.contains("db-pg"),
        "the agent logged the service going down: {agent_log}"
    );
}
