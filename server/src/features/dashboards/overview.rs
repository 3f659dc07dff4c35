//! The overview of every node (`/`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use http::StatusCode;
use perch_ui as ui;
use perch_ui::Template;

use super::*;

/// The overview's columns, each one instant query giving one value per `node_id`.
const OVERVIEW: &[(&str, &str)] = &[
    (
        "cpu",
        "1 - avg by (node_id) (rate(node_cpu_seconds_total{job=\"node\",mode=\"idle\"}[$rate]))",
    ),
    (
        "mem",
        "1 - node_memory_MemAvailable_bytes{job=\"node\"} / node_memory_MemTotal_bytes{job=\"node\"}",
    ),
    (
        "disk",
        "max by (node_id) (1 - node_filesystem_avail_bytes{job=\"node\",fstype!~\"tmpfs|devtmpfs|overlay|squashfs|ramfs\"} / node_filesystem_size_bytes{job=\"node\",fstype!~\"tmpfs|devtmpfs|overlay|squashfs|ramfs\"})",
    ),
    (
        "load",
        "node_load1{job=\"node\"} / on (node_id) count by (node_id) (node_cpu_seconds_total{job=\"node\",mode=\"idle\"})",
    ),
    (
        "uptime",
        "node_time_seconds{job=\"node\"} - node_boot_time_seconds{job=\"node\"}",
    ),
];

const TREND: &str =
    "1 - avg by (node_id) (rate(node_cpu_seconds_total{job=\"node\",mode=\"idle\"}[$rate]))";

/// `/`: every node at a glance, sortable, with a CPU trend for the range.
pub async fn overview(ctx: Ctx) -> Answer {
    let range = time_range(&ctx)?;
    let nodes = ctx.app.auth.nodes()?;
    let engine = ctx.app.engine.clone();
    let rate = "5m";
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (_, expr)) in OVERVIEW.iter().enumerate() {
        let engine = engine.clone();
        let expr = expr.replace("$rate", rate);
        let at = range.end;
        tasks.spawn(async move { (i, engine.query_instant(&expr, at).await) });
    }
    let trend = {
        let engine = engine.clone();
        let expr = TREND.replace("$rate", &range.rate());
        let (s, e, st) = (range.start, range.end, range.step);
        tokio::spawn(async move { engine.query_range(&expr, s, e, st).await })
    };
    let mut columns: Vec<BTreeMap<String, f64>> = vec![BTreeMap::new(); OVERVIEW.len()];
    let mut failure = None;
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((i, Ok(samples))) => {
                for s in samples {
                    if let Some(id) = s.labels.get("node_id") {
                        columns[i].insert(id.clone(), s.value);
                    }
                }
            }
            Ok((_, Err(e))) => failure = Some(e.to_string()),
            Err(_) => {}
        }
    }
    let mut targets: BTreeMap<u64, Vec<ui::TargetView>> = BTreeMap::new();
    for t in services::targets(&engine, None, now())
        .await
        .unwrap_or_default()
    {
        targets
            .entry(t.node_id)
            .or_default()
            .push(t.view(zone(&ctx)));
    }
    let trends: BTreeMap<String, RangeSeries> = match trend.await {
        Ok(Ok(series)) => series
            .into_iter()
            .filter_map(|s| Some((s.labels.get("node_id")?.clone(), s)))
            .collect(),
        _ => BTreeMap::new(),
    };
    let now = now();
    let mut rows: Vec<ui::OverviewRow> = nodes
        .iter()
        .map(|n| {
            let id = n.id.to_string();
            let get = |i: usize| columns[i].get(&id).copied().filter(|v| v.is_finite());
            let (status, last_seen) = status_of(n, now, zone(&ctx));
            ui::OverviewRow {
                id: n.id,
                firing: ctx.app.alerting.firing_on(&n.name),
                name: n.name.clone(),
                status,
                last_seen,
                cpu: get(0),
                mem: get(1),
                disk: get(2),
                load: get(3),
                uptime: get(4),
                trend: trends
                    .get(&id)
                    .map(|s| sparkline(&on_grid(&range, s)))
                    .unwrap_or_default(),
                targets: targets.remove(&n.id).unwrap_or_default(),
            }
        })
        .collect();
    let sort = param(&ctx, "sort").unwrap_or_else(|| "status".into());
    let desc = param(&ctx, "dir").as_deref() == Some("desc");
    sort_rows(&mut rows, &sort, desc);
    let path = format!("/?sort={sort}&dir={}", if desc { "desc" } else { "asc" });
    let page = ui::OverviewPage {
        nav: nav(ctx.who.as_ref()),
        notice: done_notice(&ctx),
        columns: ["name", "status", "cpu", "mem", "disk", "load", "uptime"]
            .iter()
            .map(|c| {
                let next_desc = if sort == *c { !desc } else { *c != "name" };
                ui::Choice {
                    label: (*c).to_owned(),
                    href: format!(
                        "/?sort={c}&dir={}&{}",
                        if next_desc { "desc" } else { "asc" },
                        range.query()
                    ),
                    current: sort == *c,
                }
            })
            .collect(),
        desc,
        range_query: range.query(),
        range: range_view(&range, &path),
        engine: engine_notice(&engine).or(failure),
        can_add: ctx
            .who
            .as_ref()
            .is_some_and(|p| p.role >= perch_auth::Role::Editor),
        rows,
        dashboards: files::all(&ctx.app.dashboards_dir)
            .0
            .into_iter()
            // Per-node dashboards are tabs on each node's page; service ones are reached
            // from the services.
            .filter(|d| !d.per_node() && !d.per_service())
            .map(|d| ui::Choice {
                href: format!("/d/{}?{}", d.name, range.query()),
                label: d.title,
                current: false,
            })
            .collect(),
    };
    html(StatusCode::OK, page.render())
}

fn sort_rows(rows: &mut [ui::OverviewRow], by: &str, desc: bool) {
    let rank = |s: &str| match s {
        "down" => 0,
        "stale" => 1,
        _ => 2,
    };
    let num = |v: Option<f64>| v.unwrap_or(f64::NEG_INFINITY);
    rows.sort_by(|a, b| {
        let ord = match by {
            "name" => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
            "cpu" => num(a.cpu).total_cmp(&num(b.cpu)),
            "mem" => num(a.mem).total_cmp(&num(b.mem)),
            "disk" => num(a.disk).total_cmp(&num(b.disk)),
            "load" => num(a.load).total_cmp(&num(b.load)),
            "uptime" => num(a.uptime).total_cmp(&num(b.uptime)),
            // Nodes that stopped reporting first.
            _ => rank(a.status)
                .cmp(&rank(b.status))
                .then(a.name.cmp(&b.name)),
        };
        if desc { ord.reverse() } else { ord }
    });
}

/// A small inline SVG line of values between 0 and 1 (a CPU trend), with gaps.
fn sparkline(points: &[(i64, Option<f64>)]) -> String {
    let (w, h) = (120.0, 24.0);
    let n = points.len().max(2) as f64 - 1.0;
    let mut d = String::new();
    let mut pen_down = false;
    for (i, (_, v)) in points.iter().enumerate() {
        match v {
            Some(v) => {
                let x = i as f64 / n * w;
                let y = h - v.clamp(0.0, 1.0) * (h - 2.0) - 1.0;
                let _ = write!(d, "{}{x:.1} {y:.1}", if pen_down { " L" } else { " M" });
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    if d.is_empty() {
        return String::new();
    }
    format!(
        "<svg class=\"spark\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"CPU trend\"><path d=\"{}\"/></svg>",
        d.trim_start()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_break_at_gaps() {
        let svg = sparkline(&[(0, Some(0.5)), (1, None), (2, Some(0.2)), (3, Some(0.9))]);
        assert_eq!(svg.matches('M').count(), 2, "{svg}");
        assert!(sparkline(&[(0, None)]).is_empty());
    }
}
