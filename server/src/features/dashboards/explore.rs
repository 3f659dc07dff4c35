//! Explore (`/explore`) and the exporter metric browser (`/browse`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use http::StatusCode;
use perch_ui as ui;
use perch_ui::Template;
use perch_ui::units::{self, Unit};

use super::*;

/// Metric names offered on Explore, at most (a page of a few hundred KB at worst).
const MAX_METRIC_NAMES: usize = 5000;

/// `/explore?q=<PromQL>`: the result as a chart and as a table.
pub async fn explore(ctx: Ctx) -> Answer {
    let range = time_range(&ctx)?;
    let q = param(&ctx, "q").unwrap_or_default();
    let unit = param(&ctx, "unit")
        .and_then(|u| Unit::parse(&u))
        .unwrap_or(Unit::None);
    let (panel, table) = if q.trim().is_empty() {
        (None, Vec::new())
    } else {
        let engine = &ctx.app.engine;
        let expr = files::expand(&q, None, None, &range.rate());
        let panel = draw_query(engine, &range, "Result".into(), &expr, unit).await;
        let table = match engine.query_instant(&expr, range.end).await {
            Ok(samples) => samples
                .into_iter()
                .take(500)
                .map(|s| ui::TableRow {
                    labels: files::series_name(&s.labels),
                    value: units::format(s.value, unit),
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        (Some(panel), table)
    };
    // The range links keep the query and its unit.
    let unit_param = param(&ctx, "unit").unwrap_or_default();
    let kept: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            [("q", q.as_str()), ("unit", unit_param.as_str())]
                .into_iter()
                .filter(|(_, v)| !v.is_empty()),
        )
        .finish();
    let path = if kept.is_empty() {
        "/explore".to_owned()
    } else {
        format!("/explore?{kept}")
    };
    let mut metrics = ctx
        .app
        .engine
        .label_values("__name__", None)
        .await
        .unwrap_or_default();
    metrics.truncate(MAX_METRIC_NAMES);
    let page = ui::ExplorePage {
        nav: nav(ctx.who.as_ref()),
        q,
        unit: unit_param,
        metrics,
        range: range_view(&range, &path),
        engine: engine_notice(&ctx.app.engine),
        panel,
        table,
    };
    html(StatusCode::OK, page.render())
}

/// `/browse`: the metrics of scraped exporters (every job but the agent's own `node`), a
/// metric picked, label filters, charted.
pub async fn browse(ctx: Ctx) -> Answer {
    let range = time_range(&ctx)?;
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
        let counter =
            metric.ends_with("_total") || metric.ends_with("_count") || metric.ends_with("_sum");
        let expr = if counter {
            format!("rate({selector}[{}])", range.rate())
        } else {
            selector.clone()
        };
        let title = if counter {
            format!("rate({metric})")
        } else {
            metric.clone()
        };
        let unit = if counter { Unit::PerSecond } else { Unit::None };
        panel = Some(draw_query(engine, &range, title, &expr, unit).await);
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
    html(StatusCode::OK, page.render())
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
    fn metric_names_and_label_values_are_safe_in_selectors() {
        assert!(is_metric_name("mysql_global_status_queries"));
        assert!(!is_metric_name("up}or{x"));
        assert!(!is_metric_name("1abc"));
        assert_eq!(escape_label_value("a\"b\\c"), "a\\\"b\\\\c");
    }
}
