//! Signing in and out: a username and password checked (failures throttled
//! per account and address, and audited), then a browser session or an API
//! token made; a session ended.

use prism_api::sessions::{LoginRequest, Me, TokenLoginRequest};
use prism_api::tokens::NewToken;
use prism_store::audit::{self, Origin};
use prism_store::tokens;
use prism_store::users::{self, User};
use serde_json::json;

use super::tokens::{expiry, issue, token_name};
use super::users::password_error;
use super::{Ctx, OpError, OpResult};
use crate::auth::caller::Credential;
use crate::auth::{password, secret_token, Caller};
use crate::wire::ToApi;

/// Checks a username and password, throttling repeated failures per account
/// and per address. The same answer for an unknown user and a wrong password.
pub async fn authenticate(ctx: &Ctx, address: &str, username: &str, pw: &str) -> OpResult<User> {
    // Counted before the slow password check, so parallel guesses cannot all pass.
    let attempt = ctx.throttle.begin(username, address).map_err(|wait| {
        OpError::Throttled(format!(
            "too many failed logins; try again in {} s",
            wait.as_secs().max(1)
        ))
    })?;
    let mut c = ctx.store.conn().await?;
    let user = users::find_by_name(&mut c, username).await?;
    drop(c);
    // The company's directory decides for its users and for names Prism
    // keeps no password for; local users (the break-glass admin) stay local.
    if let Some(dir) = &ctx.settings.directory {
        if super::directory::decides_for(user.as_ref()) {
            return match super::directory::login(ctx, dir, address, username, pw).await {
                Ok(u) => {
                    attempt.succeeded();
                    Ok(u)
                }
                // Not the user's failure: not counted, nothing audited as a failed login.
                Err(e @ OpError::Upstream(_)) => {
                    attempt.not_counted();
                    Err(e)
                }
                Err(_) => {
                    attempt.failed();
                    login_failed(ctx, address, username).await
                }
            };
        }
    }
    // Verify against a fixed hash when the user is unknown, so timing does not tell.
    let stored = match &user {
        Some(u) => u.password_hash.clone(),
        None => DUMMY_HASH
            .get_or_try_init(|| password::hash(secret_token::generate("")))
            .await
            .map_err(password_error)?
            .clone(),
    };
    let ok = password::verify(pw.to_owned(), stored).await;
    match user {
        // Local passwords off for all but admins: said only to whoever
        // knows the password (a wrong one reads as any failed login).
        Some(u)
            if ok
                && !u.is_disabled()
                && !u.admin()
                && ctx.settings.local_login == crate::config::LocalLogin::AdminsOnly =>
        {
            attempt.not_counted();
            Err(OpError::forbidden(
                "local accounts other than admins are turned off here (PRISM_LOCAL_LOGIN=admins): \
                 sign in with your directory account",
            ))
        }
        Some(u) if ok && !u.is_disabled() => {
            attempt.succeeded();
            Ok(u)
        }
        _ => {
            attempt.failed();
            login_failed(ctx, address, username).await
        }
    }
}

/// Audits a failed login and answers with the one message for every cause.
async fn login_failed(ctx: &Ctx, address: &str, username: &str) -> OpResult<User> {
    let mut tx = ctx.store.begin().await?;
    let origin = Origin {
        actor_id: None,
        actor: username.to_owned(),
        address: address.to_owned(),
    };
    audit::record(&mut tx, &origin, "auth.login_failed", "user", username, json!({})).await?;
    tx.commit().await?;
    Err(OpError::Unauthenticated("wrong username or password".into()))
}

static DUMMY_HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

/// A new browser session: its secret (the cookie's value, only its hash is
/// stored) and the CSRF token its forms and requests must send.
pub struct Session {
    pub user: User,
    pub secret: String,
    pub csrf: String,
}

/// Signs in from `address` and opens a session.
pub async fn login(ctx: &Ctx, address: &str, req: &LoginRequest) -> OpResult<Session> {
    let user = authenticate(ctx, address, &req.username, &req.password).await?;
    open_session(ctx, user, address, "auth.login", json!({})).await
}

/// A browser session for a user who has proved who they are (`action` and
/// `detail` say how, in the audit log).
pub(super) async fn open_session(
    ctx: &Ctx,
    user: User,
    address: &str,
    action: &str,
    detail: serde_json::Value,
) -> OpResult<Session> {
    let secret = secret_token::generate("");
    let csrf = secret_token::generate("");
    let mut tx = ctx.store.begin().await?;
    tokens::create_session(
        &mut tx,
        user.id,
        &secret_token::hash(&secret),
        &csrf,
        ctx.settings.session_ttl_ms,
    )
    .await?;
    let origin = Origin {
        actor_id: Some(user.id),
        actor: user.username.clone(),
        address: address.to_owned(),
    };
    audit::record(&mut tx, &origin, action, "user", &user.username, detail).await?;
    tx.commit().await?;
    Ok(Session { user, secret, csrf })
}

/// Ends the caller's session (a token caller has none to end); audited.
pub async fn logout(ctx: &Ctx, caller: &Caller) -> OpResult<()> {
    let mut tx = ctx.store.begin().await?;
    if let Credential::Session { id, .. } = caller.credential {
        tokens::delete_session(&mut tx, id).await?;
    }
    audit::record(
        &mut tx,
        &caller.origin(),
        "auth.logout",
        "user",
        &caller.user.username,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Exchanges a username and password for an API token (what `prism login` does).
pub async fn token_login(ctx: &Ctx, address: &str, req: TokenLoginRequest) -> OpResult<NewToken> {
    let expires_at = expiry("expires_in_days", req.expires_in_days)?;
    let name = token_name("name", req.name)?;
    let user = authenticate(ctx, address, &req.username, &req.password).await?;
    let origin = Origin {
        actor_id: Some(user.id),
        actor: user.username.clone(),
        address: address.to_owned(),
    };
    issue(ctx, &user, &origin, &name, expires_at).await
}

pub async fn me(ctx: &Ctx, caller: Caller) -> OpResult<Me> {
    let mut c = ctx.store.conn().await?;
    let memberships = prism_store::projects::memberships_of(&mut c, caller.user.id).await?;
    let csrf_token = match caller.credential {
        Credential::Session { csrf, .. } => Some(csrf),
        Credential::ApiToken { .. } => None,
    };
    Ok(Me {
        user: caller.user.to_api(),
        memberships: memberships.to_api(),
        csrf_token,
    })
}
