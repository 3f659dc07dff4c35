//! The Rules page: the built-in rules with their state and tuning, and the operator's own
//! rule files with their errors.

use std::collections::BTreeMap;

use http::StatusCode;
use perch_auth::Role;
use perch_ui as ui;
use perch_ui::Template;
use perch_ui::alerts::{self as pages, tabs};
use serde_json::Value;

use super::{is_role, unix_of};
use crate::alerting::{Override, RuleSetting, builtin};
use crate::request::{
    Answer, ApiError, Ctx, Form, csrf, done_notice, html, nav, notice_for, see_other, when_in, zone,
};

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
        crate::features::alerts::tune_rule(&ctx, &id, setting).await
    }
    .await;
    match result {
        Ok(()) => Ok(see_other(&format!("/alerts/rules?done=saved#rule-{id}"))),
        Err(e) => rules_with(&ctx, e.status(), notice_for(&e)).await,
    }
}
