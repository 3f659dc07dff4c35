//! `/v1/alerts`, `/v1/rules`, `/v1/silences`, `/v1/receivers` and `/v1/routing`.

use std::collections::BTreeMap;

use http::StatusCode;
use perch_auth::AuditKind;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json as j};

use super::{SilenceIn, alerts, audit};
use crate::alerting::{KINDS, Receiver, Routing, RuleSetting};
use crate::request::{Answer, ApiError, Ctx, json, json_body, no_content};

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
    let id = ctx.param().to_owned();
    ctx.app.alerting.set_rule(&id, setting.clone()).await?;
    audit(
        &ctx,
        AuditKind::AlertRuleChanged,
        &format!(
            "{id}: {}",
            serde_json::to_string(&setting).unwrap_or_default()
        ),
    )
    .await?;
    Ok(no_content())
}

pub async fn list_silences(ctx: Ctx) -> Answer {
    let silences = ctx.app.alerting.silences().await?;
    Ok(json(StatusCode::OK, &j!({ "silences": silences })))
}

pub async fn create_silence(ctx: Ctx) -> Answer {
    let input: SilenceIn = json_body(ctx.req.body())?;
    let by = ctx.principal()?.actor();
    let (silence, described) = input.to_postable(&by)?;
    let id = ctx.app.alerting.create_silence(silence).await?;
    audit(
        &ctx,
        AuditKind::SilenceCreated,
        &format!("{id}: {described}"),
    )
    .await?;
    Ok(json(StatusCode::CREATED, &j!({ "id": id })))
}

pub async fn expire_silence(ctx: Ctx) -> Answer {
    let id = ctx.param().to_owned();
    ctx.app.alerting.expire_silence(&id).await?;
    audit(&ctx, AuditKind::SilenceExpired, &id).await?;
    Ok(no_content())
}

#[derive(Serialize)]
struct KindOut {
    kind: &'static str,
    title: &'static str,
    fields: Vec<Value>,
}

/// The receiver kinds and their fields, for forms and API clients.
pub fn kinds() -> Vec<Value> {
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

#[derive(Deserialize)]
pub struct ReceiverIn {
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

/// Creates a contact point (`new`), or replaces the one named in the path; an empty secret
/// in an edit keeps the one stored.
pub async fn save_receiver(ctx: &Ctx, input: ReceiverIn, new: bool) -> Result<(), ApiError> {
    let alerting = &ctx.app.alerting;
    let previous = if new {
        None
    } else {
        Some(
            alerting
                .receiver(ctx.param())
                .await
                .ok_or(ApiError::NotFound("contact point"))?,
        )
    };
    if let Some(p) = &previous
        && p.name != input.name
    {
        return Err(ApiError::BadInput(
            "name: a contact point cannot be renamed; create a new one".into(),
        ));
    }
    let receiver = Receiver::build(&input.name, &input.kind, &input.fields, previous.as_ref())
        .map_err(ApiError::BadInput)?;
    let name = receiver.name.clone();
    alerting
        .change_contacts(|c| {
            match c.receivers.iter_mut().find(|r| r.name == receiver.name) {
                Some(_) if new => {
                    return Err(crate::alerting::AlertingError::BadInput(format!(
                        "name: a contact point {:?} exists already",
                        receiver.name
                    )));
                }
                Some(r) => *r = receiver,
                None => c.receivers.push(receiver),
            }
            Ok(())
        })
        .await?;
    audit(
        ctx,
        AuditKind::ContactPointSaved,
        &format!("{name} ({})", input.kind),
    )
    .await
}

pub async fn create_receiver(ctx: Ctx) -> Answer {
    let input: ReceiverIn = json_body(ctx.req.body())?;
    save_receiver(&ctx, input, true).await?;
    Ok(json(StatusCode::CREATED, &j!({})))
}

pub async fn update_receiver(ctx: Ctx) -> Answer {
    let input: ReceiverIn = json_body(ctx.req.body())?;
    save_receiver(&ctx, input, false).await?;
    Ok(no_content())
}

/// Deletes a contact point no route uses.
pub async fn delete_receiver_named(ctx: &Ctx, name: &str) -> Result<(), ApiError> {
    ctx.app
        .alerting
        .change_contacts(|c| {
            let before = c.receivers.len();
            c.receivers.retain(|r| r.name != name);
            if c.receivers.len() == before {
                return Err(crate::alerting::AlertingError::NotFound(format!(
                    "no contact point {name:?}"
                )));
            }
            if c.routing.default_receiver.as_deref() == Some(name)
                || c.routing.routes.iter().any(|r| r.receiver == name)
            {
                return Err(crate::alerting::AlertingError::BadInput(format!(
                    "{name:?} is in the routing; route its alerts elsewhere first"
                )));
            }
            Ok(())
        })
        .await?;
    audit(ctx, AuditKind::ContactPointDeleted, name).await
}

pub async fn delete_receiver(ctx: Ctx) -> Answer {
    let name = ctx.param().to_owned();
    delete_receiver_named(&ctx, &name).await?;
    Ok(no_content())
}

pub async fn test_receiver(ctx: Ctx) -> Answer {
    let name = ctx.param().to_owned();
    let by = ctx.principal()?.actor();
    ctx.app.alerting.test_receiver(&name, &by).await?;
    audit(&ctx, AuditKind::ContactPointTested, &name).await?;
    Ok(json(StatusCode::ACCEPTED, &j!({"sent_to": name})))
}

pub async fn set_routing(ctx: Ctx) -> Answer {
    let routing: Routing = json_body(ctx.req.body())?;
    let described = serde_json::to_string(&routing).unwrap_or_default();
    ctx.app
        .alerting
        .change_contacts(move |c| {
            c.routing = routing;
            Ok(())
        })
        .await?;
    audit(&ctx, AuditKind::RoutingChanged, &described).await?;
    Ok(no_content())
}
