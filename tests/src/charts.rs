//! A dashboard page's charts against PromQL: each chart's data (`data-series`) must be
//! exactly what its panel's query gives when asked directly, at every step.

use std::collections::BTreeMap;

use crate::{Body, Http};

/// Every chart's data on a page: the `data-series` attribute of each `figure.chart`, or
/// null for a chart that shows "No data".
pub fn charts(html: &str) -> Vec<serde_json::Value> {
    html.split("<figure")
        .skip(1)
        .map(|f| {
            let data = || {
                let start = f.find("data-series=\"")? + "data-series=\"".len();
                let end = start + f[start..].find('"')?;
                serde_json::from_str(&unescape(&f[start..end])).ok()
            };
            data().unwrap_or(serde_json::Value::Null)
        })
        .collect()
}

/// HTML character references back to text (named ones and `&#NN;`).
pub fn unescape(s: &str) -> String {
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

/// A panel of a built-in dashboard, as the file has it.
#[derive(Debug)]
pub struct PanelSpec {
    pub title: String,
    pub expr: String,
    pub legend: String,
}

/// The panels of the built-in dashboard `name` (`ui/dashboards/<name>.toml`).
pub fn panels(name: &str) -> Vec<PanelSpec> {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../ui/dashboards/{name}.toml"));
    let text = std::fs::read_to_string(file).expect("the dashboard file");
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
    // As the server does: `{{label}}` is the label's value, or nothing when it has none.
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        let key = rest[start + 2..start + end].trim();
        out.push_str(metric.get(key).and_then(|v| v.as_str()).unwrap_or(""));
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

/// Asserts that every chart on the page `html` holds what its panel's PromQL gives over the
/// same grid, with `vars` (`$node_id`, `$service_name`) replaced and `$rate` as `1m`. Panels
/// named in `may_be_empty` may have no data (replication on a server that has no replica),
/// and then must draw none.
pub async fn assert_panels_match(
    http: &mut Http,
    html: &str,
    panels: &[PanelSpec],
    vars: &[(&str, &str)],
    may_be_empty: &[&str],
) {
    if let Some(at) = html.find("<p class=\"notice error\">") {
        panic!("a panel failed: {}", &html[at..(at + 400).min(html.len())]);
    }
    let drawn = charts(html);
    assert_eq!(drawn.len(), panels.len(), "one chart per panel");

    // The grid of the charts with data, for those without.
    let grid = drawn
        .iter()
        .find(|c| !c.is_null())
        .expect("some chart has data")
        .clone();
    for (panel, chart) in panels.iter().zip(&drawn) {
        let no_data = chart.is_null();
        let chart = if no_data { &grid } else { chart };
        let t: Vec<i64> = chart["t"]
            .as_array()
            .expect("t")
            .iter()
            .map(|v| v.as_i64().expect("unix seconds"))
            .collect();
        let (start, end, step) = (t[0], t[t.len() - 1], t[1] - t[0]);
        assert_eq!(step, 15, "15 minutes → 15 s steps");
        let settled = end - 2 * step;
        let mut expr = panel.expr.replace("$rate", "1m");
        for (k, v) in vars {
            expr = expr.replace(k, v);
        }
        let direct = http
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
        if no_data || (want.is_empty() && may_be_empty.contains(&panel.title.as_str())) {
            assert!(
                may_be_empty.contains(&panel.title.as_str()),
                "{}: no data drawn",
                panel.title
            );
            assert!(
                want.values().all(|p| p.values().all(|v| !v.is_finite())),
                "{}: no data drawn, but PromQL gives {want:?}",
                panel.title
            );
            continue;
        }
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
                // The newest points may still change between the page and the query: the
                // agent's next push and the engine's 5 s delay land inside them.
                if t[i] > settled {
                    continue;
                }
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
}
