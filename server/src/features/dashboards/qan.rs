//! Query Analytics' pages and API: the busiest query fingerprints over a range (`/qan`,
//! `/v1/qan/queries`) and one fingerprint (`/qan/{id}`, `/v1/qan/queries/{id}`). Figures
//! are the per-interval series the reports wrote (`perch_qan_*`), summed over the range in
//! the engine; texts come from the text store.

use std::collections::{BTreeMap, BTreeSet};

use http::StatusCode;
use perch_auth::Role;
use perch_qan::{OTHER, is_fingerprint_id};
use perch_ui as ui;
use perch_ui::Template;
use perch_ui::units::{self, Unit};
use serde::Serialize;

use super::*;
use crate::request::json;

/// Rows a list shows by default, and at most.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;
/// Characters of a query's text in the list.
const LIST_TEXT: usize = 240;

/// The filters of the query string: label and query-string name, and the title shown.
const FILTERS: &[(&str, &str, &str)] = &[
    ("type", "service_type", "Type"),
    ("service", "service_name", "Service"),
    ("node", "node_name", "Node"),
    ("environment", "environment", "Environment"),
    ("cluster", "cluster", "Cluster"),
    ("schema", "schema", "Schema / database"),
    ("username", "username", "User"),
];

/// What the list can be ranked by.
const ORDERS: &[(&str, &str)] = &[
    ("time", "Total time"),
    ("count", "Count"),
    ("mean", "Mean latency"),
    ("rows", "Rows"),
];

/// The chosen filters: label → value.
fn filters(ctx: &Ctx) -> BTreeMap<&'static str, String> {
    FILTERS
        .iter()
        .filter_map(|(q, label, _)| Some((*label, param(ctx, q).filter(|v| !v.is_empty())?)))
        .collect()
}

/// A PromQL string literal of `v`.
fn quoted(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The matchers of the chosen filters (and one fingerprint), comma-separated.
fn matchers(chosen: &BTreeMap<&'static str, String>, fingerprint: Option<&str>) -> String {
    let mut parts: Vec<String> = chosen
        .iter()
        .map(|(k, v)| format!("{k}={}", quoted(v)))
        .collect();
    if let Some(f) = fingerprint {
        parts.push(format!("fingerprint={}", quoted(f)));
    }
    parts.join(",")
}

/// The selector of the chosen filters (and one fingerprint).
fn selector(chosen: &BTreeMap<&'static str, String>, fingerprint: Option<&str>) -> String {
    format!("{{{}}}", matchers(chosen, fingerprint))
}

/// A failed read as the client hears it.
fn read_failed(e: ReadError) -> ApiError {
    let error = match e {
        ReadError::Engine(e) => e,
        _ => crate::engine::EngineError::NoAnswer,
    };
    ApiError::engine(crate::request::EngineOp::Query, error)
}

/// One fingerprint's figures over the range.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub count: f64,
    pub time_s: f64,
    pub max_s: f64,
    pub rows_sent: f64,
    pub rows_examined: f64,
    pub errors: f64,
}

impl Totals {
    fn mean_s(&self) -> f64 {
        if self.count > 0.0 {
            self.time_s / self.count
        } else {
            0.0
        }
    }

    fn rows(&self) -> f64 {
        self.rows_sent.max(self.rows_examined)
    }

    /// Adds `other` (the longest is the longer of the two).
    fn add(&mut self, other: &Totals) {
        self.count += other.count;
        self.time_s += other.time_s;
        self.max_s = self.max_s.max(other.max_s);
        self.rows_sent += other.rows_sent;
        self.rows_examined += other.rows_examined;
        self.errors += other.errors;
    }
}

/// Where a fingerprint ran: a node's service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Place {
    pub node_id: u64,
    pub node_name: String,
    pub service_name: String,
    pub service_type: String,
}

#[derive(Debug, Clone, Default)]
struct Stats {
    totals: Totals,
    places: BTreeSet<Place>,
    /// Load (average active queries) per step over the range.
    load: Vec<Option<f64>>,
}

/// Every fingerprint's figures over `range` for the selector `sel`.
async fn gather(
    engine: &Engine,
    sel: &str,
    range: &TimeRange,
    with_load: bool,
) -> Result<BTreeMap<String, Stats>, ReadError> {
    let w = (range.end - range.start).max(1);
    let at = range.end;
    let sum = |m: &str| format!("sum by (fingerprint) (sum_over_time({m}{sel}[{w}s]))");
    let exprs = [
        sum("perch_qan_queries"),
        sum("perch_qan_query_seconds"),
        format!("max by (fingerprint) (max_over_time(perch_qan_query_max_seconds{sel}[{w}s]))"),
        sum("perch_qan_rows_sent"),
        sum("perch_qan_rows_examined"),
        sum("perch_qan_errors"),
        format!(
            "count by (fingerprint, node_id, node_name, service_name, service_type) (last_over_time(perch_qan_queries{sel}[{w}s]))"
        ),
    ];
    let (count, time, max, sent, examined, errors, places) = tokio::join!(
        engine.query_instant(&exprs[0], at),
        engine.query_instant(&exprs[1], at),
        engine.query_instant(&exprs[2], at),
        engine.query_instant(&exprs[3], at),
        engine.query_instant(&exprs[4], at),
        engine.query_instant(&exprs[5], at),
        engine.query_instant(&exprs[6], at),
    );
    let mut out: BTreeMap<String, Stats> = BTreeMap::new();
    let key = |s: &crate::engine::InstantSample| s.labels.get("fingerprint").cloned();
    for (samples, set) in [
        (
            count?,
            (|t: &mut Totals, v| t.count = v) as fn(&mut Totals, f64),
        ),
        (time?, |t, v| t.time_s = v),
        (max?, |t, v| t.max_s = v),
        (sent?, |t, v| t.rows_sent = v),
        (examined?, |t, v| t.rows_examined = v),
        (errors?, |t, v| t.errors = v),
    ] {
        for s in samples {
            if let Some(k) = key(&s)
                && s.value.is_finite()
            {
                set(&mut out.entry(k).or_default().totals, s.value);
            }
        }
    }
    for s in places? {
        let (Some(k), Some(node_id)) = (
            key(&s),
            s.labels.get("node_id").and_then(|n| n.parse().ok()),
        ) else {
            continue;
        };
        let get = |l: &str| s.labels.get(l).cloned().unwrap_or_default();
        if let Some(stats) = out.get_mut(&k) {
            stats.places.insert(Place {
                node_id,
                node_name: get("node_name"),
                service_name: get("service_name"),
                service_type: get("service_type"),
            });
        }
    }
    if with_load {
        let step = range.step.max(1);
        let expr = format!(
            "sum by (fingerprint) (sum_over_time(perch_qan_query_seconds{sel}[{step}s])) / {step}"
        );
        // The list still shows without its small charts.
        if let Ok(series) = engine
            .query_range(&expr, range.start, range.end, range.step)
            .await
        {
            for s in series {
                if let Some(stats) = s.labels.get("fingerprint").and_then(|k| out.get_mut(k)) {
                    stats.load = on_grid(range, &s).into_iter().map(|(_, v)| v).collect();
                }
            }
        }
    }
    Ok(out)
}

/// A fingerprint's text, from the first place it ran that the store has it for.
fn text_of(
    app: &crate::request::App,
    id: &str,
    places: &BTreeSet<Place>,
) -> Option<perch_qan::StoredText> {
    places.iter().find_map(|p| {
        app.qan
            .get(&perch_qan::scope(p.node_id, &p.service_name), id)
            .ok()
            .flatten()
    })
}

fn order_key(order: &str, t: &Totals) -> f64 {
    match order {
        "count" => t.count,
        "mean" => t.mean_s(),
        "rows" => t.rows(),
        _ => t.time_s,
    }
}

fn order_of(ctx: &Ctx) -> &'static str {
    let want = param(ctx, "order").unwrap_or_default();
    ORDERS
        .iter()
        .map(|(k, _)| *k)
        .find(|k| *k == want)
        .unwrap_or("time")
}

fn limit_of(ctx: &Ctx) -> usize {
    param(ctx, "limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1, MAX_LIMIT)
}

/// One row of the list as the API gives it.
#[derive(Debug, Serialize)]
struct QueryOut {
    fingerprint: String,
    text: Option<String>,
    #[serde(flatten)]
    totals: Totals,
    mean_s: f64,
    /// Average active queries over the range.
    load: f64,
    /// Of the selection's total time, 0 to 1.
    share: f64,
    places: Vec<Place>,
}

/// The list: ranked rows, the "other" row, the totals, and how many more there are.
struct Listing {
    rows: Vec<(String, Stats)>,
    other: Option<Stats>,
    total: Totals,
    more: usize,
}

async fn listing(ctx: &Ctx, range: &TimeRange, with_load: bool) -> Result<Listing, ApiError> {
    let chosen = filters(ctx);
    let sel = selector(&chosen, None);
    let mut all = gather(&ctx.app.engine, &sel, range, with_load)
        .await
        .map_err(read_failed)?;
    let mut total = Totals::default();
    for s in all.values() {
        total.add(&s.totals);
    }
    let other = all.remove(OTHER);
    let order = order_of(ctx);
    let mut rows: Vec<(String, Stats)> = all
        .into_iter()
        .filter(|(_, s)| s.totals.count > 0.0)
        .collect();
    rows.sort_by(|a, b| {
        order_key(order, &b.1.totals)
            .total_cmp(&order_key(order, &a.1.totals))
            .then_with(|| a.0.cmp(&b.0))
    });
    let limit = limit_of(ctx);
    let more = rows.len().saturating_sub(limit);
    rows.truncate(limit);
    Ok(Listing {
        rows,
        other,
        total,
        more,
    })
}

fn share(part: f64, total: f64) -> f64 {
    if total > 0.0 { part / total } else { 0.0 }
}

/// `GET /v1/qan/queries`: the busiest fingerprints over the range.
pub async fn api_queries(ctx: Ctx) -> Answer {
    let range = time_range(&ctx)?;
    let list = listing(&ctx, &range, false).await?;
    let window = (range.end - range.start).max(1) as f64;
    let out = |id: &str, s: &Stats, text: Option<String>| QueryOut {
        fingerprint: id.to_owned(),
        text,
        mean_s: s.totals.mean_s(),
        load: s.totals.time_s / window,
        share: share(s.totals.time_s, list.total.time_s),
        places: s.places.iter().cloned().collect(),
        totals: s.totals.clone(),
    };
    let queries: Vec<QueryOut> = list
        .rows
        .iter()
        .map(|(id, s)| out(id, s, text_of(&ctx.app, id, &s.places).map(|t| t.text)))
        .collect();
    #[derive(Serialize)]
    struct ListOut {
        start: i64,
        end: i64,
        order: &'static str,
        total: Totals,
        load: f64,
        queries: Vec<QueryOut>,
        other: Option<QueryOut>,
        more: usize,
    }
    Ok(json(
        StatusCode::OK,
        &ListOut {
            start: range.start,
            end: range.end,
            order: order_of(&ctx),
            load: list.total.time_s / window,
            other: list.other.as_ref().map(|s| out(OTHER, s, None)),
            total: list.total,
            queries,
            more: list.more,
        },
    ))
}

/// The query string of the filters and the order (unless `with_order` is false).
fn filters_query(ctx: &Ctx, with_order: bool) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (name, _, _) in FILTERS {
        if let Some(v) = param(ctx, name).filter(|v| !v.is_empty()) {
            q.append_pair(name, &v);
        }
    }
    if with_order && let Some(o) = param(ctx, "order").filter(|o| !o.is_empty()) {
        q.append_pair("order", &o);
    }
    q.finish()
}

/// `path` with the filters, the order and the range, for links.
fn link(ctx: &Ctx, path: &str, range: &TimeRange) -> String {
    match filters_query(ctx, true) {
        q if q.is_empty() => format!("{path}?{}", range.query()),
        q => format!("{path}?{q}&{}", range.query()),
    }
}

/// `path` with the filters and the order: the range picker adds the range.
fn picker_path(ctx: &Ctx, path: &str) -> String {
    match filters_query(ctx, true) {
        q if q.is_empty() => path.to_owned(),
        q => format!("{path}?{q}"),
    }
}

fn short(text: &str) -> String {
    if text.chars().count() <= LIST_TEXT {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(LIST_TEXT).collect();
        format!("{cut}…")
    }
}

fn places_text(places: &BTreeSet<Place>) -> String {
    match places.len() {
        0 => String::new(),
        1 => places
            .iter()
            .next()
            .map(|p| format!("{} on {}", p.service_name, p.node_name))
            .unwrap_or_default(),
        n => format!("{n} services"),
    }
}

fn row_view(
    rank: usize,
    href: String,
    text: String,
    s: &Stats,
    total: &Totals,
    window: f64,
) -> ui::QanRow {
    let part = share(s.totals.time_s, total.time_s);
    ui::QanRow {
        rank,
        href,
        text,
        services: places_text(&s.places),
        load: units::format(s.totals.time_s / window, Unit::None),
        share: units::format(part, Unit::PercentUnit),
        bar: ((part * 20.0).round() as u32 * 5).min(100),
        spark: ui::chart::sparkline(&s.load),
        count: units::format(s.totals.count, Unit::Count),
        per_second: units::format(s.totals.count / window, Unit::PerSecond),
        mean: units::format(s.totals.mean_s(), Unit::Seconds),
        max: units::format(s.totals.max_s, Unit::Seconds),
        rows: units::format(s.totals.rows(), Unit::Count),
    }
}

/// `GET /qan`: the page of the busiest queries.
pub async fn page(ctx: Ctx) -> Answer {
    let range = time_range(&ctx)?;
    let engine = &ctx.app.engine;
    let window = (range.end - range.start).max(1) as f64;
    // The filters' choices: every label value any service reported in the range.
    let w = (range.end - range.start).max(1);
    let labels: Vec<&str> = FILTERS.iter().map(|(_, l, _)| *l).collect();
    let choices = engine
        .query_instant(
            &format!(
                "count by ({}) (last_over_time(perch_qan_queries[{w}s]))",
                labels.join(", ")
            ),
            range.end,
        )
        .await;
    let (list, failure) = match listing(&ctx, &range, true).await {
        Ok(l) => (Some(l), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let choices = choices.unwrap_or_default();
    let chosen = filters(&ctx);
    let filter_views = FILTERS
        .iter()
        .map(|(q, label, title)| {
            let options: BTreeSet<String> = choices
                .iter()
                .filter_map(|s| s.labels.get(*label).cloned())
                .filter(|v| !v.is_empty())
                .collect();
            ui::FilterView {
                name: (*q).to_owned(),
                title: (*title).to_owned(),
                options: options.into_iter().collect(),
                current: chosen.get(label).cloned().unwrap_or_default(),
            }
        })
        .filter(|f| !f.options.is_empty())
        .collect();
    let base = match filters_query(&ctx, false) {
        q if q.is_empty() => range.query(),
        q => format!("{q}&{}", range.query()),
    };
    let current = order_of(&ctx);
    let orders = ORDERS
        .iter()
        .map(|(k, label)| ui::Choice {
            label: (*label).to_owned(),
            href: format!("/qan?{base}&order={k}"),
            current: *k == current,
        })
        .collect();
    let (rows, other, total, more) = match &list {
        Some(l) => (
            l.rows
                .iter()
                .enumerate()
                .map(|(i, (id, s))| {
                    let text = text_of(&ctx.app, id, &s.places).map_or_else(
                        || "(its text has not arrived yet)".to_owned(),
                        |t| short(&t.text),
                    );
                    row_view(
                        i + 1,
                        link(&ctx, &format!("/qan/{id}"), &range),
                        text,
                        s,
                        &l.total,
                        window,
                    )
                })
                .collect(),
            l.other.as_ref().map(|s| {
                row_view(
                    0,
                    String::new(),
                    "Other queries: outside each interval's top N, or over the service's cap"
                        .into(),
                    s,
                    &l.total,
                    window,
                )
            }),
            l.total.clone(),
            l.more,
        ),
        None => (Vec::new(), None, Totals::default(), 0),
    };
    let mut kept: Vec<(String, String)> = form_urlencoded::parse(range.query().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    kept.push(("order".into(), current.to_owned()));
    let page = ui::QanPage {
        nav: nav(ctx.who.as_ref()),
        range: range_view(&range, &picker_path(&ctx, "/qan")),
        filters: filter_views,
        filter_action: "/qan".to_owned(),
        kept,
        orders,
        any: !choices.is_empty(),
        rows,
        other,
        total_load: units::format(total.time_s / window, Unit::None),
        total_count: units::format(total.count, Unit::Count),
        total_time: units::format(total.time_s, Unit::Seconds),
        more,
        engine: engine_notice(engine).or(failure),
    };
    html(StatusCode::OK, page.render())
}

/// The fingerprint of `/qan/{id}`, checked.
fn fingerprint(ctx: &Ctx) -> Result<String, ApiError> {
    let id = ctx.param();
    if is_fingerprint_id(id) && id != OTHER {
        Ok(id.to_owned())
    } else {
        Err(ApiError::NotFound("There is no such query."))
    }
}

/// Whether the caller may see example statements (which hold real values).
fn sees_examples(ctx: &Ctx) -> bool {
    ctx.app.qan_examples_for_viewers || ctx.who.as_ref().is_some_and(|p| p.role >= Role::Editor)
}

/// One fingerprint over the range: its figures and places, its text (with its example when
/// the caller may see it), and whether an example was held back.
async fn one(
    ctx: &Ctx,
    id: &str,
    range: &TimeRange,
) -> Result<(Stats, Option<perch_qan::StoredText>, bool), ApiError> {
    let chosen = filters(ctx);
    let sel = selector(&chosen, Some(id));
    let mut found = gather(&ctx.app.engine, &sel, range, false)
        .await
        .map_err(read_failed)?;
    let stats = found.remove(id).unwrap_or_default();
    let mut text = text_of(&ctx.app, id, &stats.places);
    if stats.places.is_empty() && text.is_none() {
        return Err(ApiError::NotFound(
            "No such query ran in this range with these filters; try a longer range.",
        ));
    }
    let mut held_back = false;
    if let Some(t) = text.as_mut().filter(|_| !sees_examples(ctx)) {
        held_back = t.example.take().is_some();
    }
    Ok((stats, text, held_back))
}

/// `GET /v1/qan/queries/{id}`: one fingerprint's figures, text and load over the range.
pub async fn api_query(ctx: Ctx) -> Answer {
    let id = fingerprint(&ctx)?;
    let range = time_range(&ctx)?;
    let (stats, text, _) = one(&ctx, &id, &range).await?;
    let window = (range.end - range.start).max(1) as f64;
    let step = range.step.max(1);
    let sel = selector(&filters(&ctx), Some(&id));
    let load = ctx
        .app
        .engine
        .query_range(
            &format!("sum(sum_over_time(perch_qan_query_seconds{sel}[{step}s])) / {step}"),
            range.start,
            range.end,
            range.step,
        )
        .await
        .map_err(read_failed)?;
    #[derive(Serialize)]
    struct OneOut {
        fingerprint: String,
        start: i64,
        end: i64,
        text: Option<String>,
        /// Absent when there is none, or the caller may not see it.
        example: Option<String>,
        #[serde(flatten)]
        totals: Totals,
        mean_s: f64,
        load: f64,
        places: Vec<Place>,
        /// `[unix seconds, average active queries]` per step.
        load_series: Vec<(i64, f64)>,
    }
    Ok(json(
        StatusCode::OK,
        &OneOut {
            start: range.start,
            end: range.end,
            text: text.as_ref().map(|t| t.text.clone()),
            example: text.and_then(|t| t.example),
            mean_s: stats.totals.mean_s(),
            load: stats.totals.time_s / window,
            places: stats.places.iter().cloned().collect(),
            load_series: load
                .into_iter()
                .next()
                .map(|s| s.points)
                .unwrap_or_default(),
            totals: stats.totals,
            fingerprint: id,
        },
    ))
}

/// `GET /qan/{id}`: one query's page.
pub async fn query_page(ctx: Ctx) -> Answer {
    let id = fingerprint(&ctx)?;
    let range = time_range(&ctx)?;
    let (stats, text, example_hidden) = one(&ctx, &id, &range).await?;
    let engine = &ctx.app.engine;
    let window = (range.end - range.start).max(1) as f64;
    let step = range.step.max(1);
    let sel = selector(&filters(&ctx), Some(&id));
    let per_step = |m: &str| format!("sum(sum_over_time({m}{sel}[{step}s]))");
    let load_expr = format!("{} / {step}", per_step("perch_qan_query_seconds"));
    let charts = [
        (
            "Load (average active queries)",
            load_expr.clone(),
            Unit::None,
        ),
        (
            "Queries per second",
            format!("{} / {step}", per_step("perch_qan_queries")),
            Unit::PerSecond,
        ),
        (
            "Mean latency",
            format!(
                "{} / {}",
                per_step("perch_qan_query_seconds"),
                per_step("perch_qan_queries")
            ),
            Unit::Seconds,
        ),
        (
            "Rows per second (sent, examined)",
            format!(
                "sum by (__name__) (sum_over_time({{__name__=~\"perch_qan_rows_sent|perch_qan_rows_examined\",{}}}[{step}s])) / {step}",
                matchers(&filters(&ctx), Some(&id))
            ),
            Unit::PerSecond,
        ),
    ];
    let mut panels = Vec::new();
    for (title, expr, unit) in charts {
        panels.push(draw_query(engine, &range, title.to_owned(), &expr, unit).await);
    }
    let t = &stats.totals;
    let facts = [
        ("Load", units::format(t.time_s / window, Unit::None)),
        ("Count", units::format(t.count, Unit::Count)),
        (
            "Per second",
            units::format(t.count / window, Unit::PerSecond),
        ),
        ("Total time", units::format(t.time_s, Unit::Seconds)),
        ("Mean", units::format(t.mean_s(), Unit::Seconds)),
        ("Max", units::format(t.max_s, Unit::Seconds)),
        ("Rows sent", units::format(t.rows_sent, Unit::Count)),
        ("Rows examined", units::format(t.rows_examined, Unit::Count)),
        ("Errors", units::format(t.errors, Unit::Count)),
    ]
    .into_iter()
    .map(|(label, value)| ui::Fact {
        label: label.to_owned(),
        value,
    })
    .collect();
    let services = stats
        .places
        .iter()
        .map(|p| ui::Choice {
            label: format!("{} on {} (dashboard)", p.service_name, p.node_name),
            href: format!(
                "/d/{}?node={}&service={}&{}",
                p.service_type,
                p.node_id,
                p.service_name,
                range.query()
            ),
            current: false,
        })
        .collect();
    let explore = format!(
        "/explore?{}&{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("q", &load_expr)
            .finish(),
        range.query()
    );
    let (text_shown, example) = match text {
        Some(t) => (t.text, t.example),
        None => ("(its text has not arrived yet)".to_owned(), None),
    };
    let page = ui::QanQueryPage {
        nav: nav(ctx.who.as_ref()),
        range: range_view(&range, &picker_path(&ctx, &format!("/qan/{id}"))),
        id,
        text: text_shown,
        example,
        example_hidden,
        facts,
        services,
        panels,
        explore,
        back: link(&ctx, "/qan", &range),
        engine: engine_notice(engine),
    };
    html(StatusCode::OK, page.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_quote_what_users_chose() {
        let mut chosen = BTreeMap::new();
        chosen.insert("service_name", "db\"1\\".to_owned());
        assert_eq!(
            selector(&chosen, Some("abc")),
            "{service_name=\"db\\\"1\\\\\",fingerprint=\"abc\"}"
        );
        assert_eq!(selector(&BTreeMap::new(), None), "{}");
    }

    #[test]
    fn lists_keep_a_shortened_text() {
        let long = "x".repeat(LIST_TEXT + 5);
        assert_eq!(short(&long).chars().count(), LIST_TEXT + 1);
        assert_eq!(short("SELECT ?"), "SELECT ?");
    }
}
