//! The database services the agents watch (`perch-admin add mysql|postgresql`) and the
//! health of every scraped target, as the agents report them (`perch_target_up`,
//! `perch_target_error_info`): the Services page (`/services`), and what the node page and
//! the overview show of them.

use std::collections::BTreeMap;

use http::StatusCode;
use perch_ui as ui;
use perch_ui::Template;
use perch_ui::units;

use super::*;
use crate::engine::InstantSample;

/// One scraped target (an exporter or a database service) as its agent last reported it.
#[derive(Debug, Clone)]
pub struct Target {
    pub node_id: u64,
    pub labels: BTreeMap<String, String>,
    pub up: bool,
    pub error: Option<String>,
    /// When its health last changed, as its agent reported (Unix seconds).
    pub since: Option<i64>,
}

impl Target {
    fn get(&self, k: &str) -> &str {
        self.labels.get(k).map_or("", String::as_str)
    }

    /// The service's name, or the exporter's (`job`).
    pub fn name(&self) -> &str {
        match self.get("service_name") {
            "" => self.get("job"),
            n => n,
        }
    }

    /// `mysql`, `postgresql`, or empty for an exporter.
    pub fn service_type(&self) -> &str {
        self.get("service_type")
    }

    /// The dashboard of a service: `/d/mysql?node=3&service=db-1`.
    pub fn href(&self) -> Option<String> {
        let kind = self.service_type();
        (!kind.is_empty() && crate::request::valid_service(self.name()))
            .then(|| format!("/d/{kind}?node={}&service={}", self.node_id, self.name()))
    }

    fn key(&self) -> (u64, String) {
        (self.node_id, self.name().to_owned())
    }

    /// How a page shows it, times in `zone`.
    pub fn view(&self, zone: Option<&str>) -> ui::TargetView {
        ui::TargetView {
            since: self.since.map(|t| when_in(zone, t)),
            name: self.name().to_owned(),
            kind: match self.service_type() {
                "mysql" => "MySQL".to_owned(),
                "postgresql" => "PostgreSQL".to_owned(),
                _ => format!("exporter {}", self.get("instance")),
            },
            up: self.up,
            error: self.error.clone(),
            href: self.href(),
        }
    }
}

fn node_of(s: &InstantSample) -> Option<u64> {
    s.labels.get("node_id")?.parse().ok()
}

/// The target a sample of another of the agent's target series is about: the same node,
/// `job` and `instance`.
fn same_target<'a>(targets: &'a mut [Target], s: &InstantSample) -> Option<&'a mut Target> {
    let node_id = node_of(s)?;
    targets.iter_mut().find(|t| {
        t.node_id == node_id
            && t.labels.get("job") == s.labels.get("job")
            && t.labels.get("instance") == s.labels.get("instance")
    })
}

/// Every target the agents report at `at` (of one node, or of all), services first, each
/// with its last error when it is down.
pub async fn targets(
    engine: &Engine,
    node: Option<u64>,
    at: i64,
) -> Result<Vec<Target>, ReadError> {
    let sel = node.map_or(String::new(), |n| format!("{{node_id=\"{n}\"}}"));
    let (up_expr, error_expr, since_expr) = (
        format!("perch_target_up{sel}"),
        // When each error was last reported: a target that failed in two ways lately has
        // a series for each, and the newest is its error now.
        format!("timestamp(perch_target_error_info{sel})"),
        format!("perch_target_since_timestamp_seconds{sel}"),
    );
    let (up, errors, since) = tokio::join!(
        engine.query_instant(&up_expr, at),
        engine.query_instant(&error_expr, at),
        engine.query_instant(&since_expr, at),
    );
    let mut out: Vec<Target> = up?
        .into_iter()
        .filter_map(|s| {
            Some(Target {
                node_id: node_of(&s)?,
                up: s.value == 1.0,
                error: None,
                since: None,
                labels: s.labels,
            })
        })
        .collect();
    // Oldest first, so that the newest error of a target is the one it keeps.
    let mut errors = errors.unwrap_or_default();
    errors.sort_by(|a, b| a.value.total_cmp(&b.value));
    for e in errors {
        if let Some(t) = same_target(&mut out, &e).filter(|t| !t.up) {
            t.error = e.labels.get("error").cloned();
        }
    }
    for s in since.unwrap_or_default() {
        if let Some(t) = same_target(&mut out, &s) {
            t.since = Some(s.value as i64).filter(|v| *v > 0);
        }
    }
    out.sort_by(|a, b| {
        a.service_type()
            .is_empty()
            .cmp(&b.service_type().is_empty())
            .then_with(|| a.node_id.cmp(&b.node_id))
            .then_with(|| a.name().cmp(b.name()))
    });
    Ok(out)
}

/// One value per (node, service) from an instant query.
async fn per_service(
    engine: &Engine,
    expr: &str,
    at: i64,
) -> BTreeMap<(u64, String), InstantSample> {
    engine
        .query_instant(expr, at)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| {
            let key = (node_of(&s)?, s.labels.get("service_name")?.clone());
            Some((key, s))
        })
        .collect()
}

const VERSION: &str = "label_replace(mysql_version_info, \"v\", \"$1\", \"version\", \"(.*)\") or label_replace(pg_static, \"v\", \"$1\", \"short_version\", \"(.*)\")";
const UPTIME: &str = "mysql_global_status_uptime or (time() - pg_postmaster_start_time_seconds)";
const CONNECTIONS: &str = "mysql_global_status_threads_connected or sum by (node_id, service_name) (pg_stat_activity_count)";

/// `/services`: every database service across all nodes, with filters by type,
/// environment and cluster.
pub async fn services(ctx: Ctx) -> Answer {
    let engine = &ctx.app.engine;
    let at = now();
    let nodes: BTreeMap<u64, String> = ctx
        .app
        .auth
        .nodes()?
        .into_iter()
        .map(|n| (n.id, n.name))
        .collect();
    let (found, versions, uptimes, connections) = tokio::join!(
        targets(engine, None, at),
        per_service(engine, VERSION, at),
        per_service(engine, UPTIME, at),
        per_service(engine, CONNECTIONS, at),
    );
    let failure = found.as_ref().err().map(|e| e.to_string());
    let all: Vec<Target> = found
        .unwrap_or_default()
        .into_iter()
        .filter(|t| !t.service_type().is_empty())
        .collect();
    let wanted = |key: &str| param(&ctx, key).filter(|v| !v.is_empty());
    let filters = [
        ("type", "service_type", "Type"),
        ("environment", "environment", "Environment"),
        ("cluster", "cluster", "Cluster"),
    ];
    let chosen: Vec<Option<String>> = filters.iter().map(|(q, _, _)| wanted(q)).collect();
    let rows: Vec<ui::ServiceView> = all
        .iter()
        .filter(|t| {
            filters
                .iter()
                .zip(&chosen)
                .all(|((_, label, _), want)| want.as_ref().is_none_or(|w| t.get(label) == w))
        })
        .map(|t| {
            let key = t.key();
            ui::ServiceView {
                target: t.view(zone(&ctx)),
                node_id: t.node_id,
                node_name: nodes
                    .get(&t.node_id)
                    .cloned()
                    .unwrap_or_else(|| t.get("node_name").to_owned()),
                version: versions
                    .get(&key)
                    .and_then(|s| s.labels.get("v").cloned())
                    .unwrap_or_else(|| "—".into()),
                uptime: uptimes
                    .get(&key)
                    .map_or("—".into(), |s| units::format_duration_s(s.value)),
                connections: connections
                    .get(&key)
                    .map_or("—".into(), |s| format!("{}", s.value.round())),
                environment: t.get("environment").to_owned(),
                cluster: t.get("cluster").to_owned(),
            }
        })
        .collect();
    let page = ui::ServicesPage {
        nav: nav(ctx.who.as_ref()),
        filter_action: "/services".to_owned(),
        kept: Vec::new(),
        filters: filters
            .iter()
            .zip(&chosen)
            .map(|((query, label, title), current)| {
                let mut options: Vec<String> = all
                    .iter()
                    .map(|t| t.get(label).to_owned())
                    .filter(|v| !v.is_empty())
                    .collect();
                options.sort();
                options.dedup();
                ui::FilterView {
                    name: (*query).to_owned(),
                    title: (*title).to_owned(),
                    options,
                    current: current.clone().unwrap_or_default(),
                }
            })
            .collect(),
        total: all.len(),
        down: rows.iter().filter(|r| !r.target.up).count(),
        rows,
        engine: engine_notice(engine).or(failure),
    };
    html(StatusCode::OK, page.render())
}
