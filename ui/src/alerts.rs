//! The alerting pages: Alerts, Rules, Silences, Contact points.

use askama::Template;

use crate::{Nav, Notice};

/// The tabs of the alerting pages.
#[derive(Debug, Clone)]
pub struct Tab {
    pub label: &'static str,
    pub href: &'static str,
    pub current: bool,
}

/// The tabs, `current` marked; Contact points only for an Admin.
pub fn tabs(current: &str, admin: bool) -> Vec<Tab> {
    [
        ("Alerts", "/alerts"),
        ("Rules", "/alerts/rules"),
        ("Silences", "/alerts/silences"),
        ("Contact points", "/alerts/contact-points"),
    ]
    .into_iter()
    .filter(|(_, href)| admin || *href != "/alerts/contact-points")
    .map(|(label, href)| Tab {
        label,
        href,
        current: href == current,
    })
    .collect()
}

#[derive(Debug, Clone)]
pub struct AlertRow {
    pub name: String,
    /// `firing` or `pending`.
    pub state: String,
    pub since: String,
    pub value: String,
    pub summary: String,
    pub severity: String,
    /// `k="v"` pairs, for display.
    pub labels: Vec<String>,
    /// The node's page, when the alert names an enrolled node.
    pub node: Option<(String, String)>,
    /// Explore with the rule's expression over the alert's time.
    pub explore: String,
    /// `name=value` for each label: the one-click silence's matchers.
    pub matchers: Vec<String>,
    /// The Silences page with these matchers filled in (to silence until a time).
    pub silence_href: String,
    pub silenced: bool,
}

#[derive(Debug, Template)]
#[template(path = "alerts.html")]
pub struct AlertsPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub notice: Notice,
    pub tabs: Vec<Tab>,
    pub can_silence: bool,
    pub alerts: Vec<AlertRow>,
    pub firing: usize,
    pub pending: usize,
    /// Why the alerts cannot be read now (vmalert not ready).
    pub unavailable: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ParamRow {
    pub name: String,
    pub value: String,
    pub default: String,
    pub about: String,
}

#[derive(Debug, Clone)]
pub struct RuleRow {
    pub id: String,
    pub title: String,
    pub about: String,
    pub enabled: bool,
    pub params: Vec<ParamRow>,
    /// One line per override: `label=value param=v ...` or `label=value off`.
    pub overrides: String,
    /// `inactive`, `pending` or `firing` (as vmalert last saw it), or `off`.
    pub state: String,
    pub last_evaluation: String,
    pub last_error: String,
}

#[derive(Debug, Clone)]
pub struct CustomRow {
    pub name: String,
    pub error: Option<String>,
    /// Its rules as vmalert holds them: (name, state, last error).
    pub rules: Vec<(String, String, String)>,
}

#[derive(Debug, Template)]
#[template(path = "alert_rules.html")]
pub struct RulesPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub notice: Notice,
    pub tabs: Vec<Tab>,
    pub can_edit: bool,
    pub rules: Vec<RuleRow>,
    pub custom: Vec<CustomRow>,
    pub custom_dir: String,
    pub unavailable: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SilenceRow {
    pub id: String,
    pub matchers: String,
    /// `active`, `pending` or `expired`.
    pub state: String,
    pub starts: String,
    pub ends: String,
    pub by: String,
    pub comment: String,
}

#[derive(Debug, Template)]
#[template(path = "silences.html")]
pub struct SilencesPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub notice: Notice,
    pub tabs: Vec<Tab>,
    pub can_edit: bool,
    pub silences: Vec<SilenceRow>,
    /// The form, as sent when it was refused (or prefilled from an alert).
    pub form_matchers: String,
    pub form_comment: String,
    pub unavailable: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FieldRow {
    pub name: String,
    pub about: String,
    pub secret: bool,
    pub required: bool,
    /// The current value (never a secret's).
    pub value: String,
    /// A secret that is set (shown as set, never its value).
    pub set: bool,
}

#[derive(Debug, Clone)]
pub struct KindForm {
    pub kind: String,
    pub title: String,
    pub fields: Vec<FieldRow>,
}

#[derive(Debug, Clone)]
pub struct ReceiverRow {
    pub name: String,
    pub kind: String,
    pub title: String,
    /// `field: value` of the settings, and the names of the secrets set.
    pub summary: String,
    pub fields: Vec<FieldRow>,
}

#[derive(Debug, Template)]
#[template(path = "contact_points.html")]
pub struct ContactPointsPage {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub notice: Notice,
    pub tabs: Vec<Tab>,
    pub receivers: Vec<ReceiverRow>,
    pub kinds: Vec<KindForm>,
    pub default_receiver: String,
    /// One line per route: `severity=critical -> name`, `environment=prod -> name`.
    pub routes: String,
    pub external: Option<String>,
}
