//! `/v1/alerts`, `/v1/rules`, `/v1/silences`, `/v1/receivers` and `/v1/routing`.

use http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json as j};

use super::{ReceiverIn, SilenceIn, alerts};
use crate::alerting::{KINDS, Routing, RuleSetting};
use crate::request::{Answer, Ctx, json, json_body, no_content};

pub async fn list_alerts(ctx: Ctx) -> Answer {
    let alerts = alerts(&ctx).await?;
    Ok(json(StatusCode::OK, &j!({ "alerts": alerts })))
}

/// The built-in rules with their settings, vmalert's groups with each rule's state, and the
/// custom files with their errors.
pub async fn list_rules(ctx: Ctx) -> Answer {
    let alerting = &ctx.app.alerting;
    let templates: Vec<Value> = alerting
        .rule_settings()
        .await
        .into_iter()
        .map(|(t, s)| j!({"id": t.id, "title": t.title, "about": t.about, "alerts": t.alerts(), "params": t.params, "setting": s}))
        .collect();
    let groups = match alerting.vmalert_rules().await {
        Ok(v) => v["data"]["groups"].clone(),
        Err(e) => j!({"error": e.to_string()}),
    };
    Ok(json(
        StatusCode::OK,
        &j!({"templates": templates, "groups": groups, "custom_files": alerting.custom_files().await}),
    ))
}

/// Sets one built-in rule: on or off, its parameters, its overrides per node label.
pub async fn set_rule(ctx: Ctx) -> Answer {
    let setting: RuleSetting = json_body(ctx.req.body())?;
    super::tune_rule(&ctx, ctx.param(), setting).await?;
    Ok(no_content())
}

pub async fn list_silences(ctx: Ctx) -> Answer {
    let silences = ctx.app.alerting.silences().await?;
    Ok(json(StatusCode::OK, &j!({ "silences": silences })))
}

pub async fn create_silence(ctx: Ctx) -> Answer {
    let input: SilenceIn = json_body(ctx.req.body())?;
    let id = super::make_silence(&ctx, input).await?;
    Ok(json(StatusCode::CREATED, &j!({ "id": id })))
}

pub async fn expire_silence(ctx: Ctx) -> Answer {
    super::expire_silence(&ctx, ctx.param()).await?;
    Ok(no_content())
}

#[derive(Serialize)]
struct KindOut {
    kind: &'static str,
    title: &'static str,
    fields: Vec<Value>,
}

/// The receiver kinds and their fields, for API clients.
fn kinds() -> Vec<Value> {
    KINDS
        .iter()
        .map(|(kind, title, fields)| {
            j!(KindOut {
                kind,
                title,
                fields: fields
                    .iter()
                    .map(|f| j!({"name": f.name, "secret": f.secret, "required": f.required, "about": f.about}))
                    .collect(),
            })
        })
        .collect()
}

pub async fn list_receivers(ctx: Ctx) -> Answer {
    let (receivers, routing) = ctx.app.alerting.contact_points().await;
    Ok(json(
        StatusCode::OK,
        &j!({"kinds": kinds(), "receivers": receivers, "routing": routing}),
    ))
}

pub async fn create_receiver(ctx: Ctx) -> Answer {
    let input: ReceiverIn = json_body(ctx.req.body())?;
    super::save_receiver(&ctx, input, true).await?;
    Ok(json(StatusCode::CREATED, &j!({})))
}

pub async fn update_receiver(ctx: Ctx) -> Answer {
    let input: ReceiverIn = json_body(ctx.req.body())?;
    super::save_receiver(&ctx, input, false).await?;
    Ok(no_content())
}

pub async fn delete_receiver(ctx: Ctx) -> Answer {
    super::delete_receiver(&ctx, ctx.param()).await?;
    Ok(no_content())
}

pub async fn test_receiver(ctx: Ctx) -> Answer {
    super::send_test(&ctx, ctx.param()).await?;
    Ok(json(StatusCode::ACCEPTED, &j!({"sent_to": ctx.param()})))
}

pub async fn set_routing(ctx: Ctx) -> Answer {
    let routing: Routing = json_body(ctx.req.body())?;
    super::set_routing(&ctx, routing).await?;
    Ok(no_content())
}
