//! The dashboards against real data: a real agent (perch-admin) and a real node_exporter
//! write into the bundled VictoriaMetrics; every built-in panel's chart on the node page
//! holds exactly what its PromQL gives when asked directly; the overview, Explore, the
//! exporter browser, the range picker and the engine-unavailable message.

use std::time::Duration;

use perch_e2e::admin::{Admin, node_exporter, text};
use perch_e2e::charts::{assert_panels_match, charts, panels, unescape};
use perch_e2e::{Body, Http, Options, STRONG, Server};

const INTERVAL: &str = "2s";

/// Enrolls `name` (without starting its agent); returns its node id.
async fn enroll(server: &Server, admin: &Admin, name: &str) -> u64 {
    admin.enroll(server, name, &["--interval", INTERVAL]).await;
    let mut http = server.login("admin", STRONG).await;
    let nodes = http.send("GET", "/v1/nodes", Body::None).await.json();
    nodes["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == name))
        .and_then(|n| n["id"].as_u64())
        .expect("the node's id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_panel_shows_what_promql_gives() {
    let server = Server::start_with_admin(Options::default());
    let admin = Admin::new();
    let id = enroll(&server, &admin, "web-1").await;
    let (_exporter, port) = node_exporter().expect(
        "prometheus-node-exporter (Debian package) is needed: apt-get install prometheus-node-exporter",
    );
    let url = format!("http://127.0.0.1:{port}/metrics");
    let out = admin.run(&["add", "exporter", "node_exporter", "--url", &url]);
    assert!(out.status.success(), "{}", text(&out));
    let agent = admin.agent();

    let mut viewer = server.user("vic", "viewer").await;
    // Rates need samples inside their one-minute window at several 15 s grid points, and
    // the engine shows samples 5 s after they arrive: 40 s of data.
    viewer
        .wait_query(
            &format!("count_over_time(node_load1{{node_id=\"{id}\"}}[1m]) >= 20"),
            Duration::from_secs(60),
            |r| !r.is_empty(),
        )
        .await;
    // Stopped, so that no sample arrives between the page's queries and the direct ones;
    // then past the engine's 5 s freshness window.
    drop(agent);
    tokio::time::sleep(Duration::from_secs(8)).await;

    let page = viewer
        .send("GET", &format!("/nodes/{id}?range=15m"), Body::None)
        .await;
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    assert!(html.contains("web-1"), "{html}");
    assert!(
        html.contains("class=\"status up\""),
        "the node is up: {html}"
    );
    let panels = panels("node");
    assert_panels_match(
        &mut viewer,
        &html,
        &panels,
        &[("$node_id", &id.to_string())],
        &[],
    )
    .await;

    // The overview: the node is up, with figures.
    let overview = viewer.send("GET", "/?range=15m", Body::None).await.text();
    assert!(
        overview.contains(&format!("/nodes/{id}?range=15m")),
        "{overview}"
    );
    assert!(overview.contains("class=\"status up\""), "{overview}");
    assert!(
        overview.contains("<svg class=\"spark\""),
        "a CPU trend: {overview}"
    );
    assert!(overview.contains('%'), "{overview}");

    // The range picker's choices keep the page and change the range.
    let six = viewer
        .send(
            "GET",
            &format!("/nodes/{id}?range=6h&refresh=1m"),
            Body::None,
        )
        .await
        .text();
    assert!(
        six.contains("<meta http-equiv=\"refresh\" content=\"60\">"),
        "{six}"
    );
    assert!(
        unescape(&six).contains(&format!("href=\"/nodes/{id}?range=24h&refresh=1m\"")),
        "{six}"
    );
    let always = viewer
        .send("GET", "/explore?q=vector(1)&range=6h", Body::None)
        .await
        .text();
    let t = charts(&always)[0]["t"].as_array().cloned().expect("t");
    assert_eq!(
        t[1].as_i64().unwrap() - t[0].as_i64().unwrap(),
        300,
        "6 h → 5 min steps"
    );

    // Explore: a chart and a table.
    let explore = viewer
        .send("GET", "/explore?q=node_load1&range=15m", Body::None)
        .await
        .text();
    assert_eq!(charts(&explore).len(), 1, "{explore}");
    assert!(
        unescape(&explore).contains("node_load1{instance=\"web-1\", job=\"node\""),
        "{explore}"
    );
    let bad = viewer
        .send("GET", "/explore?q=rate(", Body::None)
        .await
        .text();
    assert!(bad.contains("bad_data: "), "{bad}");

    // The exporter browser lists node_exporter's metrics and charts one.
    let browse = viewer.send("GET", "/browse", Body::None).await.text();
    assert!(
        browse.contains("<option value=\"node_exporter_build_info\">"),
        "{browse}"
    );
    let one = viewer
        .send(
            "GET",
            "/browse?metric=node_exporter_build_info&l.node_name=web-1",
            Body::None,
        )
        .await
        .text();
    assert_eq!(charts(&one).len(), 1, "{one}");
    assert!(one.contains("name=\"l.job\""), "label filters: {one}");

    // A viewer has no Add node; an editor does.
    let nodes = viewer.send("GET", "/nodes", Body::None).await.text();
    assert!(!nodes.contains("/nodes/add"), "{nodes}");
    let mut editor = server.user("ed", "editor").await;
    let nodes = editor.send("GET", "/nodes", Body::None).await.text();
    assert!(nodes.contains("/nodes/add"), "{nodes}");
}

#[tokio::test]
async fn without_the_engine_the_pages_say_so() {
    let server = Server::start_with_admin(
        Options {
            not_ready: true,
            ..Options::default()
        }
        .arg("--victoria-metrics-bin=/nonexistent/victoria-metrics"),
    );
    let mut admin = server.login("admin", STRONG).await;
    let r = admin.send("GET", "/", Body::None).await;
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("metrics engine is not available"),
        "{}",
        r.text()
    );
    let r = admin.send("GET", "/explore?q=up", Body::None).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("metrics engine"), "{}", r.text());
    let r = admin.send("GET", "/nodes/99", Body::None).await;
    assert_eq!(r.status, 404);
    let r = admin.send("GET", "/?from=yesterday", Body::None).await;
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("&#39;from&#39; is not a time")
            || r.text().contains("'from' is not a time"),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn operators_add_dashboards_without_a_rebuild() {
    let server = Server::start_with_admin(Options::default());
    let dir = server.data.path().join("dashboards");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("engine.toml"),
        "title = \"Engine\"\n[[panel]]\ntitle = \"Samples\"\nexpr = \"vector(42)\"\nunit = \"short\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("broken.toml"),
        "title = \"B\"\n[[panel]]\ntitle = \"x\"\nexpr = \"up\"\nkind = \"pie\"\n",
    )
    .unwrap();
    let mut admin: Http = server.login("admin", STRONG).await;
    let r = admin.send("GET", "/d/engine?range=15m", Body::None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("Samples"));
    assert_eq!(charts(&r.text()).len(), 1);
    std::fs::write(
        dir.join("per-node.toml"),
        "title = \"Mine\"\n[[panel]]\ntitle = \"Load\"\nexpr = 'node_load1{node_id=\"$node_id\"}'\n",
    )
    .unwrap();
    let r = admin.send("GET", "/", Body::None).await;
    assert!(
        !r.text().contains("/d/per-node"),
        "a per-node dashboard is a node page tab, not on the overview: {}",
        r.text()
    );
    assert!(
        r.text().contains("/d/engine?"),
        "listed on the overview: {}",
        r.text()
    );
    let r = admin.send("GET", "/d/broken", Body::None).await;
    assert_eq!(r.status, 500);
    assert!(
        r.text().contains("kind &#39;pie&#39;") || r.text().contains("kind 'pie'"),
        "{}",
        r.text()
    );
    assert_eq!(
        admin.send("GET", "/d/nothing", Body::None).await.status,
        404
    );
}
