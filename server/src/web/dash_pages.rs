//! The dashboard pages: the overview of every node (`/`), one node (`/nodes/{id}`), any
//! dashboard file (`/d/{name}`), the exporter metric browser (`/browse`) and Explore
//! (`/explore`). Queries run on the server against the metrics engine; charts are SVG made
//! on the server (readable without JavaScript; `/static/chart.js` adds hover values).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use http::StatusCode;
use perch_ui as ui;
use perch_ui::Template;
use perch_ui::chart::{self, Kind};
use perch_ui::units::{self, Unit};

use super::dashboards::{self, Dashboard, Panel};
use super::pages::{error_page, message, nav};
use super::range::{PRESETS, REFRESH, TimeRange};
use super::support;
use crate::auth::Node;
use crate::http::Body;
use crate::http::routes::{Ctx, Handled};
use crate::metrics::{Engine, RangeSeries, ReadError};

type Response = http::Response<Body>;

/// The most series one chart draws (the largest by peak); the legend says how many more.
const MAX_SERIES: usize = 12;
/// A node is up while its last accepted write is this recent, stale until [`DOWN_AFTER`].
const UP_WITHIN: i64 = 120;
const DOWN_AFTER: i64 = 600;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn query_string(ctx: &Ctx) -> &str {
    ctx.req.uri().query().unwrap_or("")
}

fn param(ctx: &Ctx, name: &str) -> Option<String> {
    form_urlencoded::parse(query_string(ctx).as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The time range, or a 400 page saying what is wrong with it.
fn time_range(ctx: &Ctx) -> Result<TimeRange, Box<Response>> {
    TimeRange::from_query(query_string(ctx), now()).map_err(|e| {
        Box::new(message(
            ctx.who.as_ref(),
            StatusCode::BAD_REQUEST,
            "Cannot show that range",
            &e,
        ))
    })
}

/// The range picker and refresh choices for `path` (which may carry its own query).
fn range_view(range: &TimeRange, path: &str) -> ui::RangeView {
    let sep = if path.contains('?') { '&' } else { '?' };
    let (from, to) = range.inputs();
    let (base, hidden) = match path.split_once('?') {
        Some((base, q)) => (
            base.to_owned(),
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ),
        None => (path.to_owned(), Vec::new()),
    };
    ui::RangeView {
        presets: PRESETS
            .iter()
            .map(|(k, _)| ui::Choice {
                label: (*k).to_owned(),
                href: format!("{path}{sep}{}", range.with_preset(k)),
                current: range.key == *k,
            })
            .collect(),
        refresh: REFRESH
            .iter()
            .map(|(k, _)| ui::Choice {
                label: (*k).to_owned(),
                href: format!("{path}{sep}{}", range.with_refresh(k)),
                current: range.refresh_key == *k,
            })
            .collect(),
        action: base,
        hidden,
        from,
        to,
        refresh_key: range.refresh_key.to_owned(),
        refresh_s: range.refresh,
        custom: range.key == "custom",
    }
}

/// A range query's series on the range's grid of steps: `None` where a step has no sample
/// (or a NaN), so the chart leaves a gap.
fn on_grid(range: &TimeRange, series: &RangeSeries) -> Vec<(i64, Option<f64>)> {
    let n = ((range.end - range.start) / range.step + 1).max(0) as usize;
    let mut grid: Vec<(i64, Option<f64>)> = (0..n)
        .map(|i| (range.start + i as i64 * range.step, None))
        .collect();
    for &(t, v) in &series.points {
        if v.is_finite() && t >= range.start {
            let i = ((t - range.start) / range.step) as usize;
            if let Some(slot) = grid.get_mut(i) {
                slot.1 = Some(v);
            }
        }
    }
    grid
}

/// One drawn panel: its title and the chart (or a message why there is none).
fn draw(
    range: &TimeRange,
    panel: &Panel,
    result: Result<Vec<RangeSeries>, ReadError>,
) -> ui::PanelView {
    let mut series = match result {
        Ok(s) => s,
        Err(e) => {
            return ui::PanelView {
                title: panel.title.clone(),
                chart: String::new(),
                error: Some(e.to_string()),
                more: 0,
            };
        }
    };
    // The largest first, so that what is cut is the least visible.
    let peak = |s: &RangeSeries| {
        s.points
            .iter()
            .map(|p| p.1)
            .filter(|v| v.is_finite())
            .fold(f64::MIN, f64::max)
    };
    let more = series.len().saturating_sub(MAX_SERIES);
    if more > 0 {
        series.sort_by(|a, b| peak(b).total_cmp(&peak(a)));
        series.truncate(MAX_SERIES);
    }
    let mut drawn: Vec<chart::Series> = series
        .iter()
        .map(|s| chart::Series {
            label: dashboards::legend(&panel.legend, &s.labels),
            points: on_grid(range, s),
        })
        .collect();
    drawn.sort_by(|a, b| a.label.cmp(&b.label));
    let spec = chart::Spec {
        title: panel.title.clone(),
        unit: panel.unit,
        kind: panel.kind,
        start: range.start,
        end: range.end,
        step: range.step,
        y_min: None,
        y_max: panel.y_max,
    };
    ui::PanelView {
        title: panel.title.clone(),
        chart: chart::render(&spec, &drawn),
        error: None,
        more,
    }
}

/// Runs every panel's query at once and draws them in order.
async fn draw_all(
    engine: &Arc<Engine>,
    dashboard: &Dashboard,
    node_id: Option<u64>,
    range: &TimeRange,
) -> Vec<ui::PanelView> {
    let rate = range.rate();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, panel) in dashboard.panels.iter().enumerate() {
        let engine = engine.clone();
        let expr = dashboards::expand(&panel.expr, node_id, &rate);
        let (start, end, step) = (range.start, range.end, range.step);
        tasks.spawn(async move { (i, engine.query_range(&expr, start, end, step).await) });
    }
    let mut results: Vec<Option<Result<Vec<RangeSeries>, ReadError>>> =
        (0..dashboard.panels.len()).map(|_| None).collect();
    while let Some(done) = tasks.join_next().await {
        if let Ok((i, r)) = done {
            results[i] = Some(r);
        }
    }
    dashboard
        .panels
        .iter()
        .zip(results)
        .map(|(panel, r)| draw(range, panel, r.unwrap_or(Err(ReadError::Decode))))
        .collect()
}

/// What the engine's state means for a page: a sentence when it is not ready.
fn engine_notice(engine: &Engine) -> Option<String> {
    let (ready, why) = engine.readiness();
    (!ready).then(|| {
        format!("The metrics engine is not available ({why}); charts are empty until it is back.")
    })
}

fn status_of(node: &Node, now: i64) -> (&'static str, String) {
    match node.last_push {
        Some(t) if now - t <= UP_WITHIN => ("up", support::when(t)),
        Some(t) if now - t <= DOWN_AFTER => ("stale", support::when(t)),
        Some(t) => ("down", support::when(t)),
        None => ("down", "never".to_owned()),
    }
}

/// `/nodes/{id}`: the built-in node dashboard (or `?dashboard=<name>`) for one node.
pub fn node(ctx: Ctx) -> Handled {
    Box::pin(async move {
        let id = match ctx.id() {
            Ok(id) => id,
            Err(e) => return error_page(ctx.who.as_ref(), &e),
        };
        let node = match ctx.app.auth.node(id) {
            Ok(n) => n,
            Err(e) => return error_page(ctx.who.as_ref(), &e),
        };
        let range = match time_range(&ctx) {
            Ok(r) => r,
            Err(resp) => return *resp,
        };
        let dir = ctx.app.dashboards_dir.clone();
        let name = param(&ctx, "dashboard").unwrap_or_else(|| "node".into());
        let dashboard = match load(&ctx, &dir, &name) {
            Ok(d) => d,
            Err(resp) => return *resp,
        };
        let engine = &ctx.app.engine;
        let panels = draw_all(engine, &dashboard, Some(id), &range).await;
        let info = node_info(engine, &node, &range).await;
        let (status, last_seen) = status_of(&node, now());
        let path = if name == "node" {
            format!("/nodes/{id}")
        } else {
            format!("/nodes/{id}?dashboard={name}")
        };
        let (others, _) = dashboards::all(&dir);
        let page = ui::DashboardPage {
            nav: nav(ctx.who.as_ref()),
            title: format!("{} · {}", node.name, dashboard.title),
            heading: node.name.clone(),
            node: Some(ui::NodeInfo {
                id,
                status,
                last_seen,
                address: node.address.clone(),
                labels: node
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
                uptime: info.uptime,
                kernel: info.kernel,
                exporters: info.exporters,
            }),
            dashboards: others
                .iter()
                .map(|d| ui::Choice {
                    label: d.title.clone(),
                    href: if d.name == "node" {
                        format!("/nodes/{id}?{}", range.query())
                    } else {
                        format!("/nodes/{id}?dashboard={}&{}", d.name, range.query())
                    },
                    current: d.name == dashboard.name,
                })
                .collect(),
            range: range_view(&range, &path),
            engine: engine_notice(engine),
            panels,
        };
        support::html(StatusCode::OK, page.render())
    })
}

/// The dashboard `name`, or the page saying there is none or that its file is broken.
fn load(ctx: &Ctx, dir: &std::path::Path, name: &str) -> Result<Dashboard, Box<Response>> {
    match dashboards::find(dir, name) {
        Ok(Some(d)) => Ok(d),
        Ok(None) => Err(Box::new(message(
            ctx.who.as_ref(),
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such dashboard.",
        ))),
        Err(e) => Err(Box::new(message(
            ctx.who.as_ref(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "This dashboard file is broken",
            &format!("{name}.toml: {e}. Fix the file; the page reads it again on each visit."),
        ))),
    }
}

struct Info {
    uptime: String,
    kernel: String,
    exporters: Vec<String>,
}

/// Uptime and kernel from the last samples, and the exporters (jobs other than `node`).
async fn node_info(engine: &Engine, node: &Node, range: &TimeRange) -> Info {
    let sel = format!("{{job=\"node\",node_id=\"{}\"}}", node.id);
    let at = range.end;
    let uptime = engine
        .query_instant(
            &format!("node_time_seconds{sel} - node_boot_time_seconds{sel}"),
            at,
        )
        .await
        .ok()
        .and_then(|v| v.first().map(|s| units::format_duration_s(s.value)))
        .unwrap_or_else(|| "—".into());
    let kernel = engine
        .query_instant(&format!("node_uname_info{sel}"), at)
        .await
        .ok()
        .and_then(|v| v.into_iter().next())
        .map(|s| {
            let get = |k: &str| s.labels.get(k).cloned().unwrap_or_default();
            format!("{} {} ({})", get("sysname"), get("release"), get("machine"))
        })
        .unwrap_or_else(|| "—".into());
    let exporters = engine
        .series(
            &format!("{{node_id=\"{}\",{NOT_EXPORTERS}}}", node.id),
            range.start,
            range.end,
        )
        .await
        .map(|series| {
            let mut jobs: Vec<String> = series
                .into_iter()
                .filter_map(|l| {
                    Some(format!(
                        "{} ({})",
                        l.get("job")?,
                        l.get("instance").map_or("", String::as_str)
                    ))
                })
                .collect();
            jobs.sort();
            jobs.dedup();
            jobs
        })
        .unwrap_or_default();
    Info {
        uptime,
        kernel,
        exporters,
    }
}

/// `/d/{file}`: a dashboard file drawn for the node in `?node=<id>` (or for all when the
/// dashboard does not use `$node_id`).
pub fn dashboard(ctx: Ctx) -> Handled {
    Box::pin(async move {
        let name = ctx.params.first().cloned().unwrap_or_default();
        let dir = ctx.app.dashboards_dir.clone();
        let dashboard = match load(&ctx, &dir, &name) {
            Ok(d) => d,
            Err(resp) => return *resp,
        };
        let range = match time_range(&ctx) {
            Ok(r) => r,
            Err(resp) => return *resp,
        };
        let node_id = param(&ctx, "node").and_then(|n| n.parse().ok());
        let panels = draw_all(&ctx.app.engine, &dashboard, node_id, &range).await;
        let path = match node_id {
            Some(n) => format!("/d/{name}?node={n}"),
            None => format!("/d/{name}"),
        };
        let page = ui::DashboardPage {
            nav: nav(ctx.who.as_ref()),
            title: dashboard.title.clone(),
            heading: dashboard.title.clone(),
            node: None,
            dashboards: Vec::new(),
            range: range_view(&range, &path),
            engine: engine_notice(&ctx.app.engine),
            panels,
        };
        support::html(StatusCode::OK, page.render())
    })
}

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

/// A matcher for the series of scraped exporters: not the agent's collector (`node`) nor
/// its own metrics (`perch_agent`).
const NOT_EXPORTERS: &str = "job!~\"node|perch_agent|\"";

const TREND: &str =
    "1 - avg by (node_id) (rate(node_cpu_seconds_total{job=\"node\",mode=\"idle\"}[$rate]))";

/// `/`: every node at a glance, sortable, with a CPU trend for the range.
pub fn overview(ctx: Ctx) -> Handled {
    Box::pin(async move {
        let range = match time_range(&ctx) {
            Ok(r) => r,
            Err(resp) => return *resp,
        };
        let nodes = match ctx.app.auth.nodes() {
            Ok(n) => n,
            Err(e) => return error_page(ctx.who.as_ref(), &e),
        };
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
                let (status, last_seen) = status_of(n, now);
                ui::OverviewRow {
                    id: n.id,
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
                }
            })
            .collect();
        let sort = param(&ctx, "sort").unwrap_or_else(|| "status".into());
        let desc = param(&ctx, "dir").as_deref() == Some("desc");
        sort_rows(&mut rows, &sort, desc);
        let path = format!("/?sort={sort}&dir={}", if desc { "desc" } else { "asc" });
        let page = ui::OverviewPage {
            nav: nav(ctx.who.as_ref()),
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
                .is_some_and(|p| p.role >= crate::auth::Role::Editor),
            rows,
            dashboards: dashboards::all(&ctx.app.dashboards_dir)
                .0
                .into_iter()
                .filter(|d| d.name != "node")
                .map(|d| ui::Choice {
                    href: format!("/d/{}?{}", d.name, range.query()),
                    label: d.title,
                    current: false,
                })
                .collect(),
        };
        support::html(StatusCode::OK, page.render())
    })
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

/// `/explore?q=<PromQL>`: the result as a chart and as a table.
pub fn explore(ctx: Ctx) -> Handled {
    Box::pin(async move {
        let range = match time_range(&ctx) {
            Ok(r) => r,
            Err(resp) => return *resp,
        };
        let q = param(&ctx, "q").unwrap_or_default();
        let unit = param(&ctx, "unit")
            .and_then(|u| Unit::parse(&u))
            .unwrap_or(Unit::None);
        let (panel, table) = if q.trim().is_empty() {
            (None, Vec::new())
        } else {
            let engine = &ctx.app.engine;
            let expr = dashboards::expand(&q, None, &range.rate());
            let panel = Panel {
                title: "Result".into(),
                expr: expr.clone(),
                unit,
                kind: Kind::Line,
                legend: String::new(),
                y_max: None,
            };
            let result = engine
                .query_range(&expr, range.start, range.end, range.step)
                .await;
            let table = match engine.query_instant(&expr, range.end).await {
                Ok(samples) => samples
                    .into_iter()
                    .take(500)
                    .map(|s| ui::TableRow {
                        labels: dashboards::series_name(&s.labels),
                        value: units::format(s.value, unit),
                    })
                    .collect(),
                Err(_) => Vec::new(),
            };
            (Some(draw(&range, &panel, result)), table)
        };
        let path = if q.is_empty() {
            "/explore".to_owned()
        } else {
            let enc: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
            format!("/explore?q={enc}")
        };
        let page = ui::ExplorePage {
            nav: nav(ctx.who.as_ref()),
            q,
            unit: param(&ctx, "unit").unwrap_or_default(),
            range: range_view(&range, &path),
            engine: engine_notice(&ctx.app.engine),
            panel,
            table,
        };
        support::html(StatusCode::OK, page.render())
    })
}

/// `/browse`: the metrics of scraped exporters (every job but the agent's own `node`), a
/// metric picked, label filters, charted.
pub fn browse(ctx: Ctx) -> Handled {
    Box::pin(async move {
        let range = match time_range(&ctx) {
            Ok(r) => r,
            Err(resp) => return *resp,
        };
        let engine = &ctx.app.engine;
        let metric = param(&ctx, "metric").filter(|m| is_metric_name(m));
        let filters: Vec<(String, String)> = form_urlencoded::parse(query_string(&ctx).as_bytes())
            .filter_map(|(k, v)| {
                let label = k.strip_prefix("l.")?;
                (perch_remote_write::is_label_name(label) && !v.is_empty())
                    .then(|| (label.to_owned(), v.into_owned()))
            })
            .collect();
        let names = engine
            .label_values("__name__", Some(&format!("{{{NOT_EXPORTERS}}}")))
            .await;
        let engine_error = names.as_ref().err().map(ToString::to_string);
        let names = names.unwrap_or_default();
        let mut labels = Vec::new();
        let mut panel = None;
        if let Some(metric) = &metric {
            let mut selector = format!("{metric}{{{NOT_EXPORTERS}");
            for (k, v) in &filters {
                let _ = write!(selector, ",{k}=\"{}\"", escape_label_value(v));
            }
            selector.push('}');
            if let Ok(series) = engine.series(&selector, range.start, range.end).await {
                let mut by_label: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for s in series {
                    for (k, v) in s {
                        if k != "__name__" {
                            by_label.entry(k).or_default().push(v);
                        }
                    }
                }
                labels = by_label
                    .into_iter()
                    .map(|(name, mut values)| {
                        values.sort();
                        values.dedup();
                        values.truncate(200);
                        ui::LabelFilter {
                            selected: filters
                                .iter()
                                .find(|(k, _)| *k == name)
                                .map(|(_, v)| v.clone())
                                .unwrap_or_default(),
                            name,
                            values,
                        }
                    })
                    .collect();
            }
            let counter = metric.ends_with("_total")
                || metric.ends_with("_count")
                || metric.ends_with("_sum");
            let expr = if counter {
                format!("rate({selector}[{}])", range.rate())
            } else {
                selector.clone()
            };
            let p = Panel {
                title: if counter {
                    format!("rate({metric})")
                } else {
                    metric.clone()
                },
                expr: expr.clone(),
                unit: if counter { Unit::PerSecond } else { Unit::None },
                kind: Kind::Line,
                legend: String::new(),
                y_max: None,
            };
            let result = engine
                .query_range(&expr, range.start, range.end, range.step)
                .await;
            panel = Some(draw(&range, &p, result));
        }
        let mut path = String::from("/browse");
        if let Some(m) = &metric {
            path = format!("/browse?metric={m}");
            for (k, v) in &filters {
                let enc: String = form_urlencoded::byte_serialize(v.as_bytes()).collect();
                let _ = write!(path, "&l.{k}={enc}");
            }
        }
        let page = ui::BrowsePage {
            nav: nav(ctx.who.as_ref()),
            names,
            metric: metric.clone().unwrap_or_default(),
            labels,
            range: range_view(&range, &path),
            engine: engine_notice(engine).or(engine_error),
            panel,
        };
        support::html(StatusCode::OK, page.render())
    })
}

fn is_metric_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_alphabetic() || b == b'_' || b == b':' || (i > 0 && b.is_ascii_digit())
        })
}

fn escape_label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_land_on_the_grid_with_gaps() {
        let range = TimeRange::from_query("range=15m", 1_764_000_000).unwrap();
        let s = RangeSeries {
            labels: BTreeMap::new(),
            points: vec![
                (range.start, 1.0),
                (range.start + 2 * range.step, f64::NAN),
                (range.start + 3 * range.step, 3.0),
            ],
        };
        let grid = on_grid(&range, &s);
        assert_eq!(grid[0], (range.start, Some(1.0)));
        assert_eq!(grid[1].1, None);
        assert_eq!(grid[2].1, None);
        assert_eq!(grid[3].1, Some(3.0));
        assert_eq!(
            grid.len() as i64,
            (range.end - range.start) / range.step + 1
        );
    }

    #[test]
    fn sparklines_break_at_gaps() {
        let svg = sparkline(&[(0, Some(0.5)), (1, None), (2, Some(0.2)), (3, Some(0.9))]);
        assert_eq!(svg.matches('M').count(), 2, "{svg}");
        assert!(sparkline(&[(0, None)]).is_empty());
    }

    #[test]
    fn metric_names_and_label_values_are_safe_in_selectors() {
        assert!(is_metric_name("mysql_global_status_queries"));
        assert!(!is_metric_name("up}or{x"));
        assert!(!is_metric_name("1abc"));
        assert_eq!(escape_label_value("a\"b\\c"), "a\\\"b\\\\c");
    }
}
