//! The route table: every path, its method, who may call it, and its handler, in one place,
//! so that authorization is decided here and a new route cannot forget it. Errors become a
//! status code here, at the edge: JSON for `/v1/` and `/metrics`, pages elsewhere.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, HOST, LOCATION, ORIGIN, REFERER};
use http::{HeaderValue, Method, Request, Response, StatusCode};

use super::{App, Body};
use crate::auth::{AuthError, Principal, Role, Via, secret};
use crate::web::{api, pages, support};

/// The route a request matched, as its metrics label.
pub type RouteName = &'static str;

pub type Handled = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;
pub type Handler = fn(Ctx) -> Handled;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Signed in with at least this role (session or API token).
    Role(Role),
    /// An Admin, or any API token (for Prometheus scrapers).
    Metrics,
}

#[derive(Debug)]
pub struct Route {
    pub method: Method,
    /// Literal segments, `{id}` (a number) or `{file}` (any one segment).
    pub path: &'static str,
    pub access: Access,
    /// Still reachable while the user must change their password.
    pub while_locked: bool,
    pub name: RouteName,
    pub handler: Handler,
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
        access,
        while_locked: false,
        name,
        handler,
    }
}

const fn unlocked(mut r: Route) -> Route {
    r.while_locked = true;
    r
}

use Access::{Metrics, Public};
const VIEWER: Access = Access::Role(Role::Viewer);
const ADMIN: Access = Access::Role(Role::Admin);

/// Every route the server answers.
pub static ROUTES: &[Route] = &[
    // Pages.
    route(Method::GET, "/", VIEWER, "home", pages::home),
    route(Method::GET, "/setup", Public, "setup", pages::setup_form),
    route(Method::POST, "/setup", Public, "setup", pages::setup_submit),
    route(Method::GET, "/login", Public, "login", pages::login_form),
    route(Method::POST, "/login", Public, "login", pages::login_submit),
    unlocked(route(
        Method::POST,
        "/logout",
        VIEWER,
        "logout",
        pages::logout,
    )),
    unlocked(route(
        Method::GET,
        "/password",
        VIEWER,
        "password",
        pages::password_form,
    )),
    unlocked(route(
        Method::POST,
        "/password",
        VIEWER,
        "password",
        pages::password_submit,
    )),
    route(Method::GET, "/users", ADMIN, "users", pages::users),
    route(Method::POST, "/users", ADMIN, "users", pages::user_create),
    route(
        Method::POST,
        "/users/{id}/role",
        ADMIN,
        "users",
        pages::user_role,
    ),
    route(
        Method::POST,
        "/users/{id}/reset",
        ADMIN,
        "users",
        pages::user_reset,
    ),
    route(
        Method::POST,
        "/users/{id}/delete",
        ADMIN,
        "users",
        pages::user_delete,
    ),
    route(Method::GET, "/tokens", ADMIN, "tokens", pages::tokens),
    route(
        Method::POST,
        "/tokens",
        ADMIN,
        "tokens",
        pages::token_create,
    ),
    route(
        Method::POST,
        "/tokens/{id}/revoke",
        ADMIN,
        "tokens",
        pages::token_revoke,
    ),
    route(Method::GET, "/audit", ADMIN, "audit", pages::audit),
    unlocked(route(
        Method::GET,
        "/static/{file}",
        Public,
        "static",
        pages::asset,
    )),
    // The JSON API.
    unlocked(route(
        Method::GET,
        "/v1/readyz",
        Public,
        "readyz",
        api::readyz,
    )),
    route(Method::GET, "/metrics", Metrics, "metrics", api::metrics),
    route(Method::POST, "/v1/setup", Public, "api_setup", api::setup),
    route(Method::POST, "/v1/login", Public, "api_login", api::login),
    unlocked(route(
        Method::POST,
        "/v1/logout",
        VIEWER,
        "api_logout",
        api::logout,
    )),
    unlocked(route(Method::GET, "/v1/me", VIEWER, "api_me", api::me)),
    unlocked(route(
        Method::PUT,
        "/v1/me/password",
        VIEWER,
        "api_me",
        api::change_password,
    )),
    route(Method::GET, "/v1/users", ADMIN, "api_users", api::users),
    route(
        Method::POST,
        "/v1/users",
        ADMIN,
        "api_users",
        api::user_create,
    ),
    route(
        Method::PUT,
        "/v1/users/{id}/role",
        ADMIN,
        "api_users",
        api::user_role,
    ),
    route(
        Method::PUT,
        "/v1/users/{id}/password",
        ADMIN,
        "api_users",
        api::user_reset,
    ),
    route(
        Method::DELETE,
        "/v1/users/{id}",
        ADMIN,
        "api_users",
        api::user_delete,
    ),
    route(Method::GET, "/v1/tokens", ADMIN, "api_tokens", api::tokens),
    route(
        Method::POST,
        "/v1/tokens",
        ADMIN,
        "api_tokens",
        api::token_create,
    ),
    route(
        Method::DELETE,
        "/v1/tokens/{id}",
        ADMIN,
        "api_tokens",
        api::token_revoke,
    ),
    route(Method::GET, "/v1/audit", ADMIN, "api_audit", api::audit),
];

/// Everything a handler gets.
#[derive(Debug)]
pub struct Ctx {
    pub app: Arc<App>,
    pub peer: SocketAddr,
    pub req: Request<Bytes>,
    pub who: Option<Principal>,
    pub params: Vec<String>,
}

impl Ctx {
    pub fn client(&self) -> IpAddr {
        self.peer.ip().to_canonical()
    }

    /// The `{id}` path parameter.
    pub fn id(&self) -> Result<u64, AuthError> {
        self.params
            .first()
            .and_then(|p| p.parse().ok())
            .ok_or(AuthError::NotFound("id"))
    }

    /// The signed-in principal; routes with a role guarantee one.
    pub fn principal(&self) -> Result<&Principal, AuthError> {
        self.who.as_ref().ok_or(AuthError::Unauthenticated)
    }
}

fn is_api(path: &str) -> bool {
    path.starts_with("/v1/") || path == "/metrics"
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
            (Some(w), Some(h)) if w == h => {}
            _ => return None,
        }
    }
}

enum Found<'a> {
    Route(&'a Route, Vec<String>),
    WrongMethod(Vec<&'static str>),
    Nothing,
}

fn find(method: &Method, path: &str) -> Found<'static> {
    let mut allowed = Vec::new();
    for r in ROUTES {
        if let Some(params) = matches(r.path, path) {
            if r.method == method || (method == Method::HEAD && r.method == Method::GET) {
                return Found::Route(r, params);
            }
            allowed.push(r.method.as_str());
        }
    }
    if allowed.is_empty() {
        Found::Nothing
    } else {
        Found::WrongMethod(allowed)
    }
}

/// The session cookie, else a bearer token.
fn authenticate<B>(app: &App, req: &Request<B>) -> Result<Option<Principal>, AuthError> {
    if let Some(id) = support::cookie(req.headers(), support::SESSION_COOKIE)
        && let Some(p) = app.auth.session(id)?
    {
        return Ok(Some(p));
    }
    let bearer = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match bearer {
        Some(token) => app.auth.token(token),
        None => Ok(None),
    }
}

pub async fn dispatch(
    app: Arc<App>,
    peer: SocketAddr,
    req: Request<Bytes>,
) -> (RouteName, Response<Body>) {
    let path = req.uri().path().to_owned();
    let api = is_api(&path);
    let (route, params) = match find(req.method(), &path) {
        Found::Route(r, p) => (r, p),
        Found::WrongMethod(allowed) => {
            let mut resp = support::respond(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "This method is not allowed here.\n",
            );
            if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                resp.headers_mut().insert(ALLOW, v);
            }
            return ("method_not_allowed", resp);
        }
        Found::Nothing => {
            let resp = if api {
                support::json_error(&AuthError::NotFound("path"))
            } else {
                pages::message(
                    None,
                    StatusCode::NOT_FOUND,
                    "Not found",
                    "There is no page here.",
                )
            };
            return ("not_found", resp);
        }
    };
    // Readiness and static files never touch the store.
    let who = if matches!(route.name, "readyz" | "static") {
        None
    } else {
        match authenticate(&app, &req) {
            Ok(who) => who,
            Err(e) => return (route.name, deny(&app, api, &e, None)),
        }
    };
    if let Err(resp) = authorize(&app, route, who.as_ref(), &req, api) {
        return (route.name, resp);
    }
    let ctx = Ctx {
        app,
        peer,
        req,
        who,
        params,
    };
    (route.name, (route.handler)(ctx).await)
}

fn deny(app: &App, api: bool, e: &AuthError, who: Option<&Principal>) -> Response<Body> {
    if api {
        support::json_error(e)
    } else {
        let _ = app;
        pages::error_page(who, e)
    }
}

fn authorize<B: AsRef<[u8]>>(
    app: &App,
    route: &Route,
    who: Option<&Principal>,
    req: &Request<B>,
    api: bool,
) -> Result<(), Response<Body>> {
    match (route.access, who) {
        (Access::Public, _) => {}
        (Access::Metrics, Some(p)) if p.role == Role::Admin || matches!(p.via, Via::Token) => {}
        (Access::Role(min), Some(p)) if p.role >= min => {}
        (_, Some(p)) => return Err(deny(app, api, &AuthError::Forbidden, Some(p))),
        (_, None) if api => return Err(support::json_error(&AuthError::Unauthenticated)),
        (_, None) => {
            let setup = app.auth.needs_setup().unwrap_or(false);
            let target = if setup {
                "/setup".to_owned()
            } else {
                let here = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
                let next: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
                format!("/login?next={next}")
            };
            return Err(support::see_other(&target));
        }
    }
    if let Some(p) = who
        && p.must_change_password
        && matches!(p.via, Via::Session { .. })
        && route.access != Access::Public
        && !route.while_locked
    {
        return Err(if api {
            support::json_error(&AuthError::PasswordChangeRequired)
        } else {
            support::see_other("/password")
        });
    }
    if is_unsafe(req.method()) {
        let ok = match (route.access, who.map(|p| &p.via)) {
            (Access::Public, _) => login_csrf_ok(req, api),
            (_, Some(Via::Session { csrf, .. })) => session_csrf_ok(req, csrf, api),
            (_, Some(Via::Token)) => true,
            (_, None) => false,
        };
        if !ok {
            return Err(deny(app, api, &AuthError::Csrf, who));
        }
    }
    Ok(())
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The request's own origin, from Host (HTTP/1.1) or the URI authority (h2).
fn own_origin<B>(req: &Request<B>) -> Option<String> {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))?;
    Some(format!("https://{host}"))
}

/// Origin (or, failing that, Referer) names this site. Required for every state change
/// made with a cookie.
fn same_origin<B>(req: &Request<B>) -> bool {
    let Some(own) = own_origin(req) else {
        return false;
    };
    if let Some(origin) = req.headers().get(ORIGIN).and_then(|v| v.to_str().ok()) {
        return origin == own;
    }
    req.headers()
        .get(REFERER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|r| r == own || r.starts_with(&format!("{own}/")))
}

fn form_field<B: AsRef<[u8]>>(req: &Request<B>, name: &str) -> String {
    let is_form = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        support::Form::parse(req.body().as_ref())
            .get(name)
            .to_owned()
    } else {
        String::new()
    }
}

fn is_json<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Before a session exists (login, setup): pages use a double-submit cookie and the origin;
/// the JSON API needs a JSON body (which a cross-site form cannot send) and no foreign Origin.
fn login_csrf_ok<B: AsRef<[u8]>>(req: &Request<B>, api: bool) -> bool {
    if api {
        let foreign = req.headers().get(ORIGIN).is_some() && !same_origin(req);
        return is_json(req) && !foreign;
    }
    let cookie = support::cookie(req.headers(), support::LOGIN_CSRF_COOKIE).unwrap_or("");
    let field = form_field(req, "csrf");
    same_origin(req)
        && !cookie.is_empty()
        && secret::constant_time_eq(cookie.as_bytes(), field.as_bytes())
}

/// With a session: the origin, and the session's CSRF token in the form or `X-CSRF-Token`.
fn session_csrf_ok<B: AsRef<[u8]>>(req: &Request<B>, csrf: &str, api: bool) -> bool {
    let sent = if api {
        req.headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    } else {
        form_field(req, "csrf")
    };
    same_origin(req) && secret::constant_time_eq(sent.as_bytes(), csrf.as_bytes())
}

/// Plain HTTP: a 308 to the same path and query on HTTPS, nothing else.
pub fn redirect<B>(https_port: u16, req: &Request<B>) -> (RouteName, Response<Body>) {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .and_then(host_without_port);
    let Some(host) = host else {
        return (
            "redirect",
            text(
                StatusCode::BAD_REQUEST,
                "A valid Host header is required; this port only redirects to HTTPS.\n",
            ),
        );
    };
    let port = match https_port {
        443 => String::new(),
        p => format!(":{p}"),
    };
    let path = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let location = format!("https://{host}{port}{path}");
    let mut resp = text(StatusCode::PERMANENT_REDIRECT, "Use HTTPS.\n");
    match HeaderValue::try_from(location) {
        Ok(value) => {
            resp.headers_mut().insert(LOCATION, value);
            ("redirect", resp)
        }
        Err(_) => (
            "redirect",
            text(StatusCode::BAD_REQUEST, "Bad request target.\n"),
        ),
    }
}

/// The host part of a Host header, if it is a plain name, IPv4 or bracketed IPv6 address.
fn host_without_port(value: &str) -> Option<&str> {
    let host = if value.starts_with('[') {
        let end = value.find(']')?;
        let (host, rest) = value.split_at(end + 1);
        if !(rest.is_empty() || rest.starts_with(':')) {
            return None;
        }
        host[1..host.len() - 1].parse::<std::net::Ipv6Addr>().ok()?;
        host
    } else {
        value.split(':').next()?
    };
    let ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    ok.then_some(host)
}

pub fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    support::respond(status, "text/plain; charset=utf-8", body)
}
