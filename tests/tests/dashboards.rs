//! The dashboards against real data: a real agent (perch-admin) and a real node_exporter
//! write into the bundled VictoriaMetrics; every built-in panel's chart on the node page
//! holds exactly what its PromQL gives when asked directly; the overview, Explore, the
//! exporter browser, the range picker and the engine-unavailable message.

use std::collections::BTreeMap;
use std::time::Duration;

use perch_e2e::admin::{Admin, node_exporter, text};
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

/// Every chart's data on a page: the `data-series` attribute of each `figure.chart`.
fn charts(html: &str) -> Vec<serde_json::Value> {
    html.split("<figure")
        .skip(1)
        .filter_map(|f| {
            let start = f.find("data-series=\"")? + "data-series=\"".len();
            let end = start + f[start..].find('"')?;
            serde_json::from_str(&unescape(&f[start..end])).ok()
        })
        .collect()
}

/// HTML character references back to text (named ones and `&#NN;`).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..end];
        let c = match entity {
            "quot" => Some('"'),
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => out.push(c),
            None => out.push_str(&tail[..=end]),
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A panel of the built-in node dashboard, as the file has it.
struct PanelSpec {
    title: String,
    expr: String,
    legend: String,
}

fn node_panels() -> Vec<PanelSpec> {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/dashboards/node.toml");
    let text = std::fs::read_to_string(file).expect("node.toml");
    let doc: toml::Table = toml::from_str(&text).expect("toml");
    doc["panel"]
        .as_array()
        .expect("panels")
        .iter()
        .map(|p| PanelSpec {
            title: p["title"].as_str().unwrap_or_default().to_owned(),
            expr: p["expr"].as_str().unwrap_or_default().to_owned(),
            legend: p
                .get("legend")
                .and_then(|l| l.as_str())
                .unwrap_or("")
                .to_owned(),
        })
        .collect()
}

fn legend(template: &str, metric: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut out = template.to_owned();
    for (k, v) in metric {
        out = out.replace(&format!("{{{{{k}}}}}"), v.as_str().unwrap_or(""));
    }
    out
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
    let panels = node_panels();
    let drawn = charts(&html);
    assert_eq!(drawn.len(), panels.len(), "one chart per panel");

    for (panel, chart) in panels.iter().zip(&drawn) {
        let t: Vec<i64> = chart["t"]
            .as_array()
            .expect("t")
            .iter()
            .map(|v| v.as_i64().expect("unix seconds"))
            .collect();
        let (start, end, step) = (t[0], t[t.len() - 1], t[1] - t[0]);
        assert_eq!(step, 15, "15 minutes → 15 s steps");
        let expr = panel
            .expr
            .replace("$node_id", &id.to_string())
            .replace("$rate", "1m");
        let direct = viewer
            .send(
                "POST",
                "/prometheus/api/v1/query_range",
                Body::Form(&[
                    ("query", &expr),
                    ("start", &start.to_string()),
                    ("end", &end.to_string()),
                    ("step", &step.to_string()),
                ]),
            )
            .await
            .json();
        assert_eq!(direct["status"], "success", "{}: {direct}", panel.title);
        let mut want: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
        for s in direct["data"]["result"].as_array().expect("matrix") {
            let label = legend(&panel.legend, s["metric"].as_object().expect("metric"));
            assert!(
                !want.contains_key(&label),
                "{}: two series are both '{label}' (a node_exporter counted twice?)",
                panel.title
            );
            let points = want.entry(label).or_default();
            for p in s["values"].as_array().expect("values") {
                let v: f64 = p[1].as_str().expect("value").parse().expect("number");
                points.insert(p[0].as_f64().expect("time") as i64, v);
            }
        }
        let series = chart["s"].as_array().expect("series");
        assert!(!series.is_empty(), "{}: no series drawn", panel.title);
        assert!(
            series.iter().any(|s| s["v"]
                .as_array()
                .is_some_and(|v| v.iter().any(|x| x.is_number()))),
            "{}: no values",
            panel.title
        );
        for s in series {
            let label = s["l"].as_str().expect("label");
            let points = want.get(label).unwrap_or_else(|| {
                panic!(
                    "{}: '{label}' is not in PromQL's answer {want:?}",
                    panel.title
                )
            });
            let values = s["v"].as_array().expect("values");
            for (i, v) in values.iter().enumerate() {
                match (v.as_f64(), points.get(&t[i])) {
                    (Some(got), Some(want)) => {
                        let tolerance = 1e-5 * want.abs().max(1e-9);
                        assert!(
                            (got - want).abs() <= tolerance,
                            "{} '{label}' at {}: chart {got}, PromQL {want}",
                            panel.title,
                            t[i]
                        );
                    }
                    (None, None) => {}
                    (got, want) => panic!(
                        "{} '{label}' at {}: chart {got:?}, PromQL {want:?}",
                        panel.title, t[i]
                    ),
                }
            }
        }
    }

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
