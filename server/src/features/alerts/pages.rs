//! The Alerts, Rules, Silences and Contact points pages: forms over the same calls as the
//! JSON API (`api.rs`).

use std::collections::{BTreeMap, HashMap};

use http::StatusCode;
use perch_auth::Role;
use perch_ui as ui;
use perch_ui::Template;
use perch_ui::alerts::{self as pages, tabs};
use serde_json::Value;

use super::{MatcherIn, ReceiverIn, SilenceIn, alerts};
use crate::alerting::{KINDS, Override, Route, Routing, RuleSetting, builtin};
use crate::request::{
    Answer, ApiError, Ctx, Form, csrf, done_notice, html, nav, notice_for, see_other, when_in, zone,
};

fn is_role(ctx: &Ctx, role: Role) -> bool {
    ctx.who.as_ref().is_some_and(|p| p.role >= role)
}

/// Every value of a repeated form field.
fn all(body: &[u8], name: &str) -> Vec<String> {
    form_urlencoded::parse(body)
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// `name=value`, `name!=value`, `name=~re`, `name!~re`.
fn parse_matcher(line: &str) -> Result<MatcherIn, ApiError> {
    let line = line.trim();
    for (op, is_equal, is_regex) in [
        ("!~", false, true),
        ("=~", true, true),
        ("!=", false, false),
        ("=", true, false),
    ] {
        if let Some((name, value)) = line.split_once(op) {
            let value = value.trim().trim_matches('"');
            return Ok(MatcherIn {
                name: name.trim().to_owned(),
                value: value.to_owned(),
                is_regex,
                is_equal,
            });
        }
    }
    Err(ApiError::BadInput(format!(
        "matchers: {line:?} is not name=value (or !=, =~, !~)"
    )))
}

// ---- Alerts ----

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
                severity: a.severity,
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
        super::make_silence(&ctx, input).await.map(|_| ())
    }
    .await;
    match result {
        Ok(()) => Ok(see_other("/alerts?done=silenced")),
        Err(e) => alerts_with(&ctx, e.status(), notice_for(&e)).await,
    }
}

// ---- Silences ----

pub async fn silences_page(ctx: Ctx) -> Answer {
    let notice = done_notice(&ctx);
    let prefill = all(ctx.req.uri().query().unwrap_or("").as_bytes(), "matcher").join("\n");
    silences_with(&ctx, StatusCode::OK, notice, prefill, String::new()).await
}

fn matcher_text(m: &Value) -> String {
    let op = match (
        m["isEqual"].as_bool().unwrap_or(true),
        m["isRegex"].as_bool().unwrap_or(false),
    ) {
        (true, false) => "=",
        (false, false) => "!=",
        (true, true) => "=~",
        (false, true) => "!~",
    };
    format!(
        "{}{op}{}",
        m["name"].as_str().unwrap_or_default(),
        m["value"].as_str().unwrap_or_default()
    )
}

fn unix_of(v: &Value) -> i64 {
    v.as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map_or(0, |t| t.as_second())
}

async fn silences_with(
    ctx: &Ctx,
    status: StatusCode,
    notice: ui::Notice,
    form_matchers: String,
    form_comment: String,
) -> Answer {
    let who = ctx.who.as_ref();
    let (list, unavailable) = match ctx.app.alerting.silences().await {
        Ok(Value::Array(list)) => (list, None),
        Ok(_) => (Vec::new(), None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let mut rows: Vec<(i64, pages::SilenceRow)> = list
        .iter()
        .map(|s| {
            let ends = unix_of(&s["endsAt"]);
            (
                ends,
                pages::SilenceRow {
                    id: s["id"].as_str().unwrap_or_default().to_owned(),
                    matchers: s["matchers"]
                        .as_array()
                        .map(|m| m.iter().map(matcher_text).collect::<Vec<_>>().join(", "))
                        .unwrap_or_default(),
                    state: s["status"]["state"].as_str().unwrap_or_default().to_owned(),
                    starts: when_in(zone(ctx), unix_of(&s["startsAt"])),
                    ends: when_in(zone(ctx), ends),
                    by: s["createdBy"].as_str().unwrap_or_default().to_owned(),
                    comment: s["comment"].as_str().unwrap_or_default().to_owned(),
                },
            )
        })
        .collect();
    // Active first, then the newest ending.
    rows.sort_by_key(|(ends, r)| (r.state == "expired", -ends));
    let page = pages::SilencesPage {
        nav: nav(who),
        csrf: csrf(who),
        notice,
        tabs: tabs("/alerts/silences", is_role(ctx, Role::Admin)),
        can_edit: is_role(ctx, Role::Editor),
        silences: rows.into_iter().map(|(_, r)| r).take(200).collect(),
        form_matchers,
        form_comment,
        unavailable,
    };
    html(status, page.render())
}

pub async fn silence_create(ctx: Ctx) -> Answer {
    let f = Form::parse(ctx.req.body());
    let result = async {
        let matchers = f
            .get("matchers")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(parse_matcher)
            .collect::<Result<Vec<_>, _>>()?;
        let duration = f.get("duration").trim();
        let until = f.get("until").trim();
        let (duration, ends_at) = if duration.is_empty() {
            // `datetime-local` sends `YYYY-MM-DDTHH:MM[:SS]`, taken as UTC.
            let t = [
                until.to_owned(),
                format!("{until}Z"),
                format!("{until}:00Z"),
            ]
            .iter()
            .find_map(|s| s.parse::<jiff::Timestamp>().ok())
            .ok_or_else(|| {
                ApiError::BadInput("until: choose the end time (UTC), or a duration".into())
            })?;
            (None, Some(t.to_string()))
        } else {
            (Some(duration.to_owned()), None)
        };
        let input = SilenceIn {
            matchers,
            duration,
            ends_at,
            comment: f.get("comment").to_owned(),
        };
        super::make_silence(&ctx, input).await.map(|_| ())
    }
    .await;
    match result {
        Ok(()) => Ok(see_other("/alerts/silences?done=silenced")),
        Err(e) => {
            let (m, c) = (f.get("matchers").to_owned(), f.get("comment").to_owned());
            silences_with(&ctx, e.status(), notice_for(&e), m, c).await
        }
    }
}

pub async fn silence_expire(ctx: Ctx) -> Answer {
    let id = ctx.param().to_owned();
    let result = super::expire_silence(&ctx, &id).await;
    match result {
        Ok(()) => Ok(see_other("/alerts/silences?done=expired")),
        Err(e) => {
            silences_with(
                &ctx,
                e.status(),
                notice_for(&e),
                String::new(),
                String::new(),
            )
            .await
        }
    }
}

// ---- Rules ----

pub async fn rules_page(ctx: Ctx) -> Answer {
    let notice = done_notice(&ctx);
    rules_with(&ctx, StatusCode::OK, notice).await
}

fn when_rfc3339(ctx: &Ctx, v: &Value) -> String {
    match unix_of(v) {
        t if t > 0 => when_in(zone(ctx), t),
        _ => String::new(),
    }
}

fn overrides_text(overrides: &[Override]) -> String {
    overrides
        .iter()
        .map(|o| {
            let mut line = format!("{}={}", o.label, o.value);
            if !o.enabled {
                line.push_str(" off");
            }
            for (k, v) in &o.params {
                line.push_str(&format!(" {k}={v}"));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn rules_with(ctx: &Ctx, status: StatusCode, notice: ui::Notice) -> Answer {
    let who = ctx.who.as_ref();
    let alerting = &ctx.app.alerting;
    let (groups, unavailable) = match alerting.vmalert_rules().await {
        Ok(v) => (
            v["data"]["groups"].as_array().cloned().unwrap_or_default(),
            None,
        ),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let group = |name: &str| groups.iter().find(|g| g["name"] == name);
    let rules = alerting
        .rule_settings()
        .await
        .into_iter()
        .map(|(t, s)| {
            let g = group(&format!("perch-{}", t.id));
            let rules: Vec<&Value> = g
                .and_then(|g| g["rules"].as_array())
                .map(|r| r.iter().collect())
                .unwrap_or_default();
            let state = if rules.is_empty() {
                if s.enabled || s.overrides.iter().any(|o| o.enabled) {
                    "starting"
                } else {
                    "off"
                }
            } else if rules.iter().any(|r| r["state"] == "firing") {
                "firing"
            } else if rules.iter().any(|r| r["state"] == "pending") {
                "pending"
            } else {
                "inactive"
            };
            pages::RuleRow {
                id: t.id.to_owned(),
                title: t.title.clone(),
                about: t.about.clone(),
                enabled: s.enabled,
                params: t
                    .params
                    .iter()
                    .map(|p| pages::ParamRow {
                        name: p.name.clone(),
                        value: s
                            .params
                            .get(&p.name)
                            .cloned()
                            .unwrap_or_else(|| p.default.clone()),
                        default: p.default.clone(),
                        about: p.about.clone(),
                    })
                    .collect(),
                overrides: overrides_text(&s.overrides),
                state: state.into(),
                last_evaluation: rules
                    .first()
                    .map(|r| when_rfc3339(ctx, &r["lastEvaluation"]))
                    .unwrap_or_default(),
                last_error: rules
                    .iter()
                    .filter_map(|r| r["lastError"].as_str().filter(|e| !e.is_empty()))
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            }
        })
        .collect();
    let custom = alerting
        .custom_files()
        .await
        .into_iter()
        .map(|c| {
            let file = format!("custom-{}", c.name);
            let rules = groups
                .iter()
                .filter(|g| g["file"].as_str().is_some_and(|f| f.ends_with(&file)))
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .map(|r| {
                    (
                        r["name"].as_str().unwrap_or_default().to_owned(),
                        r["state"].as_str().unwrap_or("recording").to_owned(),
                        r["lastError"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            pages::CustomRow {
                name: c.name,
                error: c.error,
                rules,
            }
        })
        .collect();
    let page = pages::RulesPage {
        nav: nav(who),
        csrf: csrf(who),
        notice,
        tabs: tabs("/alerts/rules", is_role(ctx, Role::Admin)),
        can_edit: is_role(ctx, Role::Editor),
        rules,
        custom,
        custom_dir: ctx.app.alerting.custom_dir().display().to_string(),
        unavailable,
    };
    html(status, page.render())
}

/// `label=value [off] [param=value ...]`, one per line.
fn parse_overrides(text: &str) -> Result<Vec<Override>, ApiError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut words = line.split_whitespace();
            let first = words.next().unwrap_or_default();
            let (label, value) = first.split_once('=').ok_or_else(|| {
                ApiError::BadInput(format!(
                    "overrides: {line:?} does not start with label=value"
                ))
            })?;
            let mut o = Override {
                label: label.to_owned(),
                value: value.trim_matches('"').to_owned(),
                enabled: true,
                params: BTreeMap::new(),
            };
            for w in words {
                if w == "off" {
                    o.enabled = false;
                } else if let Some((k, v)) = w.split_once('=') {
                    o.params.insert(k.to_owned(), v.to_owned());
                } else {
                    return Err(ApiError::BadInput(format!(
                        "overrides: {w:?} is neither param=value nor off"
                    )));
                }
            }
            Ok(o)
        })
        .collect()
}

pub async fn rule_save(ctx: Ctx) -> Answer {
    let f = Form::parse(ctx.req.body());
    let id = ctx.param().to_owned();
    let result = async {
        let template = builtin()
            .iter()
            .find(|t| t.id == id)
            .ok_or(ApiError::NotFound("rule"))?;
        let mut params = BTreeMap::new();
        for p in &template.params {
            let v = f.get(&format!("p_{}", p.name)).trim();
            if !v.is_empty() && v != p.default {
                params.insert(p.name.clone(), v.to_owned());
            }
        }
        let setting = RuleSetting {
            enabled: f.get("enabled") == "on",
            params,
            overrides: parse_overrides(f.get("overrides"))?,
        };
        super::tune_rule(&ctx, &id, setting).await
    }
    .await;
    match result {
        Ok(()) => Ok(see_other(&format!("/alerts/rules?done=saved#rule-{id}"))),
        Err(e) => rules_with(&ctx, e.status(), notice_for(&e)).await,
    }
}

// ---- Contact points ----

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
    let result = super::save_receiver(&ctx, input, true).await;
    contact_result(&ctx, result, "saved").await
}

pub async fn contact_update(ctx: Ctx) -> Answer {
    let body = ctx.req.body().clone();
    let f = Form::parse(&body);
    let input = receiver_form(&f, &body, ctx.param());
    let result = super::save_receiver(&ctx, input, false).await;
    contact_result(&ctx, result, "saved").await
}

pub async fn contact_delete(ctx: Ctx) -> Answer {
    let name = ctx.param().to_owned();
    let result = super::delete_receiver(&ctx, &name).await;
    contact_result(&ctx, result, "deleted").await
}

pub async fn contact_test(ctx: Ctx) -> Answer {
    let name = ctx.param().to_owned();
    let result = super::send_test(&ctx, &name).await;
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
        super::set_routing(&ctx, routing).await
    }
    .await;
    contact_result(&ctx, result, "routing").await
}
