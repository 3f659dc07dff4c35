//! What every page shares: the navigation bar, the message page, notices above forms, and
//! times as tables show them.

use http::{Response, StatusCode};
use perch_auth::{Gate, Principal, Role, Via};
use perch_ui as ui;
use perch_ui::Template;
use perch_upstream::Body;

use super::{ApiError, Ctx, html, query};

/// The navigation bar for a signed-in browser session (none for tokens or nobody).
pub fn nav(who: Option<&Principal>) -> Option<ui::Nav> {
    let p = who?;
    let Via::Session { csrf, .. } = &p.via else {
        return None;
    };
    Some(ui::Nav {
        name: p.name.clone(),
        role: p.role.to_string(),
        is_admin: p.role == Role::Admin,
        is_editor: p.role >= Role::Editor,
        csrf: csrf.clone(),
        locked: p.must_change_password || p.gate != Gate::Open,
        firing: crate::alerting::firing_now(),
    })
}

/// The session's CSRF token, for the forms of a page.
pub fn csrf(who: Option<&Principal>) -> String {
    nav(who).map(|n| n.csrf).unwrap_or_default()
}

/// A page with a title and one message, and a link back to the start page.
pub fn message(
    who: Option<&Principal>,
    status: StatusCode,
    title: &str,
    message: &str,
) -> Result<Response<Body>, ApiError> {
    html(
        status,
        ui::MessagePage {
            nav: nav(who),
            title: title.to_owned(),
            message: message.to_owned(),
            link: "/".into(),
            link_text: "Back to the start page".into(),
        }
        .render(),
    )
}

/// The reason (and advice) above a form that was refused.
pub fn notice_for(e: &ApiError) -> ui::Notice {
    ui::Notice {
        error: Some(sentence(&e.to_string())),
        hint: e.suggestion().map(sentence),
        success: None,
    }
}

/// A message as pages show every one: a sentence, capital first, full stop last. (The JSON
/// API gives the same words as they are.)
pub fn sentence(message: &str) -> String {
    let message = message.trim();
    // A first word that is a name (a file, a command, a path) keeps its case.
    let word = message.split_whitespace().next().unwrap_or("");
    let plain_word = word
        .trim_end_matches([',', ':', ';'])
        .chars()
        .all(|c| c.is_alphabetic() || c == '\'');
    let mut chars = message.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut out: String = if plain_word {
        first.to_uppercase().chain(chars).collect()
    } else {
        message.to_owned()
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// The question before an action that cannot be undone, on the action's own path: a GET
/// shows this page, whose button POSTs the same path.
pub fn confirm(
    ctx: &super::Ctx,
    title: String,
    question: String,
    loss: &str,
    button: &str,
    cancel: &str,
) -> Result<Response<Body>, ApiError> {
    let who = ctx.who.as_ref();
    let page = ui::ConfirmPage {
        nav: nav(who),
        csrf: csrf(who),
        title,
        question,
        loss: loss.to_owned(),
        action: ctx.req.uri().path().to_owned(),
        button: button.to_owned(),
        cancel: cancel.to_owned(),
    };
    html(StatusCode::OK, page.render())
}

/// The success line after an action that redirected back to a list (`?done=`).
pub fn done_notice(ctx: &Ctx) -> ui::Notice {
    let success = match query(&ctx.req).get("done") {
        "created" => Some("User created. They must choose their own password at first login."),
        "role" => Some("Role changed. The user's sessions have ended."),
        "second_factor_reset" => Some(
            "Second factor reset. The user sets up a new one at their next sign-in, if they must have one.",
        ),
        "reset" => Some(
            "Password reset. The user must change it at next login; their sessions have ended.",
        ),
        "deleted" => Some("User deleted."),
        "revoked" => Some("Token revoked."),
        "password" => Some("Password changed."),
        "logged-out" => Some("You are signed out."),
        "time-zone" => Some("Time zone saved."),
        "node-removed" => Some("Node removed; its token no longer works."),
        _ => None,
    };
    ui::Notice {
        success: success.map(str::to_owned),
        ..ui::Notice::default()
    }
}

/// The time zone the signed-in user reads times in, if they chose one.
pub fn zone(ctx: &super::Ctx) -> Option<&str> {
    ctx.who.as_ref().and_then(|p| p.time_zone.as_deref())
}

/// `2026-11-23 15:05 CET` in `zone` (an IANA name), or [`when`]'s UTC without one.
pub fn when_in(zone: Option<&str>, unix: i64) -> String {
    let zoned = zone
        .and_then(|z| jiff::tz::TimeZone::get(z).ok())
        .zip(jiff::Timestamp::from_second(unix).ok())
        .map(|(tz, t)| {
            t.to_zoned_datetime(tz)
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        });
    zoned.unwrap_or_else(|| when(unix))
}

/// The IANA zone names the database knows, for a time zone field (listed once).
pub fn zone_names() -> &'static [String] {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: Vec<String> = jiff::tz::db()
            .available()
            .map(|n| n.as_str().to_owned())
            .filter(|n| {
                n.contains('/')
                    && !n.starts_with("Etc/")
                    && !n.starts_with("posix/")
                    && !n.starts_with("right/")
            })
            .collect();
        names.sort();
        names
    })
}

/// A time zone as typed: `None` for UTC (empty, `UTC`), else a name the database knows.
pub fn parse_zone(typed: &str) -> Result<Option<String>, ApiError> {
    let typed = typed.trim();
    if typed.is_empty() || typed.eq_ignore_ascii_case("utc") {
        return Ok(None);
    }
    jiff::tz::TimeZone::get(typed)
        .map(|_| Some(typed.to_owned()))
        .map_err(|_| {
            ApiError::BadInput(format!(
                "'{typed}' is not a time zone: give an IANA name such as Europe/Berlin or America/New_York, or leave it empty for UTC"
            ))
        })
}

/// `2026-11-23 14:05 UTC`: [`when_in`] without a zone.
fn when(unix: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{parse_zone, sentence, when_in, zone_names};

    #[test]
    fn times_in_the_users_zone() {
        // 2026-12-07 03:00 UTC: winter in Berlin (CET, +1), summer in Sydney (AEDT, +11).
        let t = 1_796_612_400;
        assert_eq!(when_in(None, t), "2026-12-07 03:00 UTC");
        assert_eq!(when_in(Some("Europe/Berlin"), t), "2026-12-07 04:00 CET");
        assert_eq!(
            when_in(Some("Australia/Sydney"), t),
            "2026-12-07 14:00 AEDT"
        );
        assert_eq!(when_in(Some("Nowhere/Else"), t), "2026-12-07 03:00 UTC");
        assert_eq!(parse_zone(" utc ").unwrap(), None);
        assert_eq!(parse_zone("").unwrap(), None);
        assert_eq!(
            parse_zone("America/New_York").unwrap().as_deref(),
            Some("America/New_York")
        );
        assert!(parse_zone("Mars/Olympus").is_err());
        let names = zone_names();
        assert!(names.len() > 300 && names.contains(&"Europe/Berlin".to_owned()));
    }

    #[test]
    fn pages_show_messages_as_sentences() {
        assert_eq!(
            sentence("wrong user name or password"),
            "Wrong user name or password."
        );
        assert_eq!(
            sentence("The password contains the user name."),
            "The password contains the user name."
        );
        assert_eq!(sentence("log in first?"), "Log in first?");
        assert_eq!(sentence("mysql.toml: bad kind"), "mysql.toml: bad kind.");
        assert_eq!(sentence("perch-admin refused"), "perch-admin refused.");
        assert_eq!(sentence(""), "");
    }
}
