//! The JSON API of API tokens.

use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::request::{Answer, ApiError, Ctx, json, json_body, no_content};
use perch_auth::{ApiToken, Role};

#[derive(Serialize)]
struct TokensOut {
    tokens: Vec<ApiToken>,
}

pub async fn list(ctx: Ctx) -> Answer {
    let tokens = ctx.app.auth.tokens()?;
    Ok(json(StatusCode::OK, &TokensOut { tokens }))
}

#[derive(Deserialize)]
struct TokenIn {
    name: String,
    role: Role,
    #[serde(default)]
    expires_in_days: Option<u64>,
}

#[derive(Serialize)]
struct CreatedOut {
    token: ApiToken,
    secret: String,
}

pub async fn create(ctx: Ctx) -> Answer {
    let input: TokenIn = json_body(ctx.req.body())?;
    let lifetime = input
        .expires_in_days
        .map(|d| {
            super::lifetime_days(d)
                .ok_or_else(|| ApiError::BadInput("expires_in_days is from 1 to 3650".into()))
        })
        .transpose()?;
    let (token, secret) = ctx
        .app
        .auth
        .create_token(
            ctx.principal()?,
            &input.name,
            input.role,
            lifetime,
            ctx.client(),
        )
        .await?;
    Ok(json(StatusCode::CREATED, &CreatedOut { token, secret }))
}

pub async fn revoke(ctx: Ctx) -> Answer {
    ctx.app
        .auth
        .revoke_token(ctx.principal()?, ctx.id()?, ctx.client())
        .await?;
    Ok(no_content())
}
