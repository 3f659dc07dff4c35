//! The Contact points page: contact points (secrets write-only), a test for each, and the
//! routing.

use std::collections::BTreeMap;

use http::StatusCode;
use perch_ui as ui;
use perch_ui::Template;
use perch_ui::alerts::{self as pages, tabs};

use crate::alerting::{KINDS, Route, Routing};
use crate::features::alerts::ReceiverIn;
use crate::request::{
    Answer, ApiError, Ctx, Form, csrf, done_notice, html, nav, notice_for, see_other,
};

pub async fn contact_points_page(ctx: Ctx) -> Answer {
    let notice = done_notice(&ctx);
    contact_points_with(&ctx, StatusCode::OK, notice).await
}

fn route_text(r: &Route) -> String {
    let mut parts = Vec::new();
    if let Some(s) = &r.severity {
        parts.push(format!("severity={s}"));
    }
    if let Some((k, v)) = &r.label {
        parts.push(format!("{k}={v}"));
    }
    format!("{} -> {}", parts.join(" "), r.receiver)
}

async fn contact_points_with(ctx: &Ctx, status: StatusCode, notice: ui::Notice) -> Answer {
    let who = ctx.who.as_ref();
    let (receivers, routing) = ctx.app.alerting.contact_points().await;
    let fields = |kind: &str, settings: &BTreeMap<String, String>, set: &[String]| {
        KINDS
            .iter()
            .find(|(k, _, _)| *k == kind)
            .map(|(_, _, fields)| {
                fields
                    .iter()
                    .map(|f| pages::FieldRow {
                        name: f.name.into(),
                        about: f.about.into(),
                        secret: f.secret,
                        required: f.required,
                        value: settings.get(f.name).cloned().unwrap_or_default(),
                        set: set.iter().any(|s| s == f.name),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let title = |kind: &str| {
        KINDS
            .iter()
            .find(|(k, _, _)| *k == kind)
            .map_or(kind.to_owned(), |(_, t, _)| (*t).to_owned())
    };
    let page = pages::ContactPointsPage {
        nav: nav(who),
        csrf: csrf(who),
        notice,
        tabs: tabs("/alerts/contact-points", true),
        receivers: receivers
            .iter()
            .map(|r| pages::ReceiverRow {
                name: r.name.clone(),
                kind: r.kind.clone(),
                title: title(&r.kind),
                summary: r
                    .settings
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .chain(r.secrets_set.iter().map(|k| format!("{k}: set")))
                    .collect::<Vec<_>>()
                    .join(" · "),
                fields: fields(&r.kind, &r.settings, &r.secrets_set),
            })
            .collect(),
        kinds: KINDS
            .iter()
            .map(|(k, t, _)| pages::KindForm {
                kind: (*k).into(),
                title: (*t).into(),
                fields: fields(k, &BTreeMap::new(), &[]),
            })
            .collect(),
        default_receiver: routing.default_receiver.clone().unwrap_or_default(),
        routes: routing
            .routes
            .iter()
            .map(route_text)
            .collect::<Vec<_>>()
            .join("\n"),
        external: ctx.app.alerting.external_alertmanager(),
    };
    html(status, page.render())
}

fn receiver_form(f: &Form, body: &[u8], name: &str) -> ReceiverIn {
    let fields = form_urlencoded::parse(body)
        .filter_map(|(k, v)| k.strip_prefix("f_").map(|k| (k.to_owned(), v.into_owned())))
        .filter(|(_, v)| !v.trim().is_empty())
        .collect();
    ReceiverIn {
        name: name.to_owned(),
        kind: f.get("kind").to_owned(),
        fields,
    }
}

async fn contact_result(ctx: &Ctx, result: Result<(), ApiError>, done: &str) -> Answer {
    match result {
        Ok(()) => Ok(see_other(&format!("/alerts/contact-points?done={done}"))),
        Err(e) => contact_points_with(ctx, e.status(), notice_for(&e)).await,
    }
}

pub async fn contact_create(ctx: Ctx) -> Answer {
    let body = ctx.req.body().clone();
    let f = Form::parse(&body);
    let input = receiver_form(&f, &body, f.get("name"));
    let result = crate::features::alerts::save_receiver(&ctx, input, true).await;
    contact_result(&ctx, result, "saved").await
}

pub async fn contact_update(ctx: Ctx) -> Answer {
    let body = ctx.req.body().clone();
    let f = Form::parse(&body);
    let input = receiver_form(&f, &body, ctx.param());
    let result = crate::features::alerts::save_receiver(&ctx, input, false).await;
    contact_result(&ctx, result, "saved").await
}

pub async fn contact_delete(ctx: Ctx) -> Answer {
    let name = ctx.param().to_owned();
    let result = crate::features::alerts::delete_receiver(&ctx, &name).await;
    contact_result(&ctx, result, "deleted").await
}

pub async fn contact_test(ctx: Ctx) -> Answer {
    let name = ctx.param().to_owned();
    let result = crate::features::alerts::send_test(&ctx, &name).await;
    contact_result(&ctx, result, "tested").await
}

/// `[severity=s] [label=value] -> receiver`, one per line.
fn parse_routes(text: &str) -> Result<Vec<Route>, ApiError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (matchers, receiver) = line.rsplit_once("->").ok_or_else(|| {
                ApiError::BadInput(format!("routes: {line:?} has no -> contact point"))
            })?;
            let mut route = Route {
                receiver: receiver.trim().to_owned(),
                severity: None,
                label: None,
            };
            for m in matchers.split_whitespace() {
                let (k, v) = m.split_once('=').ok_or_else(|| {
                    ApiError::BadInput(format!("routes: {m:?} is not label=value"))
                })?;
                let v = v.trim_matches('"').to_owned();
                match k {
                    "severity" => route.severity = Some(v),
                    _ if route.label.is_none() => route.label = Some((k.to_owned(), v)),
                    _ => {
                        return Err(ApiError::BadInput(format!(
                            "routes: {line:?}: one label besides severity per route"
                        )));
                    }
                }
            }
            Ok(route)
        })
        .collect()
}

pub async fn routing_save(ctx: Ctx) -> Answer {
    let f = Form::parse(ctx.req.body());
    let result = async {
        let routing = Routing {
            default_receiver: Some(f.get("default").trim().to_owned()).filter(|d| !d.is_empty()),
            routes: parse_routes(f.get("routes"))?,
        };
        crate::features::alerts::set_routing(&ctx, routing).await
    }
    .await;
    contact_result(&ctx, result, "routing").await
}
