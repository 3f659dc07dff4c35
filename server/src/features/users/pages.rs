//! The pages of users and sessions: setup, login, password change, users, audit. Forms post
//! back to the same path; a refused form is shown again with the reason and advice.

use http::StatusCode;
use perch_ui as ui;
use perch_ui::Template;

use crate::request::{
    Answer, ApiError, Ctx, Form, LOGIN_CSRF_COOKIE, Response, SESSION_COOKIE, clear_cookie,
    confirm, cookie, csrf, done_notice, html, nav, notice_for, parse_zone, query, role_field,
    safe_next, see_other, set_cookie, when_in, zone, zone_names,
};
use perch_auth::{AuditKind, AuthError, DEVICE_COOKIE, NewSession, Principal, Role, csrf_token};

/// After a successful login: the session cookie, and away from the login form.
fn signed_in(session: &NewSession, ctx: &Ctx, next: &str) -> Response {
    let target = if session.second_factor_required {
        let next: String = form_urlencoded::byte_serialize(safe_next(next).as_bytes()).collect();
        format!("/login/second-factor?next={next}")
    } else if session.must_change_password {
        "/password".to_owned()
    } else {
        safe_next(next).to_owned()
    };
    let mut resp = see_other(&target);
    set_cookie(
        &mut resp,
        SESSION_COOKIE,
        &session.id,
        ctx.app.session_lifetime_s,
    );
    super::api::remember_device(&mut resp, session);
    clear_cookie(&mut resp, LOGIN_CSRF_COOKIE);
    resp
}

/// A form shown before login, with its double-submit token in a cookie.
fn with_login_csrf(page: Answer, token: &str) -> Answer {
    let mut resp = page?;
    set_cookie(&mut resp, LOGIN_CSRF_COOKIE, token, 3600);
    Ok(resp)
}

/// The pre-login CSRF token: the one this browser already holds (so several open tabs
/// keep working), or a new one.
fn login_csrf(ctx: &Ctx) -> String {
    cookie(ctx.req.headers(), LOGIN_CSRF_COOKIE)
        .filter(|c| c.len() == 32 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .map_or_else(csrf_token, str::to_owned)
}

/// The form again, with the reason it was refused (and `Retry-After` when throttled).
fn refused(form: Answer, e: &ApiError) -> Answer {
    let mut resp = form?;
    e.add_retry_after(&mut resp);
    Ok(resp)
}

/// The setup form; after a refusal, what was typed (never the password) and why.
fn setup_page(ctx: &Ctx, status: StatusCode, refused: Option<&ApiError>, form: &Form) -> Answer {
    let csrf = login_csrf(ctx);
    let (notice, password_notice) = match refused {
        Some(e @ ApiError::Auth(AuthError::Policy(_))) => (ui::Notice::default(), notice_for(e)),
        Some(e) => (notice_for(e), ui::Notice::default()),
        None => Default::default(),
    };
    let page = ui::SetupPage {
        notice,
        csrf: csrf.clone(),
        name: form.get("name").to_owned(),
        code: form.get("code").trim().to_owned(),
        password_notice,
        min_len: ctx.app.auth.policy().min_len(),
    };
    with_login_csrf(html(status, page.render()), &csrf)
}

pub async fn setup_form(ctx: Ctx) -> Answer {
    if ctx.app.auth.needs_setup()? {
        setup_page(&ctx, StatusCode::OK, None, &Form::parse(b""))
    } else {
        Ok(see_other("/login"))
    }
}

pub async fn setup_submit(ctx: Ctx) -> Answer {
    let f = Form::parse(ctx.req.body());
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
        Ok(session) => Ok(signed_in(&session, &ctx, "/")),
        Err(AuthError::SetupDone) => Ok(see_other("/login")),
        Err(e) => {
            let e = ApiError::from(e);
            let form = setup_page(&ctx, e.status(), Some(&e), &f);
            refused(form, &e)
        }
    }
}

fn login_page(ctx: &Ctx, status: StatusCode, notice: ui::Notice, name: &str, next: &str) -> Answer {
    let csrf = login_csrf(ctx);
    let page = ui::LoginPage {
        notice,
        csrf: csrf.clone(),
        name: name.to_owned(),
        next: safe_next(next).to_owned(),
    };
    with_login_csrf(html(status, page.render()), &csrf)
}

pub async fn login_form(ctx: Ctx) -> Answer {
    if ctx.app.auth.needs_setup().unwrap_or(false) {
        return Ok(see_other("/setup"));
    }
    if ctx.who.is_some() {
        return Ok(see_other("/"));
    }
    let next = query(&ctx.req).get("next").to_owned();
    login_page(&ctx, StatusCode::OK, done_notice(&ctx), "", &next)
}

pub async fn login_submit(ctx: Ctx) -> Answer {
    let f = Form::parse(ctx.req.body());
    let device = cookie(ctx.req.headers(), DEVICE_COOKIE);
    match ctx
        .app
        .auth
        .login_from(f.get("name"), f.get("password"), ctx.client(), device)
        .await
    {
        Ok(session) => Ok(signed_in(&session, &ctx, f.get("next"))),
        Err(e) => {
            let e = ApiError::from(e);
            let form = login_page(
                &ctx,
                e.status(),
                notice_for(&e),
                f.get("name"),
                f.get("next"),
            );
            refused(form, &e)
        }
    }
}

pub async fn logout(ctx: Ctx) -> Answer {
    if let Some(who) = &ctx.who {
        ctx.app.auth.logout(who, ctx.client()).await?;
    }
    let mut resp = see_other("/login?done=logged-out");
    clear_cookie(&mut resp, SESSION_COOKIE);
    Ok(resp)
}

fn password_page(ctx: &Ctx, status: StatusCode, notice: ui::Notice) -> Answer {
    let page = ui::PasswordPage {
        nav: nav(ctx.who.as_ref()),
        notice,
        forced: ctx.who.as_ref().is_some_and(|p| p.must_change_password),
        min_len: ctx.app.auth.policy().min_len(),
        time_zone: zone(ctx).unwrap_or_default().to_owned(),
        zones: zone_names(),
    };
    html(status, page.render())
}

pub async fn password_form(ctx: Ctx) -> Answer {
    let notice = done_notice(&ctx);
    password_page(&ctx, StatusCode::OK, notice)
}

/// Saves the time zone the user reads times in.
pub async fn time_zone_submit(ctx: Ctx) -> Answer {
    let f = Form::parse(ctx.req.body());
    let saved = async {
        let zone = parse_zone(f.get("zone"))?;
        ctx.app
            .auth
            .set_time_zone(ctx.principal()?, zone.as_deref())
            .await?;
        Ok::<_, ApiError>(())
    }
    .await;
    match saved {
        Ok(()) => Ok(see_other("/password?done=time-zone")),
        Err(e) => password_page(&ctx, e.status(), notice_for(&e)),
    }
}

pub async fn password_submit(ctx: Ctx) -> Answer {
    let f = Form::parse(ctx.req.body());
    let who = ctx.principal()?.clone();
    let result = if f.get("new") == f.get("confirm") {
        ctx.app
            .auth
            .change_password(&who, f.get("current"), f.get("new"), ctx.client())
            .await
            .map_err(ApiError::from)
    } else {
        Err(ApiError::BadInput("The two new passwords differ.".into()))
    };
    match result {
        Ok(session) => {
            let mut resp = see_other("/?done=password");
            set_cookie(
                &mut resp,
                SESSION_COOKIE,
                &session.id,
                ctx.app.session_lifetime_s,
            );
            Ok(resp)
        }
        Err(e) => password_page(&ctx, e.status(), notice_for(&e)),
    }
}

fn users_page(ctx: &Ctx, status: StatusCode, notice: ui::Notice) -> Answer {
    users_page_with(ctx, status, notice, ui::NewUserForm::default())
}

fn users_page_with(
    ctx: &Ctx,
    status: StatusCode,
    notice: ui::Notice,
    new_user: ui::NewUserForm,
) -> Answer {
    let users = ctx.app.auth.users()?;
    let who = ctx.who.as_ref();
    let me = who.and_then(|p| p.user_id);
    let page = ui::UsersPage {
        nav: nav(who),
        csrf: csrf(who),
        notice,
        users: users
            .iter()
            .map(|u| ui::UserRow {
                id: u.id,
                name: u.name.clone(),
                role: u.role.to_string(),
                must_change_password: u.must_change_password,
                second_factor: u.second_factor,
                password_changed: when_in(zone(ctx), u.password_changed_at),
                is_self: Some(u.id) == me,
            })
            .collect(),
        roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
        min_len: ctx.app.auth.policy().min_len(),
        new_user,
    };
    html(status, page.render())
}

pub async fn users(ctx: Ctx) -> Answer {
    let notice = done_notice(&ctx);
    users_page(&ctx, StatusCode::OK, notice)
}

/// Runs an admin action on users; success goes back to the list with a message, a refusal
/// shows the list with the reason.
async fn user_action(
    ctx: Ctx,
    done: &'static str,
    action: impl AsyncFnOnce(&Ctx, &Principal, &Form) -> Result<(), ApiError>,
) -> Answer {
    let f = Form::parse(ctx.req.body());
    let who = ctx.principal()?.clone();
    match action(&ctx, &who, &f).await {
        Ok(()) => Ok(see_other(&format!("/users?done={done}"))),
        Err(e) => users_page(&ctx, e.status(), notice_for(&e)),
    }
}

/// Creates a user; a refusal shows the form again with what was typed (but the password)
/// and why, beside the field it concerns.
pub async fn user_create(ctx: Ctx) -> Answer {
    let f = Form::parse(ctx.req.body());
    let who = ctx.principal()?.clone();
    let created = async {
        let role = role_field(&f)?;
        ctx.app
            .auth
            .create_user(&who, f.get("name"), role, f.get("password"), ctx.client())
            .await?;
        Ok::<_, ApiError>(())
    }
    .await;
    match created {
        Ok(()) => Ok(see_other("/users?done=created")),
        Err(e) => {
            let field = match &e {
                ApiError::Auth(AuthError::NameTaken | AuthError::BadInput(_)) => "name",
                ApiError::Auth(AuthError::Policy(_)) => "password",
                _ => "form",
            };
            let new_user = ui::NewUserForm {
                name: f.get("name").to_owned(),
                role: f.get("role").to_owned(),
                error: Some(format!("The user was not created: {e}")),
                hint: e.suggestion().map(str::to_owned),
                field,
            };
            users_page_with(&ctx, e.status(), ui::Notice::default(), new_user)
        }
    }
}

pub async fn user_role(ctx: Ctx) -> Answer {
    user_action(ctx, "role", async |ctx, who, f| {
        let (id, role) = (ctx.id()?, role_field(f)?);
        Ok(ctx.app.auth.set_role(who, id, role, ctx.client()).await?)
    })
    .await
}

pub async fn user_reset(ctx: Ctx) -> Answer {
    user_action(ctx, "reset", async |ctx, who, f| {
        let id = ctx.id()?;
        Ok(ctx
            .app
            .auth
            .reset_password(who, id, f.get("password"), ctx.client())
            .await?)
    })
    .await
}

/// Asks before deleting a user.
pub async fn user_delete_confirm(ctx: Ctx) -> Answer {
    let id = ctx.id()?;
    if ctx.principal()?.user_id == Some(id) {
        return Err(AuthError::SelfDelete.into());
    }
    let user = ctx.app.auth.user(id)?;
    confirm(
        &ctx,
        format!("Delete {}?", user.name),
        format!("Delete the user {} ({})?", user.name, user.role),
        "They are signed out at once and cannot sign in again, and the API tokens they made stop working. The audit trail keeps what they did. This cannot be undone.",
        "Delete user",
        "/users",
    )
}

pub async fn user_delete(ctx: Ctx) -> Answer {
    user_action(ctx, "deleted", async |ctx, who, _| {
        let id = ctx.id()?;
        Ok(ctx.app.auth.delete_user(who, id, ctx.client()).await?)
    })
    .await
}

pub async fn audit(ctx: Ctx) -> Answer {
    let q = query(&ctx.req);
    let user = q.get("user").trim().to_owned();
    let kind = q.get("kind").to_owned();
    let events = ctx.app.auth.audit_trail(
        Some(user.as_str()).filter(|u| !u.is_empty()),
        AuditKind::parse(&kind),
        500,
    )?;
    let page = ui::AuditPage {
        nav: nav(ctx.who.as_ref()),
        rows: events
            .iter()
            .map(|e| ui::AuditRow {
                time: when_in(zone(&ctx), e.time),
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
    html(StatusCode::OK, page.render())
}
