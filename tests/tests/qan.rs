//! Query Analytics against real MariaDB and PostgreSQL servers from Debian: `add` turns it
//! on and says what to enable when the source is off; a workload the test runs (one query
//! many times and slowly, another fast) is ranked first with the right count within two of
//! the agent's intervals; a counter reset (TRUNCATE of the digest table,
//! pg_stat_statements_reset()) gives no negative and no doubled figures; no literal of the
//! workload reaches anything the server stores; examples show to Editors, not Viewers; the
//! pages are looked at in Chromium on a desktop and a phone.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use perch_e2e::admin::{Admin, text};
use perch_e2e::chromium::{Page, browser};
use perch_e2e::databases::{MariaDb, Postgres};
use perch_e2e::{Body, Http, Options, STRONG, Server};
use serde_json::Value;

const MYSQL_PW: &str = "Qan-Monitor#pw 1";
const PG_PW: &str = "Qan-Pg/pw:2";
/// The agent's interval in this test.
const INTERVAL: Duration = Duration::from_secs(2);
/// How long after a sample arrives the engine shows it (`-search.latencyOffset`).
const ENGINE_DELAY: Duration = Duration::from_secs(5);
/// Literals of the workload: none may reach the server.
const LITERALS: [&str; 2] = ["perch-lit-7731", "4410931"];

/// The busiest queries of `service` over the last 15 minutes.
async fn top(http: &mut Http, service: &str) -> Value {
    let r = http
        .send(
            "GET",
            &format!("/v1/qan/queries?service={service}&range=15m&limit=500"),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Waits until the list of `service` satisfies `ok`, at most `within`.
async fn wait_top(
    http: &mut Http,
    service: &str,
    within: Duration,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let list = top(http, service).await;
        if ok(&list) {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "{service}: {what} not within {within:?}: {list:#}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The first query of a list whose text contains `needle`.
fn find<'a>(list: &'a Value, needle: &str) -> Option<&'a Value> {
    list["queries"]
        .as_array()?
        .iter()
        .find(|q| q["text"].as_str().is_some_and(|t| t.contains(needle)))
}

fn first_is(list: &Value, needle: &str, count: u64) -> bool {
    let q = &list["queries"][0];
    q["text"].as_str().is_some_and(|t| t.contains(needle))
        && q["count"].as_f64() == Some(count as f64)
}

/// Every file under `dir`, read raw.
fn all_bytes(dir: &std::path::Path, out: &mut Vec<u8>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            all_bytes(&p, out);
        } else if let Ok(b) = std::fs::read(&p) {
            out.extend_from_slice(&b);
        }
    }
}

fn mysql_workload(maria: &MariaDb, slow: usize, fast: usize) {
    let mut sql = String::new();
    for _ in 0..slow {
        sql.push_str("SELECT SLEEP(0.25), 'perch-lit-7731';");
    }
    for _ in 0..fast {
        sql.push_str("SELECT COUNT(*) FROM shop.orders WHERE v = 4410931;");
    }
    maria.sql(&sql);
}

fn pg_workload(pg: &Postgres, slow: usize, fast: usize) {
    // PostgreSQL 15 keeps a utility statement's text as written, literal and all, and a
    // comment in any statement's text: the agent's scrubber must take them out.
    let mut sql = "SET application_name = 'perch-lit-7731';".to_owned();
    for _ in 0..slow {
        sql.push_str("SELECT pg_sleep(0.25), 'perch-lit-7731';");
    }
    for _ in 0..fast {
        sql.push_str("SELECT 4410931 + 1 /* perch-lit-7731 */;");
    }
    pg.sql_in("shop", &sql);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_analytics_ranks_what_costs_most() {
    let server = Server::start_with_admin(Options::default());
    let maria = MariaDb::start_with(&[
        "--performance-schema=ON",
        "--performance-schema-consumer-events-statements-current=ON",
        "--performance-schema-consumer-events-statements-history-long=ON",
    ]);
    let pg = Postgres::start_with(&["shared_preload_libraries=pg_stat_statements"]);
    maria.sql(&format!(
        "CREATE USER 'perch'@'127.0.0.1' IDENTIFIED BY '{MYSQL_PW}'; \
         GRANT SELECT, PROCESS, SLAVE MONITOR ON *.* TO 'perch'@'127.0.0.1'; \
         CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY AUTO_INCREMENT, v INT);"
    ));
    pg.sql(&format!(
        "CREATE ROLE perch LOGIN PASSWORD '{PG_PW}'; GRANT pg_monitor TO perch;"
    ));
    pg.sql("CREATE DATABASE shop");

    let admin = Admin::new();
    admin
        .enroll(&server, "qan-host", &["--interval", "2s"])
        .await;
    let pg_port = pg.port.to_string();
    let add_pg = |extra: &[&str]| {
        let mut args = vec![
            "add",
            "postgresql",
            "db-pg",
            "--host",
            "127.0.0.1",
            "--port",
            &pg_port,
            "--username",
            "perch",
        ];
        args.extend_from_slice(extra);
        admin.run_env(&args, &[("PERCH_DB_PASSWORD", PG_PW)])
    };

    // The extension is not there: asked for by name, nothing is added; automatic, it is
    // added with a warning that says what to run.
    let out = add_pg(&["--query-source", "pgstatements"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("CREATE EXTENSION pg_stat_statements") && said.contains("Nothing was added"),
        "{said}"
    );
    let out = add_pg(&["--query-source", "perfschema"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "perfschema is MySQL's: {}",
        text(&out)
    );
    pg.sql("CREATE EXTENSION pg_stat_statements");
    let out = add_pg(&[
        "--disable-queryexamples",
        "--environment",
        "qa-env",
        "--cluster",
        "pg-c1",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Query Analytics: on (pgstatements), without examples."),
        "{}",
        text(&out)
    );

    let maria_addr = format!("127.0.0.1:{}", maria.port);
    let add_mysql = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "add",
            "mysql",
            name,
            maria_addr.as_str(),
            "--username",
            "perch",
        ];
        args.extend_from_slice(extra);
        admin.run_env(&args, &[("PERCH_DB_PASSWORD", MYSQL_PW)])
    };
    let out = add_mysql("db-mysql", &["--disable-queryexamples"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Query Analytics: on (perfschema), without examples."),
        "{}",
        text(&out)
    );

    // A label the server sets on every query's series is refused before anything is
    // added: the server would refuse each of the service's reports.
    let out = add_mysql("db-clash", &["--custom-labels", "schema=shop"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("\"schema\" is Perch's own"),
        "{}",
        text(&out)
    );

    // What to enable, named for the server at hand: each setting a digest needs, when it is
    // off (the UPDATE that turns it back on is the one to run), and the GRANT for the very
    // account the server matched when the user cannot read the tables.
    let settings = [
        "UPDATE performance_schema.setup_consumers SET ENABLED = '{on}' WHERE NAME = 'global_instrumentation'",
        "UPDATE performance_schema.setup_consumers SET ENABLED = '{on}' WHERE NAME = 'statements_digest'",
        "UPDATE performance_schema.setup_instruments SET ENABLED = '{on}', TIMED = '{on}' WHERE NAME LIKE 'statement/%'",
    ];
    for setting in settings {
        maria.sql(&setting.replace("{on}", "NO"));
        let out = add_mysql("db-off", &["--query-source", "perfschema"]);
        let on = setting.replace("{on}", "YES");
        maria.sql(&on);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            text(&out).contains(&on) && text(&out).contains("Nothing was added"),
            "{}",
            text(&out)
        );
    }
    maria.sql(
        "CREATE USER 'bare'@'127.0.0.1' IDENTIFIED BY 'Bare-pw 9'; \
         GRANT PROCESS ON *.* TO 'bare'@'127.0.0.1';",
    );
    let out = admin.run_env(
        &[
            "add",
            "mysql",
            "db-bare",
            maria_addr.as_str(),
            "--username",
            "bare",
            "--query-source",
            "perfschema",
        ],
        &[("PERCH_DB_PASSWORD", "Bare-pw 9")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("GRANT SELECT ON performance_schema.* TO 'bare'@'127.0.0.1';"),
        "{}",
        text(&out)
    );

    let log = admin.dir.path().join("agent.log");
    let _agent = admin.agent_logged(&log);
    let mut http = server.login("admin", STRONG).await;
    // The agent's first reading is its baseline; its own reads of the sources are the first
    // queries reported.
    let ready = Duration::from_secs(40);
    wait_top(&mut http, "db-mysql", ready, "a first report", |l| {
        l["queries"].as_array().is_some_and(|q| !q.is_empty())
    })
    .await;
    wait_top(&mut http, "db-pg", ready, "a first report", |l| {
        l["queries"].as_array().is_some_and(|q| !q.is_empty())
    })
    .await;

    // The workload: 8 slow runs (2 s) and 40 fast ones on each.
    mysql_workload(&maria, 8, 40);
    pg_workload(&pg, 8, 40);
    let done = Instant::now();
    // Two intervals, the engine's delay, and a margin for this busy machine.
    let within = 2 * INTERVAL + ENGINE_DELAY + Duration::from_secs(4);
    let list = wait_top(
        &mut http,
        "db-mysql",
        within.saturating_sub(done.elapsed()),
        "the slow query first, 8 times",
        |l| first_is(l, "SLEEP", 8),
    )
    .await;
    let fast = find(&list, "shop").expect("the fast query");
    assert_eq!(fast["count"].as_f64(), Some(40.0), "{list:#}");
    let slow = &list["queries"][0];
    assert!(slow["time_s"].as_f64().unwrap() >= 2.0, "{slow}");
    assert!(slow["share"].as_f64().unwrap() > 0.5, "{slow}");
    assert_eq!(slow["places"][0]["service_name"], "db-mysql");
    let list = wait_top(
        &mut http,
        "db-pg",
        within
            .saturating_sub(done.elapsed())
            .max(Duration::from_secs(1)),
        "the slow query first, 8 times",
        |l| first_is(l, "pg_sleep", 8),
    )
    .await;
    assert!(
        find(&list, "$1 + $2").is_some_and(|q| q["count"].as_f64() == Some(40.0)),
        "{list:#}"
    );
    assert!(
        find(&list, "SET application_name = ?").is_some(),
        "the utility statement, scrubbed: {list:#}"
    );
    // Filters by the service's environment and cluster: PostgreSQL's queries alone.
    for filter in ["environment=qa-env", "cluster=pg-c1"] {
        let r = http
            .send(
                "GET",
                &format!("/v1/qan/queries?{filter}&range=15m&limit=500"),
                Body::None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let by = r.json();
        let names: Vec<&str> = by["queries"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|q| q["places"].as_array().unwrap())
            .filter_map(|p| p["service_name"].as_str())
            .collect();
        assert!(
            !names.is_empty() && names.iter().all(|n| *n == "db-pg"),
            "{filter}: {names:?}"
        );
    }
    let slow_pg = list["queries"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();

    // Counter resets: no negative figure, nothing counted twice.
    maria.sql("TRUNCATE TABLE performance_schema.events_statements_summary_by_digest");
    pg.sql("SELECT pg_stat_statements_reset()");
    mysql_workload(&maria, 3, 0);
    pg_workload(&pg, 3, 0);
    let within = 2 * INTERVAL + ENGINE_DELAY + Duration::from_secs(6);
    wait_top(
        &mut http,
        "db-mysql",
        within,
        "11 slow runs after the reset",
        |l| first_is(l, "SLEEP", 11),
    )
    .await;
    wait_top(
        &mut http,
        "db-pg",
        within,
        "11 slow runs after the reset",
        |l| first_is(l, "pg_sleep", 11),
    )
    .await;
    // Two more intervals add nothing.
    tokio::time::sleep(2 * INTERVAL + ENGINE_DELAY).await;
    assert!(first_is(&top(&mut http, "db-mysql").await, "SLEEP", 11));
    assert!(first_is(&top(&mut http, "db-pg").await, "pg_sleep", 11));
    let min = http
        .send(
            "GET",
            "/prometheus/api/v1/query?query=min(min_over_time(%7B__name__%3D~%22perch_qan_.%2B%22%7D%5B15m%5D))",
            Body::None,
        )
        .await
        .json();
    let min: f64 = min["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("a minimum");
    assert!(min >= 0.0, "a negative figure: {min}");

    // One query's own figures and its load over time.
    let one = http
        .send(
            "GET",
            &format!("/v1/qan/queries/{slow_pg}?range=15m"),
            Body::None,
        )
        .await;
    assert_eq!(one.status, 200, "{}", one.text());
    let one = one.json();
    assert_eq!(one["count"].as_f64(), Some(11.0), "{one:#}");
    assert!(one["text"].as_str().unwrap().contains("pg_sleep"));
    assert!(
        one["example"].is_null(),
        "PostgreSQL keeps no examples: {one}"
    );
    assert!(!one["load_series"].as_array().unwrap().is_empty());

    // No literal of the workload in anything the server keeps: the text store's files, the
    // series in the engine, the API, the log.
    let mut stored = Vec::new();
    all_bytes(&server.data.path().join("qan"), &mut stored);
    let series = http
        .send(
            "GET",
            "/prometheus/api/v1/series?match%5B%5D=%7B__name__%3D~%22perch_qan_.%2B%22%7D&start=0",
            Body::None,
        )
        .await
        .text();
    assert!(series.contains("perch_qan_queries"), "{series}");
    let everything = http
        .send("GET", "/v1/qan/queries?range=1h&limit=500", Body::None)
        .await
        .text();
    let log_text = server.log().join("\n");
    for lit in LITERALS {
        assert!(
            !String::from_utf8_lossy(&stored).contains(lit),
            "{lit} in the text store"
        );
        assert!(!series.contains(lit), "{lit} in the engine's series");
        assert!(!everything.contains(lit), "{lit} in the API: {everything}");
        assert!(!log_text.contains(lit), "{lit} in the server's log");
    }

    // Roles: a Viewer reads; a node's reports come only with its node token, and a bad one
    // is refused with what is wrong.
    let mut viewer = server.user("vic", "viewer").await;
    let r = viewer.send("GET", "/qan", Body::None).await;
    assert_eq!(r.status, 200);
    let r = viewer
        .send("POST", "/v1/qan/report", Body::Json(serde_json::json!({})))
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let mut node = admin.node_http(&server);
    let r = node
        .send(
            "POST",
            "/v1/qan/report",
            Body::Json(serde_json::json!({
                "service": "db-pg", "service_type": "postgresql", "source": "pgstatements",
                "start": 20, "end": 10,
            })),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("empty, longer than a day"),
        "{}",
        r.text()
    );
    let r = node.send("GET", "/v1/qan/queries", Body::None).await;
    assert_eq!(
        r.status,
        403,
        "a node token reads no one's queries: {}",
        r.text()
    );
    attacks_on_the_write_path(&mut node, &mut http).await;

    // Examples: on for a second MySQL service; Editors and Admins see them, Viewers not.
    let out = add_mysql("db-mysql-ex", &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Query Analytics: on (perfschema)."),
        "{}",
        text(&out)
    );
    wait_top(&mut http, "db-mysql-ex", ready, "a first report", |l| {
        l["queries"].as_array().is_some_and(|q| !q.is_empty())
    })
    .await;
    mysql_workload(&maria, 2, 0);
    let list = wait_top(&mut http, "db-mysql-ex", within, "the slow query", |l| {
        find(l, "SLEEP").is_some()
    })
    .await;
    let id = find(&list, "SLEEP").unwrap()["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/qan/queries/{id}?service=db-mysql-ex&range=15m");
    let one = http.send("GET", &path, Body::None).await.json();
    assert!(
        one["example"]
            .as_str()
            .is_some_and(|e| e.contains("perch-lit-7731")),
        "an example for an Admin: {one:#}"
    );
    let one = viewer.send("GET", &path, Body::None).await.json();
    assert!(one["example"].is_null(), "no example for a Viewer: {one:#}");
    let page = viewer
        .send(
            "GET",
            &format!("/qan/{id}?service=db-mysql-ex&range=15m"),
            Body::None,
        )
        .await
        .text();
    assert!(
        page.contains("Editors and Admins see it") && !page.contains("perch-lit-7731"),
        "{page}"
    );

    // The pages in Chromium, desktop and phone.
    let (_driver, c) = browser(&server).await;
    let page = Page::new(&c, &server);
    page.goto("/login").await;
    page.login("admin", STRONG, "/").await;
    page.goto("/qan?service=db-mysql&range=15m").await;
    let table = page.text("table.qan").await;
    let first = c
        .find(Locator::Css("table.qan tbody tr td.query"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(first.contains("SLEEP"), "the slow query first: {table}");
    page.shot("40-qan-desktop").await;
    page.clean("qan").await;
    c.find(Locator::Css("table.qan tbody tr td.query a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    page.wait_url("a query's page", |u| u.path().starts_with("/qan/"))
        .await;
    assert!(page.text("pre.sql").await.contains("SLEEP"));
    let charts = c.find_all(Locator::Css("figure.chart")).await.unwrap();
    assert_eq!(charts.len(), 4);
    page.shot("41-qan-query-desktop").await;
    page.clean("qan query").await;
    page.viewport(390, 844, true).await;
    page.goto("/qan?range=15m").await;
    let _ = page.text("table.qan").await;
    c.execute(
        "document.querySelector('table.qan').scrollIntoView()",
        vec![],
    )
    .await
    .unwrap();
    page.shot("42-qan-phone").await;
    page.assert_fits(390.0).await;
    page.goto(&format!("/qan/{id}?service=db-mysql-ex&range=15m"))
        .await;
    let _ = page.text("pre.sql").await;
    let mut shown = String::new();
    for pre in c.find_all(Locator::Css("pre.sql")).await.unwrap() {
        shown.push_str(&pre.text().await.unwrap());
    }
    assert!(
        shown.contains("perch-lit-7731"),
        "the Admin sees the example: {shown}"
    );
    page.shot("43-qan-query-phone").await;
    page.assert_fits(390.0).await;
    page.clean("qan on a phone").await;

    let agent_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !agent_log.contains(MYSQL_PW) && !agent_log.contains(PG_PW),
        "{agent_log}"
    );
    for lit in LITERALS {
        assert!(!agent_log.contains(lit), "{lit} in the agent's log");
    }
    drop(c);
    examples_for_viewers_by_setting().await;
}

/// With `--qan-examples-for-viewers`, Viewers see the examples too.
async fn examples_for_viewers_by_setting() {
    let server = Server::start_with_admin(Options::default().arg("--qan-examples-for-viewers"));
    let admin = Admin::new();
    admin.enroll(&server, "open-host", &[]).await;
    let mut node = admin.node_http(&server);
    let now = perch_time::unix_now();
    let r = node
        .send(
            "POST",
            "/v1/qan/report",
            Body::Json(serde_json::json!({
                "service": "db-open", "service_type": "mysql", "source": "perfschema",
                "start": now - 10, "end": now - 2,
                "queries": [{"id": "0pen", "count": 2, "time_s": 0.5}],
                "texts": [{"id": "0pen", "text": "SELECT * FROM t WHERE a = ?",
                           "example": "SELECT * FROM t WHERE a = 77"}],
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut viewer = server.user("vic", "viewer").await;
    // Once the engine shows the figures (the query's services come from them).
    let deadline = Instant::now() + ENGINE_DELAY + Duration::from_secs(10);
    let one = loop {
        let one = viewer
            .send(
                "GET",
                "/v1/qan/queries/0pen?service=db-open&range=15m",
                Body::None,
            )
            .await
            .json();
        if !one["example"].is_null() || Instant::now() > deadline {
            break one;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        one["example"], "SELECT * FROM t WHERE a = 77",
        "a Viewer sees it with the setting: {one:#}"
    );
}

/// A node's agent attacking, or retrying, the write path: a report sent twice (an agent
/// that did not hear the answer) counts once; `perch_qan_*` series cannot be forged through
/// remote write; intervals at the ends of the integers are refused, not a crash.
async fn attacks_on_the_write_path(node: &mut Http, http: &mut Http) {
    let now = perch_time::unix_now();
    let report = serde_json::json!({
        "service": "db-replay", "service_type": "postgresql", "source": "pgstatements",
        "start": now - 10, "end": now - 2,
        "queries": [{"id": "5eed1", "schema": "shop", "username": "app", "count": 5, "time_s": 1.5}],
        "other": {"count": 3, "time_s": 0.25},
        "texts": [{"id": "5eed1", "text": "SELECT * FROM t WHERE id = $1"}],
    });
    for _ in 0..2 {
        let r = node
            .send("POST", "/v1/qan/report", Body::Json(report.clone()))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let list = wait_top(
        http,
        "db-replay",
        ENGINE_DELAY + Duration::from_secs(10),
        "the replayed report",
        |l| find(l, "WHERE id = $1").is_some(),
    )
    .await;
    assert_eq!(
        list["queries"][0]["count"].as_f64(),
        Some(5.0),
        "a report sent twice counts once: {list:#}"
    );
    assert_eq!(
        list["other"]["count"].as_f64(),
        Some(3.0),
        "the other row, once: {list:#}"
    );

    let forged = perch_e2e::remote_write_body(
        "perch_qan_queries",
        &[("service_name", "db-pg"), ("fingerprint", "ffff")],
        1e6,
        perch_time::unix_now_ms(),
    );
    let r = node
        .send(
            "POST",
            "/v1/metrics/write",
            Body::Raw("application/x-protobuf", forged),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("perch_qan_"), "{}", r.text());

    for (start, end) in [(i64::MIN, now), (i64::MIN, i64::MIN + 5), (-100, -50)] {
        let r = node
            .send(
                "POST",
                "/v1/qan/report",
                Body::Json(serde_json::json!({
                    "service": "db-replay", "service_type": "postgresql",
                    "source": "pgstatements", "start": start, "end": end,
                })),
            )
            .await;
        assert_eq!(r.status, 400, "{start}..{end}: {}", r.text());
    }
    let r = node.send("GET", "/v1/healthz", Body::None).await;
    assert!(r.status != 0, "the server still answers");
}
