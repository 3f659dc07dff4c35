//! The JSON API of users and sessions: setup, login, logout, the caller's own record and
//! password, user management and the audit trail, for scripts and `perch-admin`.

use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::request::{
    Answer, ApiError, Ctx, Response, SESSION_COOKIE, clear_cookie, cookie, json, json_body,
    no_content, parse_zone, query, set_cookie,
};
use perch_auth::{
    AuditEvent, AuditKind, DEVICE_COOKIE, DEVICE_LIFETIME, NewSession, Role, UserView, Via,
};

#[derive(Deserialize)]
struct SetupIn {
    code: String,
    name: String,
    password: String,
}

#[derive(Deserialize)]
struct LoginIn {
    name: String,
    password: String,
}

#[derive(Serialize)]
struct SessionOut {
    csrf: String,
    must_change_password: bool,
    /// The password was right; `POST /v1/login/second-factor {code}` comes next.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    second_factor_required: bool,
}

fn session_response(ctx: &Ctx, status: StatusCode, session: &NewSession) -> Response {
    let mut resp = json(
        status,
        &SessionOut {
            csrf: session.csrf.clone(),
            must_change_password: session.must_change_password,
            second_factor_required: session.second_factor_required,
        },
    );
    set_cookie(
        &mut resp,
        SESSION_COOKIE,
        &session.id,
        ctx.app.session_lifetime_s,
    );
    remember_device(&mut resp, session);
    resp
}

/// Sets a new device cookie when the login issued one.
pub(super) fn remember_device(resp: &mut Response, session: &NewSession) {
    if let Some(device) = &session.device {
        set_cookie(resp, DEVICE_COOKIE, device, DEVICE_LIFETIME as u64);
    }
}

pub async fn setup(ctx: Ctx) -> Answer {
    let input: SetupIn = json_body(ctx.req.body())?;
    let session = ctx
        .app
        .auth
        .complete_setup(&input.code, &input.name, &input.password, ctx.client())
        .await?;
    Ok(session_response(&ctx, StatusCode::CREATED, &session))
}

pub async fn login(ctx: Ctx) -> Answer {
    let input: LoginIn = json_body(ctx.req.body())?;
    let device = cookie(ctx.req.headers(), DEVICE_COOKIE);
    let session = ctx
        .app
        .auth
        .login_from(&input.name, &input.password, ctx.client(), device)
        .await?;
    Ok(session_response(&ctx, StatusCode::OK, &session))
}

pub async fn logout(ctx: Ctx) -> Answer {
    ctx.app.auth.logout(ctx.principal()?, ctx.client()).await?;
    let mut resp = no_content();
    clear_cookie(&mut resp, SESSION_COOKIE);
    Ok(resp)
}

#[derive(Serialize)]
struct MeOut<'a> {
    name: &'a str,
    role: Role,
    must_change_password: bool,
    kind: &'static str,
    /// The IANA time zone the pages show times in; null: UTC.
    time_zone: Option<&'a str>,
}

pub async fn me(ctx: Ctx) -> Answer {
    let p = ctx.principal()?;
    Ok(json(
        StatusCode::OK,
        &MeOut {
            name: &p.name,
            role: p.role,
            must_change_password: p.must_change_password,
            kind: match p.via {
                Via::Session { .. } => "session",
                Via::Token { .. } => "token",
                Via::Node { .. } => "node",
                Via::Enroll { .. } => "enroll",
            },
            time_zone: p.time_zone.as_deref(),
        },
    ))
}

#[derive(Deserialize)]
struct TimeZoneIn {
    /// An IANA name (`Europe/Berlin`); empty or `UTC` for UTC.
    #[serde(default)]
    zone: String,
}

/// Sets the time zone the pages show the caller's times in.
pub async fn set_time_zone(ctx: Ctx) -> Answer {
    let input: TimeZoneIn = json_body(ctx.req.body())?;
    let zone = parse_zone(&input.zone)?;
    ctx.app
        .auth
        .set_time_zone(ctx.principal()?, zone.as_deref())
        .await?;
    Ok(no_content())
}

#[derive(Deserialize)]
struct PasswordIn {
    current: String,
    new: String,
}

pub async fn change_password(ctx: Ctx) -> Answer {
    let input: PasswordIn = json_body(ctx.req.body())?;
    let session = ctx
        .app
        .auth
        .change_password(ctx.principal()?, &input.current, &input.new, ctx.client())
        .await?;
    Ok(session_response(&ctx, StatusCode::OK, &session))
}

#[derive(Serialize)]
struct UsersOut {
    users: Vec<UserView>,
}

pub async fn users(ctx: Ctx) -> Answer {
    let users = ctx.app.auth.users()?;
    Ok(json(StatusCode::OK, &UsersOut { users }))
}

#[derive(Deserialize)]
struct UserIn {
    name: String,
    role: Role,
    password: String,
}

pub async fn user_create(ctx: Ctx) -> Answer {
    let input: UserIn = json_body(ctx.req.body())?;
    let user = ctx
        .app
        .auth
        .create_user(
            ctx.principal()?,
            &input.name,
            input.role,
            &input.password,
            ctx.client(),
        )
        .await?;
    Ok(json(StatusCode::CREATED, &user))
}

#[derive(Deserialize)]
struct RoleIn {
    role: Role,
}

pub async fn user_role(ctx: Ctx) -> Answer {
    let input: RoleIn = json_body(ctx.req.body())?;
    ctx.app
        .auth
        .set_role(ctx.principal()?, ctx.id()?, input.role, ctx.client())
        .await?;
    Ok(no_content())
}

#[derive(Deserialize)]
struct ResetIn {
    password: String,
}

pub async fn user_reset(ctx: Ctx) -> Answer {
    let input: ResetIn = json_body(ctx.req.body())?;
    ctx.app
        .auth
        .reset_password(ctx.principal()?, ctx.id()?, &input.password, ctx.client())
        .await?;
    Ok(no_content())
}

pub async fn user_delete(ctx: Ctx) -> Answer {
    ctx.app
        .auth
        .delete_user(ctx.principal()?, ctx.id()?, ctx.client())
        .await?;
    Ok(no_content())
}

#[derive(Serialize)]
struct AuditOut {
    events: Vec<AuditEvent>,
}

pub async fn audit(ctx: Ctx) -> Answer {
    let q = query(&ctx.req);
    let kind = match q.get("kind") {
        "" => None,
        k => Some(
            AuditKind::parse(k)
                .ok_or_else(|| ApiError::BadInput(format!("unknown audit kind '{k}'")))?,
        ),
    };
    let user = Some(q.get("user")).filter(|u| !u.is_empty());
    let limit = q.get("limit").parse().unwrap_or(200).clamp(1, 10_000);
    let events = ctx.app.auth.audit_trail(user, kind, limit)?;
    Ok(json(StatusCode::OK, &AuditOut { events }))
}
