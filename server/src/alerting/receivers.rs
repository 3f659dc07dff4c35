//! Contact points and routing, as an Admin sets them, and the Alertmanager configuration
//! made from them. Secrets (SMTP passwords, webhook tokens, routing keys) are write-only:
//! kept in a 0600 file with the rest, never in an answer or a log line.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One field of a receiver kind.
pub struct Field {
    pub name: &'static str,
    pub secret: bool,
    pub required: bool,
    pub about: &'static str,
}

const fn f(name: &'static str, secret: bool, required: bool, about: &'static str) -> Field {
    Field {
        name,
        secret,
        required,
        about,
    }
}

/// Every receiver kind Perch offers: Alertmanager's own integrations.
pub const KINDS: &[(&str, &str, &[Field])] = &[
    (
        "webhook",
        "Webhook",
        &[
            f("url", false, true, "URL that receives Alertmanager's JSON"),
            f("token", true, false, "Bearer token sent with each request"),
        ],
    ),
    (
        "email",
        "Email",
        &[
            f("to", false, true, "Recipients, comma-separated"),
            f("from", false, true, "Sender address"),
            f("smarthost", false, true, "SMTP server, host:port"),
            f("auth_username", false, false, "SMTP user name"),
            f("auth_password", true, false, "SMTP password"),
            f(
                "require_tls",
                false,
                false,
                "true (STARTTLS, the default) or false",
            ),
        ],
    ),
    (
        "slack",
        "Slack",
        &[
            f("api_url", true, true, "Incoming-webhook URL"),
            f("channel", false, false, "Channel, such as #alerts"),
        ],
    ),
    (
        "pagerduty",
        "PagerDuty (Events v2)",
        &[f("routing_key", true, true, "Integration (routing) key")],
    ),
    (
        "opsgenie",
        "Opsgenie",
        &[
            f("api_key", true, true, "API key"),
            f(
                "api_url",
                false,
                false,
                "API URL (EU accounts: https://api.eu.opsgenie.com/)",
            ),
        ],
    ),
    (
        "telegram",
        "Telegram",
        &[
            f("bot_token", true, true, "Bot token"),
            f("chat_id", false, true, "Chat id (a number)"),
        ],
    ),
    (
        "discord",
        "Discord",
        &[f("webhook_url", true, true, "Webhook URL")],
    ),
];

fn kind(name: &str) -> Option<&'static [Field]> {
    KINDS
        .iter()
        .find(|(k, _, _)| *k == name)
        .map(|(_, _, f)| *f)
}

/// A contact point as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Receiver {
    pub name: String,
    pub kind: String,
    /// Fields that are not secret.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Secret fields: never shown again.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

/// A contact point as shown: which secrets are set, not what they are.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiverView {
    pub name: String,
    pub kind: String,
    pub settings: BTreeMap<String, String>,
    pub secrets_set: Vec<String>,
}

impl Receiver {
    pub fn view(&self) -> ReceiverView {
        ReceiverView {
            name: self.name.clone(),
            kind: self.kind.clone(),
            settings: self.settings.clone(),
            secrets_set: self.secrets.keys().cloned().collect(),
        }
    }

    /// Checks a receiver as submitted (`fields`, secret or not, by name) and builds it;
    /// `previous` keeps secrets left empty in an edit.
    pub fn build(
        name: &str,
        kind_name: &str,
        fields: &BTreeMap<String, String>,
        previous: Option<&Receiver>,
    ) -> Result<Self, String> {
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            || name.starts_with("perch-")
        {
            return Err(
                "name: 1 to 64 letters, digits, '-', '_' or '.', not starting with perch-".into(),
            );
        }
        let spec = kind(kind_name).ok_or_else(|| {
            format!(
                "kind: {kind_name:?} is not one of {}",
                KINDS
                    .iter()
                    .map(|(k, _, _)| *k)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        for key in fields.keys() {
            if !spec.iter().any(|f| f.name == key) {
                return Err(format!("{kind_name} has no field {key:?}"));
            }
        }
        let mut out = Self {
            name: name.to_owned(),
            kind: kind_name.to_owned(),
            settings: BTreeMap::new(),
            secrets: BTreeMap::new(),
        };
        for field in spec {
            let given = fields
                .get(field.name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty());
            let value = match (given, previous.filter(|p| p.kind == kind_name)) {
                (Some(v), _) => Some(v.to_owned()),
                (None, Some(p)) if field.secret => p.secrets.get(field.name).cloned(),
                _ => None,
            };
            let Some(value) = value else {
                if field.required {
                    return Err(format!("{}: required ({})", field.name, field.about));
                }
                continue;
            };
            if value.len() > 2048 || value.chars().any(char::is_control) {
                return Err(format!("{}: at most 2048 printable characters", field.name));
            }
            check_field(field.name, &value)?;
            if field.secret {
                out.secrets.insert(field.name.to_owned(), value);
            } else {
                out.settings.insert(field.name.to_owned(), value);
            }
        }
        Ok(out)
    }

    fn get(&self, field: &str) -> Option<&str> {
        self.settings
            .get(field)
            .or_else(|| self.secrets.get(field))
            .map(String::as_str)
    }

    /// Alertmanager's `receivers` entry.
    fn to_config(&self) -> Value {
        let mut c = serde_json::Map::new();
        c.insert("send_resolved".into(), json!(true));
        match self.kind.as_str() {
            "webhook" => {
                c.insert("url".into(), json!(self.get("url")));
                if let Some(token) = self.get("token") {
                    c.insert(
                        "http_config".into(),
                        json!({"authorization": {"type": "Bearer", "credentials": token}}),
                    );
                }
            }
            "email" => {
                for f in ["to", "from", "smarthost", "auth_username", "auth_password"] {
                    if let Some(v) = self.get(f) {
                        c.insert(f.into(), json!(v));
                    }
                }
                c.insert(
                    "require_tls".into(),
                    json!(self.get("require_tls") != Some("false")),
                );
            }
            "telegram" => {
                c.insert("bot_token".into(), json!(self.get("bot_token")));
                let chat: i64 = self
                    .get("chat_id")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                c.insert("chat_id".into(), json!(chat));
            }
            _ => {
                for (k, v) in self.settings.iter().chain(self.secrets.iter()) {
                    c.insert(k.clone(), json!(v));
                }
            }
        }
        json!({"name": self.name, format!("{}_configs", self.kind): [c]})
    }
}

fn check_field(name: &str, value: &str) -> Result<(), String> {
    let url = |v: &str| {
        url::Url::parse(v)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .map(|_| ())
            .ok_or_else(|| format!("{name}: {v:?} is not an http(s) URL"))
    };
    match name {
        "url" | "api_url" | "webhook_url" => url(value),
        "smarthost" => value
            .rsplit_once(':')
            .filter(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
            .map(|_| ())
            .ok_or_else(|| format!("smarthost: {value:?} is not host:port")),
        "to" | "from" => value
            .split(',')
            .all(|a| a.trim().contains('@'))
            .then_some(())
            .ok_or_else(|| format!("{name}: {value:?} is not an email address")),
        "require_tls" => matches!(value, "true" | "false")
            .then_some(())
            .ok_or_else(|| "require_tls: true or false".to_owned()),
        "chat_id" => value
            .parse::<i64>()
            .map(|_| ())
            .map_err(|_| format!("chat_id: {value:?} is not a number")),
        _ => Ok(()),
    }
}

/// Where alerts go: a default contact point, then routes by severity and node label.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Routing {
    /// The contact point of alerts that no route takes (none: they are only shown).
    pub default_receiver: Option<String>,
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// Alerts whose labels match go to `receiver` (and no further).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Route {
    pub receiver: String,
    /// `critical`, `warning` or `info`; none: any.
    #[serde(default)]
    pub severity: Option<String>,
    /// A label and its value (such as `environment`, `prod`); none: any.
    #[serde(default)]
    pub label: Option<(String, String)>,
}

/// Everything an Admin sets, as stored in `<data>/alerting/receivers.json` (0600).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ContactPoints {
    #[serde(default)]
    pub receivers: Vec<Receiver>,
    #[serde(default)]
    pub routing: Routing,
}

/// The receiver every alert reaches when nothing else is set: it notifies no one.
pub const NOBODY: &str = "perch-nobody";
/// The label a test notification carries, naming its contact point.
pub const TEST_LABEL: &str = "perch_test_receiver";

/// Notification timing (shorter in tests).
#[derive(Debug, Clone)]
pub struct Timing {
    pub group_wait: String,
    pub group_interval: String,
    pub repeat_interval: String,
}

fn matcher(name: &str, value: &str) -> String {
    format!(
        "{name}={}",
        serde_json::to_string(value).unwrap_or_default()
    )
}

impl ContactPoints {
    /// Checks the routing against the receivers.
    pub fn check(&self) -> Result<(), String> {
        let known = |name: &str| self.receivers.iter().any(|r| r.name == name);
        if let Some(d) = &self.routing.default_receiver
            && !known(d)
        {
            return Err(format!("the default contact point {d:?} does not exist"));
        }
        for r in &self.routing.routes {
            if !known(&r.receiver) {
                return Err(format!(
                    "a route names {:?}, which does not exist",
                    r.receiver
                ));
            }
            if let Some(s) = &r.severity
                && !["critical", "warning", "info"].contains(&s.as_str())
            {
                return Err(format!("severity {s:?}: use critical, warning or info"));
            }
            if let Some((name, value)) = &r.label
                && (!perch_remote_write::is_label_name(name)
                    || value.is_empty()
                    || value.chars().any(char::is_control))
            {
                return Err(format!(
                    "route label {name:?}={value:?} is not a label and value"
                ));
            }
        }
        if self.routing.routes.len() > 100 || self.receivers.len() > 100 {
            return Err("at most 100 contact points and 100 routes".into());
        }
        Ok(())
    }

    /// Alertmanager's configuration (JSON, which Alertmanager reads as YAML).
    pub fn alertmanager_config(&self, timing: &Timing) -> String {
        let mut receivers = vec![json!({"name": NOBODY})];
        receivers.extend(self.receivers.iter().map(Receiver::to_config));
        let mut routes: Vec<Value> = self
            .receivers
            .iter()
            .map(|r| {
                json!({"receiver": r.name, "matchers": [matcher(TEST_LABEL, &r.name)],
                    "group_by": ["..."], "group_wait": "0s"})
            })
            .collect();
        for r in &self.routing.routes {
            let mut m = vec![format!("{TEST_LABEL}=\"\"")];
            if let Some(s) = &r.severity {
                m.push(matcher("severity", s));
            }
            if let Some((name, value)) = &r.label {
                m.push(matcher(name, value));
            }
            routes.push(json!({"receiver": r.receiver, "matchers": m}));
        }
        let config = json!({
            "route": {
                "receiver": self.routing.default_receiver.as_deref().unwrap_or(NOBODY),
                "group_by": ["alertname", "node_name"],
                "group_wait": timing.group_wait,
                "group_interval": timing.group_interval,
                "repeat_interval": timing.repeat_interval,
                "routes": routes,
            },
            "inhibit_rules": [{
                "source_matchers": ["alertname=\"PerchNodeDown\""],
                "target_matchers": ["alertname=~\"PerchServiceDown|PerchClockSkew\""],
                "equal": ["node_name"],
            }],
            "receivers": receivers,
        });
        format!(
            "# Written by Perch from its Contact points page; edits here are overwritten.\n{}\n",
            serde_json::to_string_pretty(&config).unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn secrets_are_kept_across_edits_and_never_shown() {
        let r = Receiver::build(
            "ops",
            "webhook",
            &fields(&[("url", "https://hooks.example/x"), ("token", "s3cret")]),
            None,
        )
        .unwrap();
        assert!(!serde_json::to_string(&r.view()).unwrap().contains("s3cret"));
        let edited = Receiver::build(
            "ops",
            "webhook",
            &fields(&[("url", "https://h.example/y")]),
            Some(&r),
        )
        .unwrap();
        assert_eq!(
            edited.secrets.get("token").map(String::as_str),
            Some("s3cret")
        );
        let config = ContactPoints {
            receivers: vec![edited],
            routing: Routing {
                default_receiver: Some("ops".into()),
                routes: vec![],
            },
        };
        config.check().unwrap();
        let text = config.alertmanager_config(&Timing {
            group_wait: "1s".into(),
            group_interval: "1s".into(),
            repeat_interval: "1h".into(),
        });
        assert!(text.contains("\"credentials\": \"s3cret\""), "{text}");
    }

    #[test]
    fn bad_input_names_the_field() {
        let e =
            Receiver::build("ops", "webhook", &fields(&[("url", "ftp://x")]), None).unwrap_err();
        assert!(e.starts_with("url:"), "{e}");
        let e = Receiver::build("ops", "email", &fields(&[("to", "a@b")]), None).unwrap_err();
        assert!(e.starts_with("from:"), "{e}");
        let e = Receiver::build("perch-x", "webhook", &BTreeMap::new(), None).unwrap_err();
        assert!(e.starts_with("name:"), "{e}");
        let e = Receiver::build("ops", "fax", &BTreeMap::new(), None).unwrap_err();
        assert!(e.starts_with("kind:"), "{e}");
        let cp = ContactPoints {
            receivers: vec![],
            routing: Routing {
                default_receiver: Some("ghost".into()),
                routes: vec![],
            },
        };
        assert!(cp.check().unwrap_err().contains("ghost"));
    }
}
