//! Alerting in the API and the pages: the alerts vmalert holds (with Alertmanager's word on
//! which are silenced), the rules and their settings, silences, and contact points with
//! their routing. Viewers read; Editors silence and tune rules; Admins manage contact
//! points. Every change goes into the audit trail.

pub mod api;
pub mod pages;

use std::collections::BTreeMap;

use perch_auth::AuditKind;
use serde::Serialize;
use serde_json::Value;

use crate::alerting::{AlertingError, Receiver, Routing, RuleSetting, duration_seconds};
use crate::request::{ApiError, Ctx};

/// One alert, firing or pending.
#[derive(Debug, Clone, Serialize)]
pub struct AlertView {
    pub name: String,
    /// `firing` or `pending`.
    pub state: String,
    /// When its condition became true (RFC 3339), and as Unix seconds.
    pub since: String,
    pub since_unix: i64,
    pub value: String,
    pub labels: BTreeMap<String, String>,
    pub summary: String,
    /// The rule's expression.
    pub expression: String,
    pub node_name: Option<String>,
    /// Silences that hold it back (Alertmanager's ids).
    pub silenced_by: Vec<String>,
}

/// vmalert's alerts, with Alertmanager's silences (when it answers), firing first.
pub async fn alerts(ctx: &Ctx) -> Result<Vec<AlertView>, ApiError> {
    let alerting = &ctx.app.alerting;
    let alerts = alerting.vmalert_alerts().await?;
    let held = alerting.alertmanager_alerts().await.unwrap_or_default();
    let mut out: Vec<AlertView> = alerts
        .into_iter()
        .map(|a| {
            // Alertmanager's copy of an alert carries its labels (and maybe more).
            let silenced_by = held
                .iter()
                .find(|h| a.labels.iter().all(|(k, v)| h.labels.get(k) == Some(v)))
                .map(|h| h.status.silenced_by.clone())
                .unwrap_or_default();
            AlertView {
                since_unix: a
                    .active_at
                    .parse::<jiff::Timestamp>()
                    .map_or(0, |t| t.as_second()),
                summary: a.annotations.get("summary").cloned().unwrap_or_default(),
                node_name: a.labels.get("node_name").cloned(),
                name: a.name,
                state: a.state,
                since: a.active_at,
                value: a.value,
                expression: a.expression,
                labels: a.labels,
                silenced_by,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (a.state != "firing", &a.name, a.since_unix).cmp(&(
            b.state != "firing",
            &b.name,
            b.since_unix,
        ))
    });
    Ok(out)
}

/// Records an alerting change in the audit trail.
async fn audit(ctx: &Ctx, kind: AuditKind, subject: &str) -> Result<(), ApiError> {
    let who = ctx.principal()?.actor();
    ctx.app
        .auth
        .audit_event(kind, &who, &ctx.client().to_string(), subject)
        .await?;
    Ok(())
}

// The changes the API and the pages make alike, each followed by its audit record.

/// Turns a built-in rule on or off and tunes it.
pub async fn tune_rule(ctx: &Ctx, id: &str, setting: RuleSetting) -> Result<(), ApiError> {
    let described = serde_json::to_string(&setting).unwrap_or_default();
    ctx.app.alerting.set_rule(id, setting).await?;
    audit(
        ctx,
        AuditKind::AlertRuleChanged,
        &format!("{id}: {described}"),
    )
    .await
}

/// Makes a silence (who made it is the caller, not a field); its id.
pub async fn make_silence(ctx: &Ctx, input: SilenceIn) -> Result<String, ApiError> {
    let by = ctx.principal()?.actor();
    let (silence, described) = input.to_postable(&by)?;
    let id = ctx.app.alerting.create_silence(silence).await?;
    audit(
        ctx,
        AuditKind::SilenceCreated,
        &format!("{id}: {described}"),
    )
    .await?;
    Ok(id)
}

pub async fn expire_silence(ctx: &Ctx, id: &str) -> Result<(), ApiError> {
    ctx.app.alerting.expire_silence(id).await?;
    audit(ctx, AuditKind::SilenceExpired, id).await
}

/// A contact point as submitted: its fields by name, secret or not.
#[derive(Debug, serde::Deserialize)]
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
                    return Err(AlertingError::BadInput(format!(
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

/// Deletes a contact point no route uses.
pub async fn delete_receiver(ctx: &Ctx, name: &str) -> Result<(), ApiError> {
    ctx.app
        .alerting
        .change_contacts(|c| {
            let before = c.receivers.len();
            c.receivers.retain(|r| r.name != name);
            if c.receivers.len() == before {
                return Err(AlertingError::NotFound(format!(
                    "no contact point {name:?}"
                )));
            }
            if c.routing.default_receiver.as_deref() == Some(name)
                || c.routing.routes.iter().any(|r| r.receiver == name)
            {
                return Err(AlertingError::BadInput(format!(
                    "{name:?} is in the routing; route its alerts elsewhere first"
                )));
            }
            Ok(())
        })
        .await?;
    audit(ctx, AuditKind::ContactPointDeleted, name).await
}

/// Sends a test notification to one contact point.
pub async fn send_test(ctx: &Ctx, name: &str) -> Result<(), ApiError> {
    let by = ctx.principal()?.actor();
    ctx.app.alerting.test_receiver(name, &by).await?;
    audit(ctx, AuditKind::ContactPointTested, name).await
}

pub async fn set_routing(ctx: &Ctx, routing: Routing) -> Result<(), ApiError> {
    let described = serde_json::to_string(&routing).unwrap_or_default();
    ctx.app
        .alerting
        .change_contacts(move |c| {
            c.routing = routing;
            Ok(())
        })
        .await?;
    audit(ctx, AuditKind::RoutingChanged, &described).await
}

/// A silence as asked for: matchers, how long (or until when), and why.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SilenceIn {
    pub matchers: Vec<MatcherIn>,
    /// `1h`, `4h`, `1d`, ...
    #[serde(default)]
    pub duration: Option<String>,
    /// Or an end time, RFC 3339.
    #[serde(default)]
    pub ends_at: Option<String>,
    pub comment: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct MatcherIn {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub is_regex: bool,
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl SilenceIn {
    /// Alertmanager's `postableSilence`, made by `by`; the error names the field.
    pub fn to_postable(&self, by: &str) -> Result<(Value, String), AlertingError> {
        let bad = |s: String| AlertingError::BadInput(s);
        if self.matchers.is_empty() || self.matchers.len() > 20 {
            return Err(bad("matchers: give 1 to 20 label matchers".into()));
        }
        let mut described = Vec::new();
        for m in &self.matchers {
            if !perch_remote_write::is_label_name(&m.name) || m.name.len() > 100 {
                return Err(bad(format!("matchers: {:?} is not a label name", m.name)));
            }
            if m.value.len() > 1024 || m.value.chars().any(char::is_control) {
                return Err(bad(format!(
                    "matchers: the value for {} is too long or holds control characters",
                    m.name
                )));
            }
            let op = match (m.is_equal, m.is_regex) {
                (true, false) => "=",
                (false, false) => "!=",
                (true, true) => "=~",
                (false, true) => "!~",
            };
            described.push(format!("{}{op}{:?}", m.name, m.value));
        }
        let comment = self.comment.trim();
        if comment.is_empty() || comment.len() > 1000 {
            return Err(bad("comment: say why (1 to 1000 characters)".into()));
        }
        let now = jiff::Timestamp::now();
        let ends = match (&self.duration, &self.ends_at) {
            (Some(d), None) => {
                let secs = duration_seconds(d)
                    .filter(|s| (60..=366 * 86400).contains(s))
                    .ok_or_else(|| {
                        bad(format!(
                            "duration: {d:?} is not from 1m to 366d (such as 1h, 4h, 1d)"
                        ))
                    })?;
                now + jiff::SignedDuration::from_secs(secs as i64)
            }
            (None, Some(t)) => {
                let t: jiff::Timestamp = t.parse().map_err(|_| {
                    bad(format!(
                        "ends_at: {t:?} is not an RFC 3339 time such as 2026-12-31T18:00:00Z"
                    ))
                })?;
                if t <= now {
                    return Err(bad("ends_at: the end is in the past".into()));
                }
                t
            }
            _ => return Err(bad("give either duration or ends_at".into())),
        };
        let silence = serde_json::json!({
            "matchers": self.matchers.iter().map(|m| serde_json::json!({
                "name": m.name, "value": m.value, "isRegex": m.is_regex, "isEqual": m.is_equal,
            })).collect::<Vec<_>>(),
            "startsAt": now.to_string(),
            "endsAt": ends.to_string(),
            "createdBy": by,
            "comment": comment,
        });
        Ok((silence, format!("{} until {ends}", described.join(","))))
    }
}
