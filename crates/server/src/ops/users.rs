//! Users: admins create them, make them admin, disable them; users change
//! their own display name and password (with the current one).

use prism_api::users::{CreateUser, UpdateUser};
use prism_domain::username::validate_username;
use prism_store::audit;
use prism_store::users::{self, User};
use serde_json::json;

use super::{access, Ctx, OpError, OpResult};
use crate::auth::{password, Caller};
use crate::error::ApiError;

fn display_name(field: &str, v: Option<&str>) -> OpResult<()> {
    if let Some(v) = v {
        if v.chars().count() > 200 || v.chars().any(|c| c.is_control()) {
            return Err(OpError::invalid(field, "must be at most 200 printable characters"));
        }
    }
    Ok(())
}

/// `auth::password` still answers in the API's error type: a refused
/// password is invalid input, anything else an internal fault.
pub(crate) fn password_error(e: ApiError) -> OpError {
    match e.field {
        Some(field) if e.code == "validation" => OpError::invalid(&field, e.message),
        _ => OpError::internal(e.message),
    }
}

pub async fn list(ctx: &Ctx, caller: &Caller) -> OpResult<Vec<User>> {
    access::require_admin(caller)?;
    Ok(users::list(&mut *ctx.store.conn().await?).await?)
}

pub async fn create(ctx: &Ctx, caller: &Caller, req: CreateUser) -> OpResult<User> {
    access::require_admin(caller)?;
    validate_username("username", &req.username)?;
    password::check_strength("password", &req.password).map_err(password_error)?;
    display_name("display_name", req.display_name.as_deref())?;
    let hash = password::hash(req.password).await.map_err(password_error)?;
    let mut tx = ctx.store.begin().await?;
    let user = users::create(
        &mut tx,
        &req.username,
        req.display_name.as_deref().unwrap_or(""),
        &hash,
        req.admin,
    )
    .await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "user.create",
        "user",
        &user.username,
        json!({"admin": req.admin}),
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// A user: admins read anyone, others themselves.
pub async fn get(ctx: &Ctx, caller: &Caller, username: &str) -> OpResult<User> {
    if username != caller.user.username {
        access::require_admin(caller)?;
    }
    Ok(users::by_name(&mut *ctx.store.conn().await?, username).await?)
}

/// Admins change anyone; users change their own display name and password.
/// The last active admin cannot be demoted or disabled.
pub async fn update(ctx: &Ctx, caller: &Caller, username: &str, req: UpdateUser) -> OpResult<User> {
    let is_self = username == caller.user.username;
    if !is_self || req.admin.is_some() || req.disabled.is_some() {
        access::require_admin(caller)?;
    }
    display_name("display_name", req.display_name.as_deref())?;
    let hash = match &req.password {
        Some(pw) => {
            password::check_strength("password", pw).map_err(password_error)?;
            if !caller.is_admin() {
                let current = req
                    .current_password
                    .clone()
                    .ok_or_else(|| OpError::invalid("current_password", "needed to change your own password"))?;
                if !password::verify(current, caller.user.password_hash.clone()).await {
                    return Err(OpError::invalid("current_password", "is wrong"));
                }
            }
            Some(password::hash(pw.clone()).await.map_err(password_error)?)
        }
        None => None,
    };
    if prism_store::webhooks::is_webhook_user(username) {
        // A webhook's row is no person's: it never gets a password or a role.
        return Err(OpError::not_found("user", username));
    }
    let mut tx = ctx.store.begin().await?;
    let target = users::by_name(&mut tx, username).await?;
    let demotes_admin = target.admin() && (req.admin == Some(false) || req.disabled == Some(true));
    if demotes_admin && users::lock_and_count_admins(&mut tx, ctx.store.backend()).await? <= 1 {
        return Err(OpError::conflict("this is the last active admin; make another admin first").field("admin"));
    }
    let user = users::update(
        &mut tx,
        target.id,
        req.display_name.as_deref(),
        req.admin,
        req.disabled,
        hash.as_deref(),
    )
    .await?;
    if hash.is_some() {
        // A new password ends the user's other sessions (API tokens stay).
        let keep = match &caller.credential {
            crate::auth::caller::Credential::Session { id, .. } if is_self => Some(*id),
            _ => None,
        };
        prism_store::tokens::end_sessions(&mut tx, target.id, keep).await?;
    }
    let detail = json!({"display_name": req.display_name, "admin": req.admin, "disabled": req.disabled, "password_changed": hash.is_some()});
    audit::record(&mut tx, &caller.origin(), "user.update", "user", &user.username, detail).await?;
    tx.commit().await?;
    Ok(user)
}

/// Ends every browser session of `username` at once (admins): someone who
/// left, or whose laptop was lost, is out now rather than when the session
/// would lapse. API tokens are revoked separately.
pub async fn end_sessions(ctx: &Ctx, caller: &Caller, username: &str) -> OpResult<u64> {
    super::access::require_admin(caller)?;
    let mut tx = ctx.store.begin().await?;
    let target = users::by_name(&mut tx, username).await?;
    let ended = prism_store::tokens::end_sessions(&mut tx, target.id, None).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "user.sessions_ended",
        "user",
        &target.username,
        json!({"sessions": ended}),
    )
    .await?;
    tx.commit().await?;
    Ok(ended)
}
