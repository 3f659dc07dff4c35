//! The Alerts page, and silencing an alert from it in one click.

use std::collections::HashMap;

use http::StatusCode;
use perch_auth::Role;
use perch_ui as ui;
use perch_ui::Template;
use perch_ui::alerts::{self as pages, tabs};

use super::{all, is_role, parse_matcher};
use crate::features::alerts::{SilenceIn, alerts};
use crate::request::{
    Answer, Ctx, Form, csrf, done_notice, html, nav, notice_for, see_other, when_in, zone,
};

pub async fn alerts_page(ctx: Ctx) -> Answer {
    let notice = done_notice(&ctx);
    alerts_with(&ctx, StatusCode::OK, notice).await
}

async fn alerts_with(ctx: &Ctx, status: StatusCode, notice: ui::Notice) -> Answer {
    let who = ctx.who.as_ref();
    let ids: HashMap<String, u64> = ctx
        .app
        .auth
        .nodes()?
        .into_iter()
        .map(|n| (n.name, n.id))
        .collect();
    let now = jiff::Timestamp::now().as_second();
    let (list, unavailable) = match alerts(ctx).await {
        Ok(list) => (list, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let rows: Vec<pages::AlertRow> = list
        .into_iter()
        .map(|a| {
            let matchers: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let silence_href = format!(
                "/alerts/silences?{}",
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(matchers.iter().map(|m| ("matcher", m)))
                    .finish()
            );
            let explore = format!(
                "/explore?{}",
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("q", &a.expression)
                    .append_pair("from", &(a.since_unix - 900).to_string())
                    .append_pair("to", &now.to_string())
                    .finish()
            );
            pages::AlertRow {
                node: a
                    .node_name
                    .as_ref()
                    .and_then(|n| ids.get(n).map(|id| (format!("/nodes/{id}"), n.clone()))),
                since: when_in(zone(ctx), a.since_unix),
                labels: a
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{v}\""))
                    .collect(),
                silenced: !a.silenced_by.is_empty(),
                name: a.name,
                state: a.state,
                value: short_value(&a.value),
                summary: a.summary,
                severity: a.labels.get("severity").cloned().unwrap_or_default(),
                explore,
                matchers,
                silence_href,
            }
        })
        .collect();
    let page = pages::AlertsPage {
        nav: nav(who),
        csrf: csrf(who),
        notice,
        tabs: tabs("/alerts", is_role(ctx, Role::Admin)),
        can_silence: is_role(ctx, Role::Editor),
        firing: rows.iter().filter(|r| r.state == "firing").count(),
        pending: rows.iter().filter(|r| r.state == "pending").count(),
        alerts: rows,
        unavailable,
    };
    html(status, page.render())
}

/// A value as people read it: whole numbers as they are, others to 3 significant digits.
fn short_value(v: &str) -> String {
    match v.parse::<f64>() {
        Ok(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{n:.0}"),
        Ok(n) if n.abs() >= 100.0 => format!("{n:.0}"),
        Ok(n) if n.abs() >= 1.0 => format!("{n:.2}"),
        Ok(n) => format!("{n:.3}"),
        Err(_) => v.to_owned(),
    }
}

/// One click on an alert: a silence of exactly its labels for 1 h, 4 h or 1 day.
pub async fn silence_alert(ctx: Ctx) -> Answer {
    let body = ctx.req.body().clone();
    let f = Form::parse(&body);
    let result = async {
        let matchers = all(&body, "matcher")
            .iter()
            .map(|m| parse_matcher(m))
            .collect::<Result<Vec<_>, _>>()?;
        let input = SilenceIn {
            matchers,
            duration: Some(f.get("duration").to_owned()),
            ends_at: None,
            comment: f.get("comment").to_owned(),
        };
        crate::features::alerts::make_silence(&ctx, input)
            .await
            .map(|_| ())
    }
    .await;
    match result {
        Ok(()) => Ok(see_other("/alerts?done=silenced")),
        Err(e) => alerts_with(&ctx, e.status(), notice_for(&e)).await,
    }
}
