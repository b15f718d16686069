//! Single sign-on with the company's OpenID Connect provider (PRISM_OIDC_*).
//!
//! `begin` sends the browser to the provider with a fresh `state`, `nonce`
//! and PKCE verifier, remembered in a short-lived cookie sealed with
//! Prism's key (nothing to store, nothing another instance behind the same
//! load balancer cannot read). `finish` takes the browser back: the cookie
//! opens and is at most ten minutes old, its `state` is the callback's, the
//! code is exchanged and the ID token checked (`prism_identity::oidc`);
//! then the user is created or updated with exactly the roles the group
//! rules grant for the token's groups (the same rules as the directory's),
//! and a session opens. Every refusal is audited as `auth.sso_failed`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use prism_identity::oidc::{OidcError, Pending};
use prism_store::audit::{self, Origin};
use prism_store::users;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::directory::{sync, External};
use super::sessions::{open_session, Session};
use super::{Ctx, OpError, OpResult};
use crate::auth::secret_token;

/// How long a login may take between Prism and the provider.
const PENDING_MAX_AGE_MS: i64 = 10 * 60 * 1000;
/// Where the provider sends the browser back (under PRISM_PUBLIC_URL).
pub const CALLBACK_PATH: &str = "/auth/oidc/callback";

#[derive(Serialize, Deserialize)]
struct Sealed {
    pending: Pending,
    at: i64,
    /// The page to go back to afterwards (a path on this server, checked by the caller).
    #[serde(default)]
    next: Option<String>,
}

/// What the provider put in the callback's query.
#[derive(Debug, Default, Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

fn oidc(ctx: &Ctx) -> OpResult<&prism_identity::oidc::Oidc> {
    ctx.oidc
        .as_ref()
        .ok_or_else(|| OpError::not_found("page", "single sign-on (not configured)"))
}

fn redirect_uri(ctx: &Ctx) -> OpResult<String> {
    let base = ctx
        .settings
        .public_url
        .as_deref()
        .ok_or_else(|| OpError::internal("PRISM_PUBLIC_URL is not set"))?;
    Ok(format!("{base}{CALLBACK_PATH}"))
}

fn provider_error(e: OidcError) -> OpError {
    match e {
        OidcError::Unavailable(why) => {
            tracing::warn!(error = %why, "identity provider unavailable");
            OpError::Upstream("the identity provider is unavailable; try again later".into())
        }
        OidcError::Refused(why) => OpError::Unauthenticated(format!("single sign-on refused: {why}")),
    }
}

/// The provider's authorization URL, and the cookie value that remembers
/// this login until it comes back.
pub async fn begin(ctx: &Ctx, next: Option<String>) -> OpResult<(String, String)> {
    let oidc = oidc(ctx)?;
    let (url, pending) = oidc.begin(&redirect_uri(ctx)?).await.map_err(provider_error)?;
    let sealed = Sealed {
        pending,
        at: prism_store::now_ms(),
        next,
    };
    let bytes = ctx
        .secrets
        .seal(&serde_json::to_vec(&sealed).expect("pending serialises"));
    Ok((url, B64URL.encode(bytes)))
}

/// The label of the login button, when single sign-on is on.
pub fn label(ctx: &Ctx) -> Option<String> {
    ctx.oidc.as_ref().map(|o| o.config.label.clone())
}

/// Completes a login the provider sent back; `cookie` is what `begin` made.
/// Returns the session and the page the login started from.
pub async fn finish(
    ctx: &Ctx,
    address: &str,
    cb: &Callback,
    cookie: Option<&str>,
) -> OpResult<(Session, Option<String>)> {
    let sealed: Option<Sealed> = cookie
        .and_then(|c| B64URL.decode(c).ok())
        .and_then(|b| ctx.secrets.open(&b).ok())
        .and_then(|b| serde_json::from_slice(&b).ok());
    let started_here = sealed.is_some();
    match finish_checked(ctx, address, cb, sealed).await {
        Ok(s) => Ok(s),
        // Only a login this server started is audited: anyone can call the
        // callback, and must not be able to fill the audit log.
        Err(e) if started_here => {
            let mut tx = ctx.store.begin().await?;
            let origin = Origin {
                actor_id: None,
                actor: "sso".into(),
                address: address.to_owned(),
            };
            audit::record(
                &mut tx,
                &origin,
                "auth.sso_failed",
                "user",
                "",
                json!({"reason": e.to_string()}),
            )
            .await?;
            tx.commit().await?;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

async fn finish_checked(
    ctx: &Ctx,
    address: &str,
    cb: &Callback,
    sealed: Option<Sealed>,
) -> OpResult<(Session, Option<String>)> {
    let oidc = oidc(ctx)?;
    let again = |why: &str| OpError::Unauthenticated(format!("{why}; start the login again"));
    // This browser's login and its state first: nothing else in the query is
    // looked at for a callback this server did not start.
    let sealed = sealed.ok_or_else(|| again("this login was not started in this browser"))?;
    if prism_store::now_ms() - sealed.at > PENDING_MAX_AGE_MS {
        return Err(again("the login took longer than 10 minutes"));
    }
    let state = cb.state.as_deref().unwrap_or("");
    if !secret_token::constant_time_eq(state, &sealed.pending.state) {
        return Err(again("the login's state does not match"));
    }
    if let Some(e) = &cb.error {
        // The error code only when it is one (OAuth's are short words); the
        // description is the provider's text, not shown.
        let word = if !e.is_empty() && e.len() <= 40 && e.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            e.as_str()
        } else {
            "an error"
        };
        return Err(OpError::Unauthenticated(format!(
            "the identity provider refused the login ({word})"
        )));
    }
    let code = cb
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| again("the provider sent no code"))?;
    let who = oidc
        .finish(code, &redirect_uri(ctx)?, &sealed.pending)
        .await
        .map_err(provider_error)?;
    if prism_domain::username::validate_username("username", &who.username).is_err() {
        return Err(OpError::Unauthenticated(format!(
            "the provider's {} {:?} cannot be a Prism user name",
            oidc.config.username_claim, who.username
        )));
    }
    let user = sync(
        ctx,
        External {
            source: users::OIDC_SOURCE,
            username: &who.username,
            display_name: who.display_name.as_deref(),
            groups: &who.groups,
            refusal: "this account may not sign in with single sign-on",
            external_id: Some(&format!("{}#{}", oidc.config.issuer, who.subject)),
        },
        address,
    )
    .await?;
    let session = open_session(
        ctx,
        user,
        address,
        "auth.login_sso",
        json!({"subject": who.subject, "groups": who.groups}),
    )
    .await?;
    Ok((session, sealed.next))
}
