//! API tokens: every user creates (the secret returned once, only its hash
//! stored), lists and revokes their own; admins list and revoke anyone's.

use prism_api::tokens::{CreateToken, NewToken};
use prism_store::audit::{self, Origin};
use prism_store::tokens::{self, ApiToken};
use prism_store::users::User;
use serde_json::json;

use super::{access, Ctx, OpError, OpResult};
use crate::auth::{secret_token, Caller};
use crate::wire::ToApi;

pub fn expiry(field: &str, days: Option<i64>) -> OpResult<Option<i64>> {
    let days = days.unwrap_or(30);
    if !(1..=365).contains(&days) {
        return Err(OpError::invalid(field, "must be between 1 and 365 days"));
    }
    Ok(Some(prism_store::now_ms() + days * 86_400_000))
}

pub fn token_name(field: &str, name: Option<String>) -> OpResult<String> {
    let name = name.unwrap_or_else(|| "cli".into());
    if name.trim().is_empty() || name.chars().count() > 100 || name.chars().any(|c| c.is_control()) {
        return Err(OpError::invalid(field, "must be 1-100 printable characters"));
    }
    Ok(name)
}

/// The caller's tokens, or (admins, `all`) everyone's.
pub async fn list(ctx: &Ctx, caller: &Caller, all: bool) -> OpResult<Vec<ApiToken>> {
    if all {
        access::require_admin(caller)?;
    }
    let user = (!all).then_some(caller.user.id);
    Ok(tokens::list_tokens(&mut *ctx.store.conn().await?, user).await?)
}

/// Issues a token for `user`, recorded as done by `origin`.
pub(crate) async fn issue(
    ctx: &Ctx,
    user: &User,
    origin: &Origin,
    name: &str,
    expires_at: Option<i64>,
) -> OpResult<NewToken> {
    let secret = secret_token::generate(secret_token::API_TOKEN_PREFIX);
    let mut tx = ctx.store.begin().await?;
    let token = tokens::create_token(&mut tx, user.id, name, &secret_token::hash(&secret), expires_at).await?;
    audit::record(
        &mut tx,
        origin,
        "token.create",
        "token",
        &token.id.to_string(),
        json!({"name": name, "expires_at": expires_at}),
    )
    .await?;
    tx.commit().await?;
    Ok(NewToken {
        token: token.to_api(),
        secret,
    })
}

/// Creates a token for the caller. The secret is in the result, once.
pub async fn create(ctx: &Ctx, caller: &Caller, req: CreateToken) -> OpResult<NewToken> {
    let expires_at = expiry("expires_in_days", req.expires_in_days)?;
    let name = token_name("name", req.name)?;
    issue(ctx, &caller.user, &caller.origin(), &name, expires_at).await
}

/// Revokes a token of the caller's (admins: anyone's); another user's token
/// is not found.
pub async fn revoke(ctx: &Ctx, caller: &Caller, id: i64) -> OpResult<ApiToken> {
    let mut tx = ctx.store.begin().await?;
    let token = tokens::get_token(&mut tx, id).await?;
    if token.user_id != caller.user.id && !caller.is_admin() {
        // Another user's token: as if it did not exist.
        return Err(OpError::not_found("token", id));
    }
    let token = tokens::revoke_token(&mut tx, id).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "token.revoke",
        "token",
        &id.to_string(),
        json!({"name": token.name}),
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}
