//! The HTML pages: setup, login, password change, users, tokens, audit. Forms post back to
//! the same path; errors re-render the form with the reason and advice.

use http::StatusCode;
use perch_ui as ui;
use perch_ui::Template;

use super::support::{self, Form, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use crate::auth::{AuditKind, AuthError, NewSession, Principal, Role, Via, secret};
use crate::http::Body;
use crate::http::routes::{Ctx, Handled};

type Response = http::Response<Body>;

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
        locked: p.must_change_password,
    })
}

pub fn message(
    who: Option<&Principal>,
    status: StatusCode,
    title: &str,
    message: &str,
) -> Response {
    support::html(
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

/// An error as a page, with its status.
pub fn error_page(who: Option<&Principal>, e: &AuthError) -> Response {
    if matches!(e, AuthError::Store(_) | AuthError::Hash(_)) {
        tracing::error!(error = ?e, "request failed");
    }
    let title = match e.status() {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        s if s.is_server_error() => "Something went wrong",
        _ => "Cannot do that",
    };
    let mut resp = message(who, e.status(), title, &e.to_string());
    support::add_retry_after(&mut resp, e);
    resp
}

pub(super) fn notice_for(e: &AuthError) -> ui::Notice {
    let hint = match e {
        AuthError::Policy(r) => r.suggestion.clone(),
        _ => None,
    };
    ui::Notice {
        error: Some(e.to_string()),
        hint,
        success: None,
    }
}

pub(super) fn done_notice(ctx: &Ctx) -> ui::Notice {
    let done = support::query(&ctx.req).get("done").to_owned();
    let success = match done.as_str() {
        "created" => Some("User created. They must choose their own password at first login."),
        "role" => Some("Role changed. The user's sessions have ended."),
        "reset" => Some(
            "Password reset. The user must change it at next login; their sessions have ended.",
        ),
        "deleted" => Some("User deleted."),
        "revoked" => Some("Token revoked."),
        "node-removed" => Some("Node removed; its token no longer works."),
        _ => None,
    };
    ui::Notice {
        success: success.map(str::to_owned),
        ..ui::Notice::default()
    }
}

/// After a successful login: the session cookie, and away from the login form.
fn signed_in(session: &NewSession, ctx: &Ctx, next: &str) -> Response {
    let target = if session.must_change_password {
        "/password"
    } else {
        support::safe_next(next)
    };
    let mut resp = support::see_other(target);
    support::set_cookie(
        &mut resp,
        SESSION_COOKIE,
        &session.id,
        ctx.app.session_lifetime_s,
    );
    support::clear_cookie(&mut resp, LOGIN_CSRF_COOKIE);
    resp
}

pub(super) fn form(ctx: &Ctx) -> Form {
    Form::parse(ctx.req.body())
}

/// A fresh double-submit token for a form shown before login.
fn with_login_csrf(mut resp: Response, token: &str) -> Response {
    support::set_cookie(&mut resp, LOGIN_CSRF_COOKIE, token, 3600);
    resp
}

/// The pre-login CSRF token: the one this browser already holds (so several open tabs
/// keep working), or a new one.
fn login_csrf(ctx: &Ctx) -> String {
    support::cookie(ctx.req.headers(), LOGIN_CSRF_COOKIE)
        .filter(|c| c.len() == 32 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .map_or_else(|| secret::hex(&secret::random_bytes::<16>()), str::to_owned)
}

fn setup_page(ctx: &Ctx, status: StatusCode, notice: ui::Notice, name: &str) -> Response {
    let csrf = login_csrf(ctx);
    let page = ui::SetupPage {
        notice,
        csrf: csrf.clone(),
        name: name.to_owned(),
        min_len: ctx.app.auth.policy().min_len(),
    };
    with_login_csrf(support::html(status, page.render()), &csrf)
}

pub fn setup_form(ctx: Ctx) -> Handled {
    Box::pin(async move {
        match ctx.app.auth.needs_setup() {
            Ok(true) => setup_page(&ctx, StatusCode::OK, ui::Notice::default(), ""),
            Ok(false) => support::see_other("/login"),
            Err(e) => error_page(None, &e),
        }
    })
}

pub fn setup_submit(ctx: Ctx) -> Handled {
    Box::pin(async move {
        let f = form(&ctx);
        let result = ctx
            .app
            .auth
            .complete_setup(
                f.get("code"),
                f.get("name"),
                f.get("password"),
                ctx.client(),
            )
            .await;
        match result {
            Ok(session) => signed_in(&session, &ctx, "/"),
            Err(AuthError::SetupDone) => support::see_other("/login"),
            Err(e) => {
                let mut resp = setup_page(&ctx, e.status(), notice_for(&e), f.get("name"));
                support::add_retry_after(&mut resp, &e);
                resp
            }
        }
    })
}

fn login_page(
    ctx: &Ctx,
    status: StatusCode,
    notice: ui::Notice,
    name: &str,
    next: &str,
) -> Response {
    let csrf = login_csrf(ctx);
    let page = ui::LoginPage {
        notice,
        csrf: csrf.clone(),
        name: name.to_owned(),
        next: support::safe_next(next).to_owned(),
    };
    with_login_csrf(support::html(status, page.render()), &csrf)
}

pub fn login_form(ctx: Ctx) -> Handled {
    Box::pin(async move {
        if ctx.app.auth.needs_setup().unwrap_or(false) {
            return support::see_other("/setup");
        }
        if ctx.who.is_some() {
            return support::see_other("/");
        }
        let next = support::query(&ctx.req).get("next").to_owned();
        login_page(&ctx, StatusCode::OK, ui::Notice::default(), "", &next)
    })
}

pub fn login_submit(ctx: Ctx) -> Handled {
    Box::pin(async move {
        let f = form(&ctx);
        match ctx
            .app
            .auth
            .login(f.get("name"), f.get("password"), ctx.client())
            .await
        {
            Ok(session) => signed_in(&session, &ctx, f.get("next")),
            Err(e) => {
                let mut resp = login_page(
                    &ctx,
                    e.status(),
                    notice_for(&e),
                    f.get("name"),
                    f.get("next"),
                );
                support::add_retry_after(&mut resp, &e);
                resp
            }
        }
    })
}

pub fn logout(ctx: Ctx) -> Handled {
    Box::pin(async move {
        if let Some(who) = &ctx.who
            && let Err(e) = ctx.app.auth.logout(who, ctx.client()).await
        {
            return error_page(ctx.who.as_ref(), &e);
        }
        let mut resp = support::see_other("/login");
        support::clear_cookie(&mut resp, SESSION_COOKIE);
        resp
    })
}

fn password_page(ctx: &Ctx, status: StatusCode, notice: ui::Notice) -> Response {
    let page = ui::PasswordPage {
        nav: nav(ctx.who.as_ref()),
        notice,
        forced: ctx.who.as_ref().is_some_and(|p| p.must_change_password),
        min_len: ctx.app.auth.policy().min_len(),
    };
    support::html(status, page.render())
}

pub fn password_form(ctx: Ctx) -> Handled {
    Box::pin(async move { password_page(&ctx, StatusCode::OK, ui::Notice::default()) })
}

pub fn password_submit(ctx: Ctx) -> Handled {
    Box::pin(async move {
        let f = form(&ctx);
        let who = match ctx.principal() {
            Ok(p) => p.clone(),
            Err(e) => return error_page(None, &e),
        };
        if f.get("new") != f.get("confirm") {
            let e = AuthError::BadInput("The two new passwords differ.".into());
            return password_page(&ctx, e.status(), notice_for(&e));
        }
        match ctx
            .app
            .auth
            .change_password(&who, f.get("current"), f.get("new"), ctx.client())
            .await
        {
            Ok(session) => {
                let mut resp = support::see_other("/");
                support::set_cookie(
                    &mut resp,
                    SESSION_COOKIE,
                    &session.id,
                    ctx.app.session_lifetime_s,
                );
                resp
            }
            Err(e) => password_page(&ctx, e.status(), notice_for(&e)),
        }
    })
}

fn users_page(ctx: &Ctx, status: StatusCode, notice: ui::Notice) -> Response {
    let users = match ctx.app.auth.users() {
        Ok(u) => u,
        Err(e) => return error_page(ctx.who.as_ref(), &e),
    };
    let me = ctx.who.as_ref().and_then(|p| p.user_id);
    let page = ui::UsersPage {
        nav: nav(ctx.who.as_ref()),
        csrf: nav(ctx.who.as_ref()).map(|n| n.csrf).unwrap_or_default(),
        notice,
        users: users
            .iter()
            .map(|u| ui::UserRow {
                id: u.id,
                name: u.name.clone(),
                role: u.role.to_string(),
                must_change_password: u.must_change_password,
                password_changed: support::when(u.password_changed_at),
                is_self: Some(u.id) == me,
            })
            .collect(),
        roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
        min_len: ctx.app.auth.policy().min_len(),
    };
    support::html(status, page.render())
}

pub fn users(ctx: Ctx) -> Handled {
    Box::pin(async move {
        let notice = done_notice(&ctx);
        users_page(&ctx, StatusCode::OK, notice)
    })
}

/// Runs an admin action on users; success goes back to the list with a message.
async fn user_action(
    ctx: Ctx,
    done: &'static str,
    action: impl AsyncFnOnce(&Ctx, &Principal, &Form) -> Result<(), AuthError>,
) -> Response {
    let f = form(&ctx);
    let who = match ctx.principal() {
        Ok(p) => p.clone(),
        Err(e) => return error_page(None, &e),
    };
    match action(&ctx, &who, &f).await {
        Ok(()) => support::see_other(&format!("/users?done={done}")),
        Err(e) => users_page(&ctx, e.status(), notice_for(&e)),
    }
}

fn role_field(f: &Form) -> Result<Role, AuthError> {
    Role::parse(f.get("role"))
        .ok_or_else(|| AuthError::BadInput("the role is viewer, editor or admin".into()))
}

pub fn user_create(ctx: Ctx) -> Handled {
    Box::pin(user_action(ctx, "created", async |ctx, who, f| {
        let role = role_field(f)?;
        ctx.app
            .auth
            .create_user(who, f.get("name"), role, f.get("password"), ctx.client())
            .await
            .map(|_| ())
    }))
}

pub fn user_role(ctx: Ctx) -> Handled {
    Box::pin(user_action(ctx, "role", async |ctx, who, f| {
        ctx.app
            .auth
            .set_role(who, ctx.id()?, role_field(f)?, ctx.client())
            .await
    }))
}

pub fn user_reset(ctx: Ctx) -> Handled {
    Box::pin(user_action(ctx, "reset", async |ctx, who, f| {
        ctx.app
            .auth
            .reset_password(who, ctx.id()?, f.get("password"), ctx.client())
            .await
    }))
}

pub fn user_delete(ctx: Ctx) -> Handled {
    Box::pin(user_action(ctx, "deleted", async |ctx, who, _| {
        ctx.app.auth.delete_user(who, ctx.id()?, ctx.client()).await
    }))
}

fn tokens_page(
    ctx: &Ctx,
    status: StatusCode,
    notice: ui::Notice,
    new_secret: Option<String>,
) -> Response {
    let tokens = match ctx.app.auth.tokens() {
        Ok(t) => t,
        Err(e) => return error_page(ctx.who.as_ref(), &e),
    };
    let page = ui::TokensPage {
        nav: nav(ctx.who.as_ref()),
        csrf: nav(ctx.who.as_ref()).map(|n| n.csrf).unwrap_or_default(),
        notice,
        tokens: tokens
            .iter()
            .map(|t| ui::TokenRow {
                id: t.id,
                name: t.name.clone(),
                role: t.role.to_string(),
                created_by: t.created_by.clone(),
                created: support::when(t.created_at),
                expires: t.expires_at.map_or("never".into(), support::when),
                last_used: t.last_used.map_or("never".into(), support::when),
            })
            .collect(),
        roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
        new_secret,
    };
    support::html(status, page.render())
}

pub fn tokens(ctx: Ctx) -> Handled {
    Box::pin(async move {
        let notice = done_notice(&ctx);
        tokens_page(&ctx, StatusCode::OK, notice, None)
    })
}

pub fn token_create(ctx: Ctx) -> Handled {
    Box::pin(async move {
        let f = form(&ctx);
        let result = async {
            let who = ctx.principal()?.clone();
            let role = role_field(&f)?;
            let days = f.get("days").trim();
            let lifetime = if days.is_empty() {
                None
            } else {
                let d: u64 = days
                    .parse()
                    .ok()
                    .filter(|d| (1..=3650).contains(d))
                    .ok_or_else(|| {
                        AuthError::BadInput(
                            "expiry is a number of days from 1 to 3650, or empty".into(),
                        )
                    })?;
                Some(std::time::Duration::from_secs(d * 86_400))
            };
            ctx.app
                .auth
                .create_token(&who, f.get("name"), role, lifetime, ctx.client())
                .await
        }
        .await;
        match result {
            Ok((_, secret)) => {
                tokens_page(&ctx, StatusCode::OK, ui::Notice::default(), Some(secret))
            }
            Err(e) => tokens_page(&ctx, e.status(), notice_for(&e), None),
        }
    })
}

pub fn token_revoke(ctx: Ctx) -> Handled {
    Box::pin(async move {
        let result = async {
            let who = ctx.principal()?.clone();
            ctx.app
                .auth
                .revoke_token(&who, ctx.id()?, ctx.client())
                .await
        }
        .await;
        match result {
            Ok(()) => support::see_other("/tokens?done=revoked"),
            Err(e) => tokens_page(&ctx, e.status(), notice_for(&e), None),
        }
    })
}

pub fn audit(ctx: Ctx) -> Handled {
    Box::pin(async move {
        let q = support::query(&ctx.req);
        let user = q.get("user").trim().to_owned();
        let kind = q.get("kind").to_owned();
        let events = ctx.app.auth.audit_trail(
            Some(user.as_str()).filter(|u| !u.is_empty()),
            AuditKind::parse(&kind),
            500,
        );
        let events = match events {
            Ok(e) => e,
            Err(e) => return error_page(ctx.who.as_ref(), &e),
        };
        let page = ui::AuditPage {
            nav: nav(ctx.who.as_ref()),
            rows: events
                .iter()
                .map(|e| ui::AuditRow {
                    time: support::when(e.time),
                    kind: e.kind.as_str().to_owned(),
                    actor: e.actor.clone(),
                    subject: e.subject.clone(),
                    client: e.client.clone(),
                    detail: e.detail.clone(),
                })
                .collect(),
            kinds: AuditKind::ALL.iter().map(|k| k.as_str()).collect(),
            user,
            kind,
        };
        support::html(StatusCode::OK, page.render())
    })
}

pub fn asset(ctx: Ctx) -> Handled {
    Box::pin(async move {
        let name = ctx.params.first().map_or("", String::as_str);
        match ui::asset(name) {
            Some((bytes, content_type)) => {
                let mut resp = support::respond(StatusCode::OK, content_type, bytes);
                resp.headers_mut().insert(
                    http::header::CACHE_CONTROL,
                    http::HeaderValue::from_static("public, max-age=3600"),
                );
                resp
            }
            None => message(
                None,
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such file.",
            ),
        }
    })
}
