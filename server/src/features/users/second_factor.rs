//! The second factor, as pages and as the JSON API: the second step of a sign-in, and the
//! Two-factor page where a user sets one up, renews their recovery codes or turns it off;
//! an Admin resets someone else's.

use http::StatusCode;
use perch_ui as ui;
use perch_ui::Template;
use serde::{Deserialize, Serialize};

use crate::request::{
    Answer, ApiError, Ctx, Form, Response, SESSION_COOKIE, cookie, csrf, html, json, json_body,
    nav, no_content, notice_for, query, safe_next, see_other, set_cookie,
};
use perch_auth::{DEVICE_COOKIE, Enrolment, Gate, NewSession};

/// A full session after the second step: its cookie, and the device cookie when new.
fn with_session(resp: &mut Response, ctx: &Ctx, session: &NewSession) {
    set_cookie(
        resp,
        SESSION_COOKIE,
        &session.id,
        ctx.app.session_lifetime_s,
    );
    super::api::remember_device(resp, session);
}

fn second_step_page(ctx: &Ctx, status: StatusCode, notice: ui::Notice, next: &str) -> Answer {
    let page = ui::SecondFactorPage {
        notice,
        csrf: csrf(ctx.who.as_ref()),
        next: next.to_owned(),
    };
    html(status, page.render())
}

pub async fn second_step_form(ctx: Ctx) -> Answer {
    let next = query(&ctx.req).get("next").to_owned();
    second_step_page(&ctx, StatusCode::OK, ui::Notice::default(), &next)
}

/// The code, from the form: the full session and on to where the user was going.
pub async fn second_step_submit(ctx: Ctx) -> Answer {
    let f = Form::parse(ctx.req.body());
    let device = cookie(ctx.req.headers(), DEVICE_COOKIE);
    let result = ctx
        .app
        .auth
        .complete_second_factor(ctx.principal()?, f.get("code"), ctx.client(), device)
        .await;
    match result {
        Ok(session) => {
            let target = match session.recovery_codes_left {
                Some(_) => "/two-factor?done=recovery",
                None if session.must_change_password => "/password",
                None => safe_next(f.get("next")),
            };
            let mut resp = see_other(target);
            with_session(&mut resp, &ctx, &session);
            Ok(resp)
        }
        Err(e) => {
            let e = ApiError::from(e);
            let mut resp = second_step_page(&ctx, e.status(), notice_for(&e), f.get("next"))?;
            e.add_retry_after(&mut resp);
            Ok(resp)
        }
    }
}

#[derive(Deserialize)]
struct CodeIn {
    code: String,
}

#[derive(Serialize)]
struct SessionOut {
    csrf: String,
    must_change_password: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    recovery_codes_left: Option<usize>,
}

/// `POST /v1/login/second-factor {code}`: the second step for the JSON API.
pub async fn api_second_step(ctx: Ctx) -> Answer {
    let input: CodeIn = json_body(ctx.req.body())?;
    let device = cookie(ctx.req.headers(), DEVICE_COOKIE);
    let session = ctx
        .app
        .auth
        .complete_second_factor(ctx.principal()?, &input.code, ctx.client(), device)
        .await?;
    let mut resp = json(
        StatusCode::OK,
        &SessionOut {
            csrf: session.csrf.clone(),
            must_change_password: session.must_change_password,
            recovery_codes_left: session.recovery_codes_left,
        },
    );
    with_session(&mut resp, &ctx, &session);
    Ok(resp)
}

fn two_factor_page(
    ctx: &Ctx,
    status: StatusCode,
    notice: ui::Notice,
    enrol: Option<&Enrolment>,
    recovery_codes: Option<Vec<String>>,
) -> Answer {
    let who = ctx.principal()?;
    let user = match who.user_id {
        Some(id) => Some(ctx.app.auth.user(id)?),
        None => None,
    };
    let enabled = user.as_ref().is_some_and(|u| u.second_factor);
    let page = ui::TwoFactorPage {
        nav: nav(Some(who)),
        csrf: csrf(Some(who)),
        notice,
        // Asked for at the start of this request, and not there yet.
        forced: who.gate == Gate::EnrolSecondFactor && !enabled,
        enabled,
        codes_left: user.and_then(|u| u.recovery_codes_left),
        enrol: enrol.map(|e| ui::Enrolling {
            qr_svg: ui::qr_svg(&e.uri).unwrap_or_default(),
            secret: e.secret.clone(),
            uri: e.uri.clone(),
        }),
        recovery_codes,
    };
    html(status, page.render())
}

pub async fn two_factor(ctx: Ctx) -> Answer {
    let notice = match query(&ctx.req).get("done") {
        "recovery" => ui::Notice {
            hint: Some(
                "You signed in with a recovery code, which now is used up. Make new ones below if few are left.".into(),
            ),
            ..Default::default()
        },
        "removed" => ui::Notice {
            success: Some("Two-factor sign-in is off for your account.".into()),
            ..Default::default()
        },
        _ => ui::Notice::default(),
    };
    two_factor_page(&ctx, StatusCode::OK, notice, None, None)
}

pub async fn two_factor_begin(ctx: Ctx) -> Answer {
    let enrolment = ctx.app.auth.begin_second_factor(ctx.principal()?).await?;
    two_factor_page(
        &ctx,
        StatusCode::OK,
        ui::Notice::default(),
        Some(&enrolment),
        None,
    )
}

/// The page after a change that made recovery codes: them, shown once; or the refusal.
fn with_codes(
    ctx: &Ctx,
    result: Result<Vec<String>, perch_auth::AuthError>,
    success: &str,
) -> Answer {
    match result {
        Ok(codes) => {
            let notice = ui::Notice {
                success: Some(success.into()),
                ..Default::default()
            };
            two_factor_page(ctx, StatusCode::OK, notice, None, Some(codes))
        }
        Err(e) => {
            let e = ApiError::from(e);
            two_factor_page(ctx, e.status(), notice_for(&e), None, None)
        }
    }
}

pub async fn two_factor_confirm(ctx: Ctx) -> Answer {
    let f = Form::parse(ctx.req.body());
    let result = ctx
        .app
        .auth
        .confirm_second_factor(ctx.principal()?, f.get("code"), ctx.client())
        .await;
    with_codes(&ctx, result, "Two-factor sign-in is on.")
}

pub async fn two_factor_renew(ctx: Ctx) -> Answer {
    let f = Form::parse(ctx.req.body());
    let result = ctx
        .app
        .auth
        .renew_recovery_codes(ctx.principal()?, f.get("code"), ctx.client())
        .await;
    with_codes(
        &ctx,
        result,
        "New recovery codes; the old ones no longer work.",
    )
}

pub async fn two_factor_remove(ctx: Ctx) -> Answer {
    let f = Form::parse(ctx.req.body());
    let result = ctx
        .app
        .auth
        .remove_second_factor(ctx.principal()?, f.get("code"), ctx.client())
        .await;
    match result {
        Ok(()) => Ok(see_other("/two-factor?done=removed")),
        Err(e) => {
            let e = ApiError::from(e);
            two_factor_page(&ctx, e.status(), notice_for(&e), None, None)
        }
    }
}

/// An Admin resets another user's second factor, from the Users page.
pub async fn reset_page(ctx: Ctx) -> Answer {
    ctx.app
        .auth
        .reset_second_factor(ctx.principal()?, ctx.id()?, ctx.client())
        .await?;
    Ok(see_other("/users?done=second_factor_reset"))
}

#[derive(Serialize)]
struct EnrolmentOut<'a> {
    secret: &'a str,
    uri: &'a str,
}

#[derive(Serialize)]
struct CodesOut {
    recovery_codes: Vec<String>,
}

/// `POST /v1/me/second-factor`: a secret to enrol (confirmed next with a code from it).
pub async fn api_begin(ctx: Ctx) -> Answer {
    let e = ctx.app.auth.begin_second_factor(ctx.principal()?).await?;
    Ok(json(
        StatusCode::OK,
        &EnrolmentOut {
            secret: &e.secret,
            uri: &e.uri,
        },
    ))
}

/// `POST /v1/me/second-factor/confirm {code}`: on, with the recovery codes (shown once).
pub async fn api_confirm(ctx: Ctx) -> Answer {
    let input: CodeIn = json_body(ctx.req.body())?;
    let recovery_codes = ctx
        .app
        .auth
        .confirm_second_factor(ctx.principal()?, &input.code, ctx.client())
        .await?;
    Ok(json(StatusCode::OK, &CodesOut { recovery_codes }))
}

/// `POST /v1/me/second-factor/recovery-codes {code}`: new ones; the old ones are void.
pub async fn api_renew(ctx: Ctx) -> Answer {
    let input: CodeIn = json_body(ctx.req.body())?;
    let recovery_codes = ctx
        .app
        .auth
        .renew_recovery_codes(ctx.principal()?, &input.code, ctx.client())
        .await?;
    Ok(json(StatusCode::OK, &CodesOut { recovery_codes }))
}

/// `POST /v1/me/second-factor/remove {code}`: off, with a current code.
pub async fn api_remove(ctx: Ctx) -> Answer {
    let input: CodeIn = json_body(ctx.req.body())?;
    ctx.app
        .auth
        .remove_second_factor(ctx.principal()?, &input.code, ctx.client())
        .await?;
    Ok(no_content())
}

/// `DELETE /v1/users/{id}/second-factor`: an Admin resets someone else's.
pub async fn api_reset(ctx: Ctx) -> Answer {
    ctx.app
        .auth
        .reset_second_factor(ctx.principal()?, ctx.id()?, ctx.client())
        .await?;
    Ok(no_content())
}
