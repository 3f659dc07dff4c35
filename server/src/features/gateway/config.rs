//! The routes file (`--config`, TOML): which path prefixes go to which upstream, for whom.
//! Everything is checked here, so that a file that loads is a file that works; every error
//! names the route and the fault.
//!
//! ```toml
//! [[route]]
//! name = "grafana"                  # metrics label and error pages; default: from the prefix
//! prefix = "/graph/"
//! upstream = "http://127.0.0.1:3000"
//! role = "viewer"                   # public, viewer (default), editor or admin
//! strip_prefix = false
//! connect_timeout = "5s"
//! timeout = "60s"                   # for the answer's head
//! identity_header = "X-WEBAUTH-USER"
//! role_header = "X-WEBAUTH-ROLE"
//! # ca_file = "/srv/perch/upstream-ca.pem"   # for an https upstream
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::HeaderName;
use serde::Deserialize;
use url::Url;

use perch_auth::Role;
use perch_upstream::parse_base_url;

/// Longest allowed timeout: a longer one is a mistake, not a wish.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// The file could not be used; the message names the file, the route and the fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not valid TOML for Perch: {message}")]
    Syntax { path: String, message: String },
    #[error("{path}: route {index} ({prefix}): {fault}")]
    Route {
        path: String,
        index: usize,
        prefix: String,
        fault: String,
    },
}

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinRole {
    /// Anyone, signed in or not (an identity header is still sent for those signed in).
    Public,
    Role(Role),
}

/// One route, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub name: String,
    /// Starts and ends with `/`.
    pub prefix: String,
    pub upstream: Url,
    pub role: MinRole,
    pub strip_prefix: bool,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub ca_file: Option<PathBuf>,
    pub identity_header: Option<HeaderName>,
    pub role_header: Option<HeaderName>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    route: Vec<RawRoute>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: Option<String>,
    prefix: String,
    upstream: String,
    role: Option<String>,
    #[serde(default)]
    strip_prefix: bool,
    connect_timeout: Option<String>,
    timeout: Option<String>,
    ca_file: Option<PathBuf>,
    identity_header: Option<String>,
    role_header: Option<String>,
}

/// Reads and checks the routes file. `reserved` are the first path segments Perch answers
/// itself, which no prefix may take.
pub fn load(path: &Path, reserved: &HashSet<&str>) -> Result<Vec<RouteSpec>, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
        path: shown.clone(),
        source,
    })?;
    parse(&text, &shown, reserved)
}

/// As [`load`], from the file's text; `shown` names the file in errors.
pub fn parse(
    text: &str,
    shown: &str,
    reserved: &HashSet<&str>,
) -> Result<Vec<RouteSpec>, ConfigError> {
    let file: File = toml::from_str(text).map_err(|e| ConfigError::Syntax {
        path: shown.to_owned(),
        message: e.message().to_owned() + &location(text, e.span()),
    })?;
    let mut specs: Vec<RouteSpec> = Vec::with_capacity(file.route.len());
    for (i, raw) in file.route.into_iter().enumerate() {
        let err = |fault: String| ConfigError::Route {
            path: shown.to_owned(),
            index: i + 1,
            prefix: raw.prefix.clone(),
            fault,
        };
        let spec = check(&raw, reserved).map_err(err)?;
        if specs.iter().any(|s| s.prefix == spec.prefix) {
            return Err(err("another route has the same prefix".into()));
        }
        if specs.iter().any(|s| s.name == spec.name) {
            return Err(err(format!(
                "another route has the name '{}'; names must be unique",
                spec.name
            )));
        }
        specs.push(spec);
    }
    Ok(specs)
}

fn location(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

fn check(raw: &RawRoute, reserved: &HashSet<&str>) -> Result<RouteSpec, String> {
    let prefix = check_prefix(&raw.prefix, reserved)?;
    let name = match &raw.name {
        Some(n) => check_name(n)?,
        None => prefix.trim_matches('/').replace('/', "-"),
    };
    let upstream = parse_base_url(&raw.upstream).map_err(|e| format!("upstream: {e}"))?;
    if raw.ca_file.is_some() && upstream.scheme() != "https" {
        return Err("ca_file is only for an https upstream".into());
    }
    let role = match raw.role.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("viewer") => MinRole::Role(Role::Viewer),
        Some("editor") => MinRole::Role(Role::Editor),
        Some("admin") => MinRole::Role(Role::Admin),
        Some("public") => MinRole::Public,
        Some(other) => {
            return Err(format!(
                "role '{other}' is not one of public, viewer, editor, admin"
            ));
        }
    };
    let connect_timeout = timeout("connect_timeout", raw.connect_timeout.as_deref(), 5)?;
    let timeout = timeout("timeout", raw.timeout.as_deref(), 60)?;
    let identity_header = header("identity_header", raw.identity_header.as_deref())?;
    let role_header = header("role_header", raw.role_header.as_deref())?;
    if role_header.is_some() && identity_header.is_none() {
        return Err("role_header needs an identity_header too".into());
    }
    if identity_header.is_some() && identity_header == role_header {
        return Err("identity_header and role_header must differ".into());
    }
    Ok(RouteSpec {
        name,
        prefix,
        upstream,
        role,
        strip_prefix: raw.strip_prefix,
        connect_timeout,
        timeout,
        ca_file: raw.ca_file.clone(),
        identity_header,
        role_header,
    })
}

fn check_prefix(prefix: &str, reserved: &HashSet<&str>) -> Result<String, String> {
    let usage = "a prefix is a path like /graph/: it starts and ends with '/'";
    if prefix == "/" {
        return Err("the prefix '/' would take every path, Perch's own pages too".into());
    }
    let inner = prefix
        .strip_prefix('/')
        .and_then(|p| p.strip_suffix('/'))
        .ok_or_else(|| usage.to_owned())?;
    if !inner
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
    {
        return Err(format!("{usage}, made of letters, digits and - . _ ~ only"));
    }
    if inner.split('/').any(|seg| matches!(seg, "" | "." | "..")) {
        return Err(format!("{usage}, with no empty, '.' or '..' segment"));
    }
    let first = inner.split('/').next().unwrap_or(inner);
    if reserved.contains(first) {
        return Err(format!(
            "/{first}/ is Perch's own; choose another prefix (Perch keeps {})",
            reserved_list(reserved)
        ));
    }
    Ok(prefix.to_owned())
}

fn reserved_list(reserved: &HashSet<&str>) -> String {
    let mut names: Vec<&str> = reserved.iter().copied().filter(|s| !s.is_empty()).collect();
    names.sort_unstable();
    names
        .iter()
        .map(|n| format!("/{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_name(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "name '{name}': use 1 to 64 letters, digits, '-', '_' or '.'"
        ))
    }
}

fn timeout(field: &str, value: Option<&str>, default_s: u64) -> Result<Duration, String> {
    let d = match value {
        None => return Ok(Duration::from_secs(default_s)),
        Some(v) => perch_time::parse_duration(v).map_err(|e| format!("{field}: {e}"))?,
    };
    if d.is_zero() || d > MAX_TIMEOUT {
        return Err(format!("{field}: between 1ms and 1h, please"));
    }
    Ok(d)
}

/// Headers Perch sets or that carry the connection itself: an identity header cannot be one.
const NOT_IDENTITY: &[&str] = &[
    "host",
    "connection",
    "upgrade",
    "content-length",
    "content-type",
    "transfer-encoding",
    "te",
    "trailer",
    "keep-alive",
    "authorization",
    "cookie",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

fn header(field: &str, value: Option<&str>) -> Result<Option<HeaderName>, String> {
    let Some(value) = value else { return Ok(None) };
    let name = HeaderName::from_bytes(value.trim().as_bytes())
        .map_err(|_| format!("{field}: '{value}' is not a header name"))?;
    if NOT_IDENTITY.contains(&name.as_str()) || name.as_str().starts_with("proxy-") {
        return Err(format!(
            "{field}: '{value}' is a header with its own meaning; use one like X-WEBAUTH-USER"
        ));
    }
    Ok(Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reserved() -> HashSet<&'static str> {
        ["", "v1", "login", "metrics", "static"]
            .into_iter()
            .collect()
    }

    fn one(route: &str) -> Result<RouteSpec, String> {
        parse(&format!("[[route]]\n{route}"), "perch.toml", &reserved())
            .map(|mut v| v.remove(0))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_route_is_read_with_its_defaults() {
        let r = one(
            "prefix = \"/graph/\"\nupstream = \"http://127.0.0.1:3000\"\n\
             identity_header = \"X-WEBAUTH-USER\"\nrole_header = \"X-WEBAUTH-ROLE\"",
        )
        .unwrap();
        assert_eq!(r.name, "graph");
        assert_eq!(r.prefix, "/graph/");
        assert_eq!(r.upstream.as_str(), "http://127.0.0.1:3000/");
        assert_eq!(r.role, MinRole::Role(Role::Viewer));
        assert!(!r.strip_prefix);
        assert_eq!(r.connect_timeout, Duration::from_secs(5));
        assert_eq!(r.timeout, Duration::from_secs(60));
        assert_eq!(r.identity_header.unwrap().as_str(), "x-webauth-user");
        assert_eq!(r.role_header.unwrap().as_str(), "x-webauth-role");

        let r = one(
            "name = \"status\"\nprefix = \"/status/page/\"\nupstream = \"https://s.example/x/\"\n\
             role = \"Public\"\nstrip_prefix = true\ntimeout = \"250ms\"\nca_file = \"/ca.pem\"",
        )
        .unwrap();
        assert_eq!(r.role, MinRole::Public);
        assert!(r.strip_prefix);
        assert_eq!(r.timeout, Duration::from_millis(250));
        assert_eq!(r.ca_file.as_deref(), Some(Path::new("/ca.pem")));
    }

    #[test]
    fn mistakes_are_named() {
        let up = "upstream = \"http://127.0.0.1:1\"";
        for (route, fault) in [
            (
                format!("prefix = \"/graph\"\n{up}"),
                "starts and ends with '/'",
            ),
            (format!("prefix = \"/\"\n{up}"), "every path"),
            (format!("prefix = \"/v1/\"\n{up}"), "/v1/ is Perch's own"),
            (
                format!("prefix = \"/login/x/\"\n{up}"),
                "/login/ is Perch's own",
            ),
            (format!("prefix = \"/a/../b/\"\n{up}"), "'..'"),
            (format!("prefix = \"/a b/\"\n{up}"), "letters, digits"),
            ("prefix = \"/a/\"\nupstream = \"ftp://x\"".into(), "scheme"),
            (
                "prefix = \"/a/\"\nupstream = \"http://u:p@x\"".into(),
                "credentials",
            ),
            (
                format!("prefix = \"/a/\"\n{up}\nrole = \"root\""),
                "role 'root'",
            ),
            (
                format!("prefix = \"/a/\"\n{up}\ntimeout = \"0s\""),
                "timeout",
            ),
            (
                format!("prefix = \"/a/\"\n{up}\ntimeout = \"soon\""),
                "timeout",
            ),
            (
                format!("prefix = \"/a/\"\n{up}\nca_file = \"/c\""),
                "only for an https",
            ),
            (
                format!("prefix = \"/a/\"\n{up}\nidentity_header = \"Cookie\""),
                "its own meaning",
            ),
            (
                format!("prefix = \"/a/\"\n{up}\nrole_header = \"X-Role\""),
                "needs an identity_header",
            ),
            (
                format!("prefix = \"/a/\"\n{up}\nname = \"a b\""),
                "name 'a b'",
            ),
            (
                format!("prefix = \"/a/\"\n{up}\nstrip = true"),
                "unknown field",
            ),
        ] {
            let err = one(&route).unwrap_err();
            assert!(err.contains(fault), "{route}: {err}");
            assert!(err.starts_with("perch.toml: "), "{err}");
        }
    }

    #[test]
    fn duplicates_and_syntax_errors_are_refused() {
        let text = "[[route]]\nprefix = \"/a/\"\nupstream = \"http://x\"\n\
                    [[route]]\nprefix = \"/a/\"\nupstream = \"http://y\"\n";
        let err = parse(text, "f", &reserved()).unwrap_err().to_string();
        assert!(
            err.contains("route 2 (/a/): another route has the same prefix"),
            "{err}"
        );
        let err = parse("[[route]\n", "f", &reserved())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("f: not valid TOML") && err.contains("line 1"),
            "{err}"
        );
        assert!(parse("", "f", &reserved()).unwrap().is_empty());
    }
}
