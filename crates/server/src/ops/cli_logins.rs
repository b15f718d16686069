//! `prism login --sso`: the command line asks for a login, shows the person
//! a code and a page; the person approves it in a browser where they are
//! logged in (single sign-on or otherwise); the command line, polling with
//! a secret only it holds, then receives an API token of theirs, once.
//!
//! The page shows the code, the token's name and the address the request
//! came from, and asks the person to approve only a login they started
//! themselves with that code on their screen: someone who sends a victim
//! such a link gets nothing unless the victim approves it.

use prism_api::sessions::{CliLoginPoll, CliLoginStarted, CliLoginView, StartCliLogin};
use prism_store::audit::{self, Origin};
use prism_store::cli_logins as store;
use rand::Rng;
use serde_json::json;

use super::tokens::{expiry, issue, token_name};
use super::{Ctx, OpError, OpResult};
use crate::auth::{secret_token, Caller};

/// How long a request waits for its approval.
const TTL_MS: i64 = 10 * 60 * 1000;
/// At most this many requests wait at once (anyone may make one)...
const MAX_PENDING: i64 = 1000;
/// ...and this many from one address, so that one client cannot lock
/// everyone else out.
const MAX_PENDING_PER_ADDRESS: i64 = 10;
/// No vowels (no words), no look-alikes.
const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

fn user_code() -> String {
    let mut rng = rand::rngs::OsRng;
    let mut pick = || ALPHABET[rng.gen_range(0..ALPHABET.len())] as char;
    let a: String = (0..4).map(|_| pick()).collect();
    let b: String = (0..4).map(|_| pick()).collect();
    format!("{a}-{b}")
}

fn normalise(code: &str) -> String {
    code.trim().to_ascii_uppercase()
}

pub async fn start(ctx: &Ctx, address: &str, req: StartCliLogin) -> OpResult<CliLoginStarted> {
    let name = token_name("name", req.name)?;
    let mut tx = ctx.store.begin().await?;
    if store::pending(&mut tx).await? >= MAX_PENDING
        || store::pending_from(&mut tx, address).await? >= MAX_PENDING_PER_ADDRESS
    {
        return Err(OpError::Throttled(
            "too many command-line logins are waiting; try again in a few minutes".into(),
        ));
    }
    let code = user_code();
    let poll_secret = secret_token::generate("");
    let expires_at = prism_store::now_ms() + TTL_MS;
    store::create(
        &mut tx,
        &code,
        &secret_token::hash(&poll_secret),
        &name,
        address,
        expires_at,
    )
    .await?;
    tx.commit().await?;
    // The page, without the code: the person types what their terminal shows,
    // so a link someone else sends them cannot carry a login of theirs.
    let verify_path = "/cli-login".to_owned();
    Ok(CliLoginStarted {
        verify_url: ctx.settings.public_url.as_ref().map(|u| format!("{u}{verify_path}")),
        verify_path,
        user_code: code,
        poll_secret,
        interval_seconds: 2,
        expires_at,
    })
}

async fn waiting(ctx: &Ctx, code: &str) -> OpResult<store::CliLogin> {
    let code = normalise(code);
    store::by_code(&mut *ctx.store.conn().await?, &code)
        .await?
        .filter(|r| r.approved_by.is_none())
        .ok_or_else(|| OpError::not_found("command-line login", &code))
}

/// The request the page shows (any logged-in person may look at a code).
pub async fn show(ctx: &Ctx, caller: &Caller, code: &str) -> OpResult<CliLoginView> {
    let r = waiting(ctx, code).await?;
    Ok(CliLoginView {
        elsewhere: r.address != caller.address,
        user_code: r.user_code,
        name: r.name,
        address: r.address,
        created_at: r.created_at,
    })
}

/// The person approves: an API token of theirs waits, sealed, for the command line.
pub async fn approve(ctx: &Ctx, caller: &Caller, code: &str) -> OpResult<()> {
    let r = waiting(ctx, code).await?;
    let token = issue(
        ctx,
        &caller.user,
        &caller.origin(),
        &r.name,
        expiry("expires_in_days", None)?,
    )
    .await?;
    let sealed = ctx.secrets.seal(
        &serde_json::to_vec(&CliLoginPoll::Approved {
            username: caller.user.username.clone(),
            token_id: token.token.id,
            secret: token.secret,
            expires_at: token.token.expires_at,
        })
        .expect("serialises"),
    );
    let mut tx = ctx.store.begin().await?;
    if !store::approve(&mut tx, r.id, caller.user.id, &sealed).await? {
        // Approved twice at once: the token minted for this attempt goes.
        drop(tx);
        prism_store::tokens::revoke_token(&mut *ctx.store.conn().await?, token.token.id).await?;
        return Err(OpError::conflict("this login was approved already"));
    }
    audit::record(
        &mut tx,
        &caller.origin(),
        "auth.cli_login_approved",
        "token",
        &token.token.id.to_string(),
        json!({"code": r.user_code, "name": r.name, "requested_from": r.address}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The command line's poll: pending, or the token (handed out once).
pub async fn poll(ctx: &Ctx, address: &str, poll_secret: &str) -> OpResult<CliLoginPoll> {
    let mut tx = ctx.store.begin().await?;
    let r = store::by_poll_hash(&mut tx, &secret_token::hash(poll_secret.trim()))
        .await?
        .ok_or_else(|| OpError::not_found("command-line login", "(expired, unknown or picked up)"))?;
    let Some(sealed) = r.token_enc.filter(|_| r.approved_by.is_some()) else {
        return Ok(CliLoginPoll::Pending);
    };
    let answer: CliLoginPoll = ctx
        .secrets
        .open(&sealed)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| OpError::internal("a command-line login's token does not open"))?;
    if !store::delete(&mut tx, r.id).await? {
        return Err(OpError::not_found("command-line login", "(picked up)"));
    }
    let origin = Origin {
        actor_id: r.approved_by,
        actor: match &answer {
            CliLoginPoll::Approved { username, .. } => username.clone(),
            CliLoginPoll::Pending => String::new(),
        },
        address: address.to_owned(),
    };
    audit::record(
        &mut tx,
        &origin,
        "auth.cli_login",
        "user",
        &origin.actor,
        json!({"code": r.user_code}),
    )
    .await?;
    tx.commit().await?;
    Ok(answer)
}
