//! The Alerts, Rules, Silences and Contact points pages: forms over the same changes as the
//! JSON API (`super::api`), each shown again with the reason when it is refused.

mod alerts;
mod contacts;
mod rules;
mod silences;

pub use alerts::{alerts_page, silence_alert};
pub use contacts::{
    contact_create, contact_delete, contact_points_page, contact_test, contact_update, routing_save,
};
pub use rules::{rule_save, rules_page};
pub use silences::{silence_create, silence_expire, silences_page};

use perch_auth::Role;
use serde_json::Value;

use super::MatcherIn;
use crate::request::{ApiError, Ctx};

pub(super) fn is_role(ctx: &Ctx, role: Role) -> bool {
    ctx.who.as_ref().is_some_and(|p| p.role >= role)
}

/// Every value of a repeated form field.
pub(super) fn all(body: &[u8], name: &str) -> Vec<String> {
    form_urlencoded::parse(body)
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// `name=value`, `name!=value`, `name=~re`, `name!~re`.
pub(super) fn parse_matcher(line: &str) -> Result<MatcherIn, ApiError> {
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

/// An RFC 3339 time in vmalert's or Alertmanager's JSON, as Unix seconds (0 when absent).
pub(super) fn unix_of(v: &Value) -> i64 {
    v.as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map_or(0, |t| t.as_second())
}
