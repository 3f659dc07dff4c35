//! The route table: every path, its method, who may call it, how large its body may be,
//! and its handler, in one place, so that authorization is decided here and a new route
//! cannot forget it.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use http::Method;

use crate::features::{
    alerts, backups, dashboards, nodes, qan, query, status, tokens, users, write,
};
use crate::request::{Access, Ctx, Face, Guard, Handled, Handler, RouteName};
use perch_auth::Role;

/// Request bodies are read whole, up to this size, before a handler sees the request.
const MAX_BODY: usize = 1024 * 1024;
const MAX_BODY_TEXT: &str = "The request body is too large: 1 MiB at most.";
/// The body limit of every route but the write paths, and the refusal's text.
pub const DEFAULT_BODY_LIMIT: (usize, &str) = (MAX_BODY, MAX_BODY_TEXT);
/// Routes anyone may call (login, setup) read far less before anyone is known.
const PUBLIC_BODY_LIMIT: (usize, &str) = (
    64 * 1024,
    "The request body is too large: 64 KiB at most before you log in.",
);
const WRITE_BODY_TEXT: &str = "The request body is too large: 8 MiB at most for remote write.";

#[derive(Debug)]
pub struct Route {
    pub method: Method,
    /// Literal segments, `{id}` (a number), `{file}` (any one segment) or `{*}` (the rest).
    pub path: &'static str,
    pub guard: Guard,
    /// Answered without looking at credentials (readiness, static files: never the store).
    pub anonymous: bool,
    /// The largest body read, in bytes, and the refusal's text.
    pub body_limit: (usize, &'static str),
    pub name: RouteName,
    pub handler: Handler,
}

/// A handler `async fn(Ctx) -> Answer` as a table entry.
macro_rules! h {
    ($f:path) => {{
        fn handler(ctx: Ctx) -> Handled {
            Box::pin($f(ctx))
        }
        handler as Handler
    }};
}

const fn route(
    method: Method,
    path: &'static str,
    access: Access,
    name: RouteName,
    handler: Handler,
) -> Route {
    Route {
        method,
        path,
        guard: Guard::new(access),
        anonymous: false,
        body_limit: match access {
            Public => PUBLIC_BODY_LIMIT,
            _ => DEFAULT_BODY_LIMIT,
        },
        name,
        handler,
    }
}

/// Still reachable while the user must change their password.
const fn unlocked(mut r: Route) -> Route {
    r.guard.while_locked = true;
    r
}

/// Reachable between the password and the second factor's code.
const fn second_step(mut r: Route) -> Route {
    r.guard.second_step = true;
    r
}

const fn anonymous(mut r: Route) -> Route {
    r.anonymous = true;
    r
}

/// The write paths take pushes of up to 8 MiB (compressed).
const fn remote_write(mut r: Route) -> Route {
    r.body_limit = (write::WRITE_BODY_LIMIT, WRITE_BODY_TEXT);
    r
}

const REPORT_BODY_TEXT: &str =
    "The request body is too large: 8 MiB at most for a Query Analytics report.";

/// Query Analytics reports: up to 8 MiB of JSON (thousands of queries with their texts).
const fn qan_report(mut r: Route) -> Route {
    r.body_limit = (write::WRITE_BODY_LIMIT, REPORT_BODY_TEXT);
    r
}

/// The largest body any route reads: the body budget must hold at least one.
pub fn largest_body_limit() -> usize {
    ROUTES
        .iter()
        .map(|r| r.body_limit.0)
        .max()
        .unwrap_or(MAX_BODY)
}

use Access::{Metrics, Public};
const VIEWER: Access = Access::Role(Role::Viewer);
const EDITOR: Access = Access::Role(Role::Editor);
const ADMIN: Access = Access::Role(Role::Admin);

/// Every route the server answers.
pub static ROUTES: &[Route] = &[
    // Pages.
    route(
        Method::GET,
        "/",
        VIEWER,
        "overview",
        h!(dashboards::overview),
    ),
    route(
        Method::GET,
        "/nodes/{id}",
        VIEWER,
        "node",
        h!(dashboards::node),
    ),
    route(
        Method::GET,
        "/d/{file}",
        VIEWER,
        "dashboard",
        h!(dashboards::dashboard),
    ),
    route(
        Method::GET,
        "/qan",
        VIEWER,
        "qan",
        h!(dashboards::qan::page),
    ),
    route(
        Method::GET,
        "/qan/{file}",
        VIEWER,
        "qan_query",
        h!(dashboards::qan::query_page),
    ),
    route(
        Method::GET,
        "/v1/qan/queries",
        VIEWER,
        "api_qan_queries",
        h!(dashboards::qan::api_queries),
    ),
    route(
        Method::GET,
        "/v1/qan/queries/{file}",
        VIEWER,
        "api_qan_query",
        h!(dashboards::qan::api_query),
    ),
    // Alerting pages.
    route(
        Method::GET,
        "/alerts",
        VIEWER,
        "alerts",
        h!(alerts::pages::alerts_page),
    ),
    route(
        Method::POST,
        "/alerts/silence",
        EDITOR,
        "alerts",
        h!(alerts::pages::silence_alert),
    ),
    route(
        Method::GET,
        "/alerts/rules",
        VIEWER,
        "alert_rules",
        h!(alerts::pages::rules_page),
    ),
    route(
        Method::POST,
        "/alerts/rules/{file}",
        EDITOR,
        "alert_rules",
        h!(alerts::pages::rule_save),
    ),
    route(
        Method::GET,
        "/alerts/silences",
        VIEWER,
        "silences",
        h!(alerts::pages::silences_page),
    ),
    route(
        Method::POST,
        "/alerts/silences",
        EDITOR,
        "silences",
        h!(alerts::pages::silence_create),
    ),
    route(
        Method::POST,
        "/alerts/silences/{file}/expire",
        EDITOR,
        "silences",
        h!(alerts::pages::silence_expire),
    ),
    route(
        Method::GET,
        "/alerts/contact-points",
        ADMIN,
        "contact_points",
        h!(alerts::pages::contact_points_page),
    ),
    route(
        Method::POST,
        "/alerts/contact-points",
        ADMIN,
        "contact_points",
        h!(alerts::pages::contact_create),
    ),
    route(
        Method::POST,
        "/alerts/contact-points/{file}",
        ADMIN,
        "contact_points",
        h!(alerts::pages::contact_update),
    ),
    route(
        Method::POST,
        "/alerts/contact-points/{file}/test",
        ADMIN,
        "contact_points",
        h!(alerts::pages::contact_test),
    ),
    route(
        Method::POST,
        "/alerts/contact-points/{file}/delete",
        ADMIN,
        "contact_points",
        h!(alerts::pages::contact_delete),
    ),
    route(
        Method::POST,
        "/alerts/routing",
        ADMIN,
        "contact_points",
        h!(alerts::pages::routing_save),
    ),
    route(
        Method::GET,
        "/services",
        VIEWER,
        "services",
        h!(dashboards::services),
    ),
    route(
        Method::GET,
        "/explore",
        VIEWER,
        "explore",
        h!(dashboards::explore),
    ),
    route(
        Method::GET,
        "/browse",
        VIEWER,
        "browse",
        h!(dashboards::browse),
    ),
    route(
        Method::GET,
        "/setup",
        Public,
        "setup",
        h!(users::pages::setup_form),
    ),
    route(
        Method::POST,
        "/setup",
        Public,
        "setup",
        h!(users::pages::setup_submit),
    ),
    route(
        Method::GET,
        "/login",
        Public,
        "login",
        h!(users::pages::login_form),
    ),
    route(
        Method::POST,
        "/login",
        Public,
        "login",
        h!(users::pages::login_submit),
    ),
    second_step(unlocked(route(
        Method::POST,
        "/logout",
        VIEWER,
        "logout",
        h!(users::pages::logout),
    ))),
    second_step(route(
        Method::GET,
        "/login/second-factor",
        VIEWER,
        "second_factor",
        h!(users::second_factor::second_step_form),
    )),
    second_step(route(
        Method::POST,
        "/login/second-factor",
        VIEWER,
        "second_factor",
        h!(users::second_factor::second_step_submit),
    )),
    unlocked(route(
        Method::GET,
        "/two-factor",
        VIEWER,
        "two_factor",
        h!(users::second_factor::two_factor),
    )),
    unlocked(route(
        Method::POST,
        "/two-factor/begin",
        VIEWER,
        "two_factor",
        h!(users::second_factor::two_factor_begin),
    )),
    unlocked(route(
        Method::POST,
        "/two-factor/confirm",
        VIEWER,
        "two_factor",
        h!(users::second_factor::two_factor_confirm),
    )),
    route(
        Method::POST,
        "/two-factor/recovery-codes",
        VIEWER,
        "two_factor",
        h!(users::second_factor::two_factor_renew),
    ),
    route(
        Method::POST,
        "/two-factor/remove",
        VIEWER,
        "two_factor",
        h!(users::second_factor::two_factor_remove),
    ),
    route(
        Method::POST,
        "/users/{id}/second-factor/reset",
        ADMIN,
        "users",
        h!(users::second_factor::reset_page),
    ),
    unlocked(route(
        Method::GET,
        "/password",
        VIEWER,
        "password",
        h!(users::pages::password_form),
    )),
    unlocked(route(
        Method::POST,
        "/password",
        VIEWER,
        "password",
        h!(users::pages::password_submit),
    )),
    route(
        Method::POST,
        "/password/time-zone",
        VIEWER,
        "password",
        h!(users::pages::time_zone_submit),
    ),
    route(
        Method::GET,
        "/users",
        ADMIN,
        "users",
        h!(users::pages::users),
    ),
    route(
        Method::POST,
        "/users",
        ADMIN,
        "users",
        h!(users::pages::user_create),
    ),
    route(
        Method::POST,
        "/users/{id}/role",
        ADMIN,
        "users",
        h!(users::pages::user_role),
    ),
    route(
        Method::POST,
        "/users/{id}/reset",
        ADMIN,
        "users",
        h!(users::pages::user_reset),
    ),
    route(
        Method::GET,
        "/users/{id}/delete",
        ADMIN,
        "users",
        h!(users::pages::user_delete_confirm),
    ),
    route(
        Method::POST,
        "/users/{id}/delete",
        ADMIN,
        "users",
        h!(users::pages::user_delete),
    ),
    route(
        Method::GET,
        "/tokens",
        ADMIN,
        "tokens",
        h!(tokens::pages::list),
    ),
    route(
        Method::POST,
        "/tokens",
        ADMIN,
        "tokens",
        h!(tokens::pages::create),
    ),
    route(
        Method::GET,
        "/tokens/{id}/revoke",
        ADMIN,
        "tokens",
        h!(tokens::pages::revoke_confirm),
    ),
    route(
        Method::POST,
        "/tokens/{id}/revoke",
        ADMIN,
        "tokens",
        h!(tokens::pages::revoke),
    ),
    route(
        Method::GET,
        "/audit",
        ADMIN,
        "audit",
        h!(users::pages::audit),
    ),
    route(
        Method::GET,
        "/backups",
        ADMIN,
        "backups",
        h!(backups::pages::show),
    ),
    route(
        Method::POST,
        "/backups",
        ADMIN,
        "backups",
        h!(backups::pages::take),
    ),
    route(
        Method::GET,
        "/backups/{file}",
        ADMIN,
        "backup_download",
        h!(backups::pages::download),
    ),
    route(
        Method::GET,
        "/nodes",
        VIEWER,
        "nodes",
        h!(nodes::pages::list),
    ),
    route(
        Method::GET,
        "/nodes/add",
        EDITOR,
        "nodes",
        h!(nodes::pages::add_form),
    ),
    route(
        Method::POST,
        "/nodes/add",
        EDITOR,
        "nodes",
        h!(nodes::pages::add),
    ),
    route(
        Method::GET,
        "/nodes/{id}/delete",
        EDITOR,
        "nodes",
        h!(nodes::pages::delete_confirm),
    ),
    route(
        Method::POST,
        "/nodes/{id}/delete",
        EDITOR,
        "nodes",
        h!(nodes::pages::delete),
    ),
    route(
        Method::GET,
        "/ca-certs.pem",
        Public,
        "ca",
        h!(nodes::pages::ca_certs),
    ),
    anonymous(unlocked(route(
        Method::GET,
        "/static/{file}",
        Public,
        "static",
        h!(status::asset),
    ))),
    // The JSON API.
    anonymous(unlocked(route(
        Method::GET,
        "/v1/readyz",
        Public,
        "readyz",
        h!(status::readyz),
    ))),
    route(
        Method::GET,
        "/metrics",
        Metrics,
        "metrics",
        h!(status::metrics),
    ),
    route(
        Method::POST,
        "/v1/setup",
        Public,
        "api_setup",
        h!(users::api::setup),
    ),
    route(
        Method::POST,
        "/v1/login",
        Public,
        "api_login",
        h!(users::api::login),
    ),
    second_step(unlocked(route(
        Method::POST,
        "/v1/logout",
        VIEWER,
        "api_logout",
        h!(users::api::logout),
    ))),
    second_step(route(
        Method::POST,
        "/v1/login/second-factor",
        VIEWER,
        "api_second_factor",
        h!(users::second_factor::api_second_step),
    )),
    unlocked(route(
        Method::POST,
        "/v1/me/second-factor",
        VIEWER,
        "api_second_factor",
        h!(users::second_factor::api_begin),
    )),
    unlocked(route(
        Method::POST,
        "/v1/me/second-factor/confirm",
        VIEWER,
        "api_second_factor",
        h!(users::second_factor::api_confirm),
    )),
    route(
        Method::POST,
        "/v1/me/second-factor/recovery-codes",
        VIEWER,
        "api_second_factor",
        h!(users::second_factor::api_renew),
    ),
    route(
        Method::POST,
        "/v1/me/second-factor/remove",
        VIEWER,
        "api_second_factor",
        h!(users::second_factor::api_remove),
    ),
    route(
        Method::DELETE,
        "/v1/users/{id}/second-factor",
        ADMIN,
        "api_users",
        h!(users::second_factor::api_reset),
    ),
    unlocked(route(
        Method::GET,
        "/v1/me",
        VIEWER,
        "api_me",
        h!(users::api::me),
    )),
    unlocked(route(
        Method::PUT,
        "/v1/me/password",
        VIEWER,
        "api_me",
        h!(users::api::change_password),
    )),
    route(
        Method::PUT,
        "/v1/me/time-zone",
        VIEWER,
        "api_me",
        h!(users::api::set_time_zone),
    ),
    route(
        Method::GET,
        "/v1/users",
        ADMIN,
        "api_users",
        h!(users::api::users),
    ),
    route(
        Method::POST,
        "/v1/users",
        ADMIN,
        "api_users",
        h!(users::api::user_create),
    ),
    route(
        Method::PUT,
        "/v1/users/{id}/role",
        ADMIN,
        "api_users",
        h!(users::api::user_role),
    ),
    route(
        Method::PUT,
        "/v1/users/{id}/password",
        ADMIN,
        "api_users",
        h!(users::api::user_reset),
    ),
    route(
        Method::DELETE,
        "/v1/users/{id}",
        ADMIN,
        "api_users",
        h!(users::api::user_delete),
    ),
    route(
        Method::GET,
        "/v1/tokens",
        ADMIN,
        "api_tokens",
        h!(tokens::api::list),
    ),
    route(
        Method::POST,
        "/v1/tokens",
        ADMIN,
        "api_tokens",
        h!(tokens::api::create),
    ),
    route(
        Method::DELETE,
        "/v1/tokens/{id}",
        ADMIN,
        "api_tokens",
        h!(tokens::api::revoke),
    ),
    route(
        Method::GET,
        "/v1/audit",
        ADMIN,
        "api_audit",
        h!(users::api::audit),
    ),
    route(
        Method::GET,
        "/v1/backups",
        ADMIN,
        "api_backups",
        h!(backups::api::list),
    ),
    route(
        Method::POST,
        "/v1/backups",
        ADMIN,
        "api_backups",
        h!(backups::api::take),
    ),
    route(
        Method::GET,
        "/v1/backups/{file}",
        ADMIN,
        "api_backup_download",
        h!(backups::api::download),
    ),
    // Alerting: alerts, rules, silences, contact points and routing.
    route(
        Method::GET,
        "/v1/alerts",
        VIEWER,
        "api_alerts",
        h!(alerts::api::list_alerts),
    ),
    route(
        Method::GET,
        "/v1/rules",
        VIEWER,
        "api_rules",
        h!(alerts::api::list_rules),
    ),
    route(
        Method::PUT,
        "/v1/rules/{file}",
        EDITOR,
        "api_rules",
        h!(alerts::api::set_rule),
    ),
    route(
        Method::GET,
        "/v1/silences",
        VIEWER,
        "api_silences",
        h!(alerts::api::list_silences),
    ),
    route(
        Method::POST,
        "/v1/silences",
        EDITOR,
        "api_silences",
        h!(alerts::api::create_silence),
    ),
    route(
        Method::DELETE,
        "/v1/silences/{file}",
        EDITOR,
        "api_silences",
        h!(alerts::api::expire_silence),
    ),
    route(
        Method::GET,
        "/v1/receivers",
        ADMIN,
        "api_receivers",
        h!(alerts::api::list_receivers),
    ),
    route(
        Method::POST,
        "/v1/receivers",
        ADMIN,
        "api_receivers",
        h!(alerts::api::create_receiver),
    ),
    route(
        Method::PUT,
        "/v1/receivers/{file}",
        ADMIN,
        "api_receivers",
        h!(alerts::api::update_receiver),
    ),
    route(
        Method::DELETE,
        "/v1/receivers/{file}",
        ADMIN,
        "api_receivers",
        h!(alerts::api::delete_receiver),
    ),
    route(
        Method::POST,
        "/v1/receivers/{file}/test",
        ADMIN,
        "api_receivers",
        h!(alerts::api::test_receiver),
    ),
    route(
        Method::PUT,
        "/v1/routing",
        ADMIN,
        "api_receivers",
        h!(alerts::api::set_routing),
    ),
    // Machines: enrollment, the node list, and a node's own record (its token).
    route(
        Method::POST,
        "/v1/enroll-tokens",
        EDITOR,
        "api_enroll_tokens",
        h!(nodes::api::enroll_token_create),
    ),
    route(
        Method::POST,
        "/v1/nodes",
        Access::Enroll,
        "api_nodes",
        h!(nodes::api::enroll),
    ),
    route(
        Method::GET,
        "/v1/nodes",
        VIEWER,
        "api_nodes",
        h!(nodes::api::list),
    ),
    route(
        Method::DELETE,
        "/v1/nodes/{id}",
        EDITOR,
        "api_nodes",
        h!(nodes::api::delete),
    ),
    route(
        Method::GET,
        "/v1/node",
        Access::Node,
        "api_node",
        h!(nodes::api::own),
    ),
    route(
        Method::DELETE,
        "/v1/node",
        Access::Node,
        "api_node",
        h!(nodes::api::own_delete),
    ),
    // Query Analytics: an agent's report of a database's busiest queries.
    qan_report(route(
        Method::POST,
        "/v1/qan/report",
        Access::Node,
        "qan_report",
        h!(qan::report),
    )),
    // Remote write into the metrics engine (Perch's path and PMM's).
    remote_write(route(
        Method::POST,
        "/v1/metrics/write",
        Access::Write,
        "write",
        h!(write::remote_write),
    )),
    remote_write(route(
        Method::POST,
        "/victoriametrics/api/v1/write",
        Access::Write,
        "write",
        h!(write::remote_write),
    )),
    // The Prometheus query API in front of the metrics engine.
    route(
        Method::GET,
        "/prometheus/api/v1/{*}",
        VIEWER,
        "query",
        h!(query::forward_query),
    ),
    route(
        Method::POST,
        "/prometheus/api/v1/{*}",
        VIEWER,
        "query",
        h!(query::forward_query),
    ),
];

/// How a path's errors are shown: Prometheus's shape for its API, JSON for Perch's API, a
/// page for the rest.
pub fn face_of(path: &str) -> Face {
    if path.starts_with("/prometheus/") {
        Face::Prometheus
    } else if path.starts_with("/v1/")
        || path == "/metrics"
        || path.starts_with("/victoriametrics/")
    {
        Face::Api
    } else {
        Face::Page
    }
}

/// Matches `path` against a route pattern, returning the parameters.
fn matches(pattern: &str, path: &str) -> Option<Vec<String>> {
    let mut params = Vec::new();
    let mut want = pattern.split('/');
    let mut have = path.split('/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return Some(params),
            (Some("{id}"), Some(seg))
                if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) =>
            {
                params.push(seg.to_owned())
            }
            (Some("{file}"), Some(seg)) if !seg.is_empty() => params.push(seg.to_owned()),
            (Some("{*}"), Some(seg)) if !seg.is_empty() => {
                let rest: Vec<&str> = std::iter::once(seg).chain(have.by_ref()).collect();
                params.push(rest.join("/"));
                return Some(params);
            }
            (Some(w), Some(h)) if w == h => {}
            _ => return None,
        }
    }
}

/// What a request's method and path find in the table.
pub enum Found {
    Route(&'static Route, Vec<String>),
    /// The path exists with these methods.
    WrongMethod(Vec<&'static str>),
    Nothing,
}

/// Routes without parameters, by path: most requests are answered from here without
/// scanning the table.
fn literal_routes() -> &'static HashMap<&'static str, Vec<&'static Route>> {
    static MAP: OnceLock<HashMap<&'static str, Vec<&'static Route>>> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut map: HashMap<_, Vec<_>> = HashMap::new();
        for r in ROUTES.iter().filter(|r| !r.path.contains('{')) {
            map.entry(r.path).or_default().push(r);
        }
        map
    })
}

/// The route for `method` and `path` (HEAD is answered by GET routes).
pub fn find(method: &Method, path: &str) -> Found {
    let fits =
        |r: &Route| r.method == method || (method == Method::HEAD && r.method == Method::GET);
    if let Some(routes) = literal_routes().get(path)
        && let Some(r) = routes.iter().find(|r| fits(r))
    {
        return Found::Route(r, Vec::new());
    }
    let mut allowed = Vec::new();
    for r in ROUTES {
        if let Some(params) = matches(r.path, path) {
            if fits(r) {
                return Found::Route(r, params);
            }
            allowed.push(r.method.as_str());
        }
    }
    if allowed.is_empty() {
        Found::Nothing
    } else {
        if allowed.contains(&"GET") {
            allowed.push("HEAD");
        }
        Found::WrongMethod(allowed)
    }
}

/// The first path segments Perch answers itself (`v1`, `login`, …, and `` for `/`), and
/// those kept for pages to come: no proxy route may take them.
pub fn reserved_segments() -> HashSet<&'static str> {
    const KEPT: &[&str] = &[
        "dashboards",
        "explore",
        "browse",
        "d",
        "favicon.ico",
        "robots.txt",
    ];
    ROUTES
        .iter()
        .map(|r| {
            r.path
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or("")
        })
        .chain(KEPT.iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert_eq!(
            matches("/users/{id}/role", "/users/12/role"),
            Some(vec!["12".into()])
        );
        assert_eq!(matches("/users/{id}/role", "/users/x/role"), None);
        assert_eq!(matches("/users/{id}/role", "/users/12"), None);
        assert_eq!(
            matches("/static/{file}", "/static/perch.css"),
            Some(vec!["perch.css".into()])
        );
        assert_eq!(matches("/", "/"), Some(vec![]));
        assert_eq!(matches("/", "/x"), None);
        assert_eq!(
            matches(
                "/prometheus/api/v1/{*}",
                "/prometheus/api/v1/label/job/values"
            ),
            Some(vec!["label/job/values".into()])
        );
        assert_eq!(
            matches("/prometheus/api/v1/{*}", "/prometheus/api/v1/"),
            None
        );
    }

    #[test]
    fn wrong_methods_list_what_is_allowed() {
        match find(&Method::DELETE, "/login") {
            Found::WrongMethod(allowed) => assert_eq!(allowed, ["GET", "POST", "HEAD"]),
            _ => panic!("DELETE /login is not a route"),
        }
        assert!(
            matches!(find(&Method::HEAD, "/v1/readyz"), Found::Route(r, _) if r.name == "readyz")
        );
        assert!(matches!(find(&Method::GET, "/nope"), Found::Nothing));
    }

    #[test]
    fn only_the_write_paths_take_large_bodies() {
        for r in ROUTES {
            let large = r.body_limit.0 > MAX_BODY;
            let writes = matches!(r.name, "write" | "qan_report");
            assert_eq!(large, writes, "{} {}", r.method, r.path);
        }
    }
}
