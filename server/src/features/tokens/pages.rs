//! The tokens page: the list, a form to create one (its secret shown once), revoking.

use http::StatusCode;
use perch_ui as ui;
use perch_ui::Template;

use crate::request::{
    Answer, ApiError, Ctx, Form, confirm, csrf, done_notice, html, nav, notice_for, role_field,
    see_other, when_in, zone,
};
use perch_auth::Role;

fn page(ctx: &Ctx, status: StatusCode, notice: ui::Notice, new_secret: Option<String>) -> Answer {
    page_with(ctx, status, notice, new_secret, &Form::parse(b""))
}

/// The page, its New token form filled with `form` (what a refused request sent).
fn page_with(
    ctx: &Ctx,
    status: StatusCode,
    notice: ui::Notice,
    new_secret: Option<String>,
    form: &Form,
) -> Answer {
    let tokens = ctx.app.auth.tokens()?;
    let who = ctx.who.as_ref();
    let page = ui::TokensPage {
        nav: nav(who),
        csrf: csrf(who),
        notice,
        tokens: tokens
            .iter()
            .map(|t| ui::TokenRow {
                id: t.id,
                name: t.name.clone(),
                role: t.role.to_string(),
                created_by: t.created_by.clone(),
                created: when_in(zone(ctx), t.created_at),
                expires: t
                    .expires_at
                    .map_or("never".into(), |at| when_in(zone(ctx), at)),
                last_used: t
                    .last_used
                    .map_or("never".into(), |at| when_in(zone(ctx), at)),
            })
            .collect(),
        roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
        new_secret,
        form_name: form.get("name").to_owned(),
        form_role: form.get("role").to_owned(),
        form_days: form.get("days").to_owned(),
    };
    html(status, page.render())
}

/// The page again with why the action was refused.
fn refused(ctx: &Ctx, e: &ApiError) -> Answer {
    page(ctx, e.status(), notice_for(e), None)
}

pub async fn list(ctx: Ctx) -> Answer {
    let notice = done_notice(&ctx);
    page(&ctx, StatusCode::OK, notice, None)
}

pub async fn create(ctx: Ctx) -> Answer {
    let f = Form::parse(ctx.req.body());
    let result = async {
        let role = role_field(&f)?;
        let days = f.get("days").trim();
        let lifetime = if days.is_empty() {
            None
        } else {
            let lifetime = days.parse().ok().and_then(super::lifetime_days);
            Some(lifetime.ok_or_else(|| {
                ApiError::BadInput("expiry is a number of days from 1 to 3650, or empty".into())
            })?)
        };
        Ok::<_, ApiError>(
            ctx.app
                .auth
                .create_token(
                    ctx.principal()?,
                    f.get("name"),
                    role,
                    lifetime,
                    ctx.client(),
                )
                .await?,
        )
    }
    .await;
    match result {
        Ok((_, secret)) => page(&ctx, StatusCode::OK, ui::Notice::default(), Some(secret)),
        // What was typed stays in the form.
        Err(e) => page_with(&ctx, e.status(), notice_for(&e), None, &f),
    }
}

/// Asks before revoking a token.
pub async fn revoke_confirm(ctx: Ctx) -> Answer {
    let id = ctx.id()?;
    let token = ctx
        .app
        .auth
        .tokens()?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or(ApiError::NotFound("token"))?;
    confirm(
        &ctx,
        format!("Revoke {}?", token.name),
        format!(
            "Revoke the API token {} ({}, made by {})?",
            token.name, token.role, token.created_by
        ),
        "Whatever uses it (Grafana, a script, a scraper) is refused from now on, and so are the tokens made with it. This cannot be undone: make a new token if it is needed again.",
        "Revoke token",
        "/tokens",
    )
}

pub async fn revoke(ctx: Ctx) -> Answer {
    let result = async {
        let id = ctx.id()?;
        Ok::<_, ApiError>(
            ctx.app
                .auth
                .revoke_token(ctx.principal()?, id, ctx.client())
                .await?,
        )
    }
    .await;
    match result {
        Ok(()) => Ok(see_other("/tokens?done=revoked")),
        Err(e) => refused(&ctx, &e),
    }
}
