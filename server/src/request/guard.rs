//! The checks in front of every handler and every proxied route, used by the router and the
//! reverse proxy alike: who is calling ([`authenticate`]); whether they may use the route
//! ([`Guard::admit`], from the headers alone, before a byte of the body is read); and, for a
//! state change made with a cookie, whether it came from this site's own page
//! ([`Guard::check_csrf`], which may read a form field of the body).

use http::header::{ORIGIN, REFERER};
use http::{Method, Request};
use perch_auth::{AuthError, Gate, Principal, Role, Via, constant_time_eq};

use super::input::{LOGIN_CSRF_COOKIE, SESSION_COOKIE, bearer, cookie, has_content_type};
use super::{ApiError, App, Face, Form, request_host};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Signed in with at least this role (session or API token).
    Role(Role),
    /// An Admin, or any API token (for Prometheus scrapers).
    Metrics,
    /// An Editor or Admin, or an enrollment token (which can do nothing else).
    Enroll,
    /// A node token, for the node's own record.
    Node,
    /// Remote write: an Editor or Admin, or a node token (whose node is stamped on every
    /// series).
    Write,
}

/// A route's access rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guard {
    pub access: Access,
    /// Still reachable while the user must change their password or set up a second
    /// factor.
    pub while_locked: bool,
    /// Reachable between the password and the second factor's code (the second step
    /// itself, logout).
    pub second_step: bool,
}

/// The session cookie, else a bearer token: the caller, or nobody.
pub fn authenticate<B>(app: &App, req: &Request<B>) -> Result<Option<Principal>, AuthError> {
    if let Some(id) = cookie(req.headers(), SESSION_COOKIE)
        && let Some(p) = app.auth.session(id)?
    {
        return Ok(Some(p));
    }
    match bearer(req.headers()) {
        Some(token) => app.auth.bearer(token),
        None => Ok(None),
    }
}

impl Guard {
    pub const fn new(access: Access) -> Self {
        Self {
            access,
            while_locked: false,
            second_step: false,
        }
    }

    /// Whether `who` may use the route, from the request's head alone. Refused: nobody
    /// signed in (pages go to the login form, or to setup before there is an admin), too low
    /// a role, or a user who must first change their password (unless the route is
    /// `while_locked`).
    pub fn admit<B>(
        &self,
        app: &App,
        who: Option<&Principal>,
        req: &Request<B>,
        face: Face,
    ) -> Result<(), ApiError> {
        if let Some(p) = who
            && matches!(p.via, Via::Session { .. })
            && self.access != Access::Public
        {
            // Half signed in: the second step alone.
            if p.gate == Gate::SecondFactor && !self.second_step {
                return Err(ApiError::SecondFactorRequired);
            }
            if p.must_change_password && !self.while_locked {
                return Err(ApiError::PasswordChangeRequired);
            }
            if p.gate == Gate::EnrolSecondFactor && !self.while_locked {
                return Err(ApiError::SecondFactorEnrolmentRequired);
            }
        }
        let editor = |p: &Principal| p.is_user() && p.role >= Role::Editor;
        match (self.access, who) {
            (Access::Public, _) => Ok(()),
            (Access::Metrics, Some(p))
                if p.is_user() && (p.role == Role::Admin || matches!(p.via, Via::Token { .. })) =>
            {
                Ok(())
            }
            (Access::Role(min), Some(p)) if p.is_user() && p.role >= min => Ok(()),
            (Access::Enroll, Some(p)) if editor(p) || matches!(p.via, Via::Enroll { .. }) => Ok(()),
            (Access::Node, Some(p)) if matches!(p.via, Via::Node { .. }) => Ok(()),
            (Access::Write, Some(p)) if editor(p) || matches!(p.via, Via::Node { .. }) => Ok(()),
            (access, Some(p)) => Err(ApiError::NotAllowed(not_allowed(access, p))),
            (_, None) => Err(ApiError::Unauthenticated {
                sign_in: (face == Face::Page).then(|| sign_in(app, req)),
            }),
        }
    }

    /// For a state change: with a session, this site's origin and the session's CSRF token
    /// (a form field, or `X-CSRF-Token` for the API); before login, the pre-login double
    /// submit pair (pages) or a JSON body from no foreign origin (API). Bearer tokens need
    /// nothing: browsers do not send them on their own.
    pub fn check_csrf<B: AsRef<[u8]>>(
        &self,
        who: Option<&Principal>,
        req: &Request<B>,
        face: Face,
    ) -> Result<(), ApiError> {
        if !is_unsafe(req.method()) {
            return Ok(());
        }
        let api = face != Face::Page;
        let ok = match (self.access, who.map(|p| &p.via)) {
            (Access::Public, _) => login_csrf_ok(req, api),
            (_, Some(Via::Session { csrf, .. })) => session_csrf_ok(req, csrf, api),
            (_, Some(Via::Token { .. } | Via::Node { .. } | Via::Enroll { .. })) => true,
            (_, None) => false,
        };
        if ok { Ok(()) } else { Err(ApiError::Csrf) }
    }

    /// For the reverse proxy, whose upstreams have forms of their own without Perch's CSRF
    /// token: a state change made with a session (its cookie is `SameSite=Strict`) must come
    /// from this site's own origin.
    pub fn check_proxy_csrf<B>(who: Option<&Principal>, req: &Request<B>) -> Result<(), ApiError> {
        let ok = !is_unsafe(req.method())
            || !matches!(who.map(|p| &p.via), Some(Via::Session { .. }))
            || same_origin(req);
        if ok { Ok(()) } else { Err(ApiError::Csrf) }
    }
}

/// Where a browser goes to sign in: setup while there is no admin, else the login form,
/// which comes back here (to the start page after a refused state change).
fn sign_in<B>(app: &App, req: &Request<B>) -> String {
    if app.auth.needs_setup().unwrap_or(false) {
        return "/setup".to_owned();
    }
    let here = if is_unsafe(req.method()) {
        "/"
    } else {
        req.uri().path_and_query().map_or("/", |pq| pq.as_str())
    };
    let next: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
    format!("/login?next={next}")
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Origin (or, failing that, Referer) names this site, as the request addressed it (Host,
/// or the h2 authority). Required for every state change made with a cookie.
fn same_origin<B>(req: &Request<B>) -> bool {
    let Some(host) = request_host(req) else {
        return false;
    };
    let own = format!("https://{host}");
    if let Some(origin) = req.headers().get(ORIGIN).and_then(|v| v.to_str().ok()) {
        return origin == own;
    }
    req.headers()
        .get(REFERER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|r| r == own || r.starts_with(&format!("{own}/")))
}

fn form_field<B: AsRef<[u8]>>(req: &Request<B>, name: &str) -> String {
    if has_content_type(req, "application/x-www-form-urlencoded") {
        Form::parse(req.body().as_ref()).get(name).to_owned()
    } else {
        String::new()
    }
}

/// Before a session exists (login, setup): pages use a double-submit cookie and the origin;
/// the JSON API needs a JSON body (which a cross-site form cannot send) and no foreign Origin.
fn login_csrf_ok<B: AsRef<[u8]>>(req: &Request<B>, api: bool) -> bool {
    if api {
        let foreign = req.headers().get(ORIGIN).is_some() && !same_origin(req);
        return has_content_type(req, "application/json") && !foreign;
    }
    let cookie = cookie(req.headers(), LOGIN_CSRF_COOKIE).unwrap_or("");
    let field = form_field(req, "csrf");
    same_origin(req) && !cookie.is_empty() && constant_time_eq(cookie.as_bytes(), field.as_bytes())
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
    same_origin(req) && constant_time_eq(sent.as_bytes(), csrf.as_bytes())
}

/// Why `who` may not use a route of `access`: what it needs, and who can grant it.
fn not_allowed(access: Access, who: &Principal) -> String {
    let grant = "an admin can change your role on the Users page";
    match access {
        Access::Role(min) if who.is_user() => format!(
            "this needs the {min} role or higher; you are {}: {grant}",
            who.role
        ),
        Access::Metrics => {
            "the server's own metrics need an Admin, or an API token".to_owned()
        }
        Access::Enroll => {
            "enrolling a machine needs the Editor role or higher, or an enrollment token from the Add node page"
                .to_owned()
        }
        Access::Write => {
            "writing metrics needs a node token (perch-admin), or the Editor role or higher".to_owned()
        }
        Access::Node => "this is for a node's own token (perch-admin)".to_owned(),
        _ => "a node or enrollment token is only for sending metrics and enrolling; sign in as a user".to_owned(),
    }
}
