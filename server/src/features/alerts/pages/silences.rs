//! The Silences page: the list, a new silence by matchers, expiring one.

use http::StatusCode;
use perch_auth::Role;
use perch_ui as ui;
use perch_ui::Template;
use perch_ui::alerts::{self as pages, tabs};
use serde_json::Value;

use super::{all, is_role, parse_matcher, unix_of};
use crate::features::alerts::SilenceIn;
use crate::request::{
    Answer, ApiError, Ctx, Form, csrf, done_notice, html, nav, notice_for, see_other, when_in, zone,
};

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
        crate::features::alerts::make_silence(&ctx, input)
            .await
            .map(|_| ())
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
    let result = crate::features::alerts::expire_silence(&ctx, &id).await;
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
