//! The dashboard pages: the overview of every node (`/`), one node (`/nodes/{id}`), any
//! dashboard file (`/d/{name}`), the exporter metric browser (`/browse`) and Explore
//! (`/explore`). Queries run on the server against the metrics engine; charts are SVG made
//! on the server (readable without JavaScript; `/static/chart.js` adds hover values).
//! This module holds what the pages share: the range picker, drawing panels, the node's
//! status.

mod explore;
mod files;
mod node;
mod overview;
pub mod qan;
mod range;
mod services;

pub use explore::{browse, explore};
pub use node::{dashboard, node};
pub use overview::overview;
pub use services::services;

use std::sync::Arc;

use perch_ui as ui;
use perch_ui::chart;

use files::{Dashboard, Panel};
use range::{PRESETS, REFRESH, TimeRange};

use crate::engine::{Engine, RangeSeries, ReadError};
use crate::request::{Answer, ApiError, Ctx, done_notice, html, nav, when_in, zone};
use perch_auth::Node;
use perch_time::unix_now as now;

/// The most series one chart draws (the largest by peak); the legend says how many more.
const MAX_SERIES: usize = 12;
/// A node is up while its last accepted write is this recent, stale until [`DOWN_AFTER`].
const UP_WITHIN: i64 = 120;
const DOWN_AFTER: i64 = 600;

fn query_string(ctx: &Ctx) -> &str {
    ctx.req.uri().query().unwrap_or("")
}

fn param(ctx: &Ctx, name: &str) -> Option<String> {
    form_urlencoded::parse(query_string(ctx).as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The time range of the query string, or why it cannot be shown.
fn time_range(ctx: &Ctx) -> Result<TimeRange, ApiError> {
    TimeRange::from_query(query_string(ctx), now()).map_err(ApiError::BadRange)
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
    let choice = |label: &str, query: String, current: bool| ui::Choice {
        label: label.to_owned(),
        href: format!("{path}{sep}{query}"),
        current,
    };
    ui::RangeView {
        presets: PRESETS
            .iter()
            .map(|(k, _)| choice(k, range.with_preset(k), range.key == *k))
            .collect(),
        refresh: REFRESH
            .iter()
            .map(|(k, _)| choice(k, range.with_refresh(k), range.refresh_key == *k))
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
            label: files::legend(&panel.legend, &s.labels),
            points: on_grid(range, s),
        })
        .collect();
    // The panel's order first, by meaning; the rest alphabetically.
    let rank = |label: &str| {
        panel
            .order
            .iter()
            .position(|o| o == label)
            .unwrap_or(usize::MAX)
    };
    drawn.sort_by(|a, b| {
        rank(&a.label)
            .cmp(&rank(&b.label))
            .then_with(|| a.label.cmp(&b.label))
    });
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

/// One line chart of `expr` over the range (Explore, the exporter browser).
async fn draw_query(
    engine: &Engine,
    range: &TimeRange,
    title: String,
    expr: &str,
    unit: perch_ui::units::Unit,
) -> ui::PanelView {
    let panel = Panel {
        title,
        expr: expr.to_owned(),
        unit,
        kind: chart::Kind::Line,
        legend: String::new(),
        y_max: None,
        order: Vec::new(),
    };
    let result = engine
        .query_range(expr, range.start, range.end, range.step)
        .await;
    draw(range, &panel, result)
}

/// Runs every panel's query at once and draws them in order.
async fn draw_all(
    engine: &Arc<Engine>,
    dashboard: &Dashboard,
    node_id: Option<u64>,
    service: Option<&str>,
    range: &TimeRange,
) -> Vec<ui::PanelView> {
    let rate = range.rate();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, panel) in dashboard.panels.iter().enumerate() {
        let engine = engine.clone();
        let expr = files::expand(&panel.expr, node_id, service, &rate);
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

fn status_of(node: &Node, now: i64, zone: Option<&str>) -> (&'static str, String) {
    match node.last_push {
        Some(t) if now - t <= UP_WITHIN => ("up", when_in(zone, t)),
        Some(t) if now - t <= DOWN_AFTER => ("stale", when_in(zone, t)),
        Some(t) => ("down", when_in(zone, t)),
        None => ("down", "never".to_owned()),
    }
}

/// A matcher for the series of scraped exporters: not the agent's collector (`node`) nor
/// its own metrics (`perch_agent`).
const NOT_EXPORTERS: &str = "job!~\"node|perch_agent|\"";

/// The dashboard `name`, or why it cannot be shown.
fn load(dir: &std::path::Path, name: &str) -> Result<Dashboard, ApiError> {
    match files::find(dir, name) {
        Ok(Some(d)) => Ok(d),
        Ok(None) => Err(not_shown(name, None)),
        Err(e) => Err(not_shown(name, Some(&e))),
    }
}

/// A dashboard that cannot be shown: none by that name, or its file is broken (`fault`).
fn not_shown(name: &str, fault: Option<&str>) -> ApiError {
    match fault {
        None => ApiError::NoDashboard,
        Some(fault) => ApiError::BrokenDashboard {
            name: name.to_owned(),
            fault: fault.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_land_on_the_grid_with_gaps() {
        let range = TimeRange::from_query("range=15m", 1_764_000_000).unwrap();
        let s = RangeSeries {
            labels: std::collections::BTreeMap::new(),
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
}
