//! One node's page (`/nodes/{id}`) and any dashboard file (`/d/{name}`).

use http::StatusCode;
use perch_ui as ui;
use perch_ui::Template;
use perch_ui::units;

use super::*;

/// `/nodes/{id}`: the built-in node dashboard (or `?dashboard=<name>`) for one node.
pub async fn node(ctx: Ctx) -> Answer {
    let id = ctx.id()?;
    let node = ctx.app.auth.node(id)?;
    let range = time_range(&ctx)?;
    let name = param(&ctx, "dashboard").unwrap_or_else(|| "node".into());
    // Read once: the one shown, and the tabs (those drawn per node).
    let (all, broken) = files::all(&ctx.app.dashboards_dir);
    let Some(dashboard) = all.iter().find(|d| d.name == name).cloned() else {
        let fault = broken
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, e)| e.as_str());
        return Err(not_shown(&name, fault));
    };
    let engine = &ctx.app.engine;
    let panels = draw_all(engine, &dashboard, Some(id), None, &range).await;
    let info = node_info(engine, &node, &range, zone(&ctx)).await;
    let (status, last_seen) = status_of(&node, now(), zone(&ctx));
    let path = if name == "node" {
        format!("/nodes/{id}")
    } else {
        format!("/nodes/{id}?dashboard={name}")
    };
    let page = ui::DashboardPage {
        nav: nav(ctx.who.as_ref()),
        title: format!("{} · {}", node.name, dashboard.title),
        heading: node.name.clone(),
        firing: ctx.app.alerting.firing_on(&node.name),
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
            targets: info.targets,
        }),
        dashboards: all
            .iter()
            .filter(|d| d.per_node())
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
    html(StatusCode::OK, page.render())
}

struct Info {
    uptime: String,
    kernel: String,
    targets: Vec<ui::TargetView>,
}

/// Uptime and kernel from the last samples, and the node's services and exporters with
/// their health.
async fn node_info(engine: &Engine, node: &Node, range: &TimeRange, zone: Option<&str>) -> Info {
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
    // Health is as of now, whatever range the charts show.
    let targets = services::targets(engine, Some(node.id), now())
        .await
        .unwrap_or_default()
        .iter()
        .map(|t| t.view(zone))
        .collect();
    Info {
        uptime,
        kernel,
        targets,
    }
}

/// `/d/{file}`: a dashboard file drawn for the node in `?node=<id>` (or for all when the
/// dashboard does not use `$node_id`), and the service in `?service=<name>` for a service
/// dashboard (MySQL, PostgreSQL).
pub async fn dashboard(ctx: Ctx) -> Answer {
    let name = ctx.params.first().cloned().unwrap_or_default();
    let dir = ctx.app.dashboards_dir.clone();
    let dashboard = load(&dir, &name)?;
    let range = time_range(&ctx)?;
    let node_id = param(&ctx, "node").and_then(|n| n.parse().ok());
    let service = param(&ctx, "service");
    if dashboard.per_service()
        && (node_id.is_none()
            || !service
                .as_deref()
                .is_some_and(crate::request::valid_service))
    {
        return Err(ApiError::BadInput(
            "This dashboard shows one database service: open it from the Services page (it needs ?node=<id>&service=<name>).".into(),
        ));
    }
    let panels = draw_all(
        &ctx.app.engine,
        &dashboard,
        node_id,
        service.as_deref(),
        &range,
    )
    .await;
    let path = match (node_id, &service) {
        (Some(n), Some(s)) if dashboard.per_service() => format!("/d/{name}?node={n}&service={s}"),
        (Some(n), _) => format!("/d/{name}?node={n}"),
        (None, _) => format!("/d/{name}"),
    };
    let heading = match (&service, node_id) {
        (Some(s), Some(n)) if dashboard.per_service() => {
            let node = ctx
                .app
                .auth
                .node(n)
                .map(|n| n.name)
                .unwrap_or_else(|_| n.to_string());
            format!("{s} on {node} · {}", dashboard.title)
        }
        _ => dashboard.title.clone(),
    };
    let page = ui::DashboardPage {
        nav: nav(ctx.who.as_ref()),
        title: heading.clone(),
        heading,
        firing: 0,
        node: None,
        dashboards: Vec::new(),
        range: range_view(&range, &path),
        engine: engine_notice(&ctx.app.engine),
        panels,
    };
    html(StatusCode::OK, page.render())
}
