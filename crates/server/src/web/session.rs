//! Who is asking, for pages: the session cookie only (API tokens are for the
//! API), and for every form post the session's CSRF token in the hidden
//! `csrf` field, compared in constant time. Pages asked for without a valid
//! session redirect to the login page.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum_extra::extract::CookieJar;
use prism_store::tokens;
use serde::de::DeserializeOwned;

use super::error::WebError;
use crate::auth::caller::{client_address, Credential, SESSION_COOKIE};
use crate::auth::{secret_token, Caller};
use crate::error::ApiError;
use crate::state::AppState;

/// The signed-in user behind a page request.
pub struct Web(pub Caller);

pub fn csrf_of(caller: &Caller) -> &str {
    match &caller.credential {
        Credential::Session { csrf, .. } => csrf,
        Credential::ApiToken { .. } => "",
    }
}

impl FromRequestParts<AppState> for Web {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let jar = CookieJar::from_headers(&parts.headers);
        // A page asked for without a session: back to it after logging in.
        let back = (parts.method == axum::http::Method::GET)
            .then(|| parts.uri.path_and_query().map(|p| p.as_str().to_owned()))
            .flatten();
        let Some(cookie) = jar.get(SESSION_COOKIE) else {
            return Err(WebError::LoginFirst(back));
        };
        let mut c = state.store.conn().await.map_err(ApiError::from)?;
        let (session, user) = tokens::session_by_hash(&mut c, &secret_token::hash(cookie.value()))
            .await
            .map_err(ApiError::from)?
            .ok_or(WebError::LoginFirst(back))?;
        Ok(Web(Caller {
            user,
            credential: Credential::Session {
                id: session.id,
                csrf: session.csrf_token,
            },
            address: client_address(parts),
            // A form's own key (its `idem` field) is read with the form (`Posted`).
            idempotency: None,
        }))
    }
}

/// A form post from one of our pages: the caller, and the form's fields once
/// the `csrf` field matched the session's token.
pub struct Posted<T> {
    pub caller: Caller,
    pub form: T,
}

/// Form bodies are small; the API's limit applies.
const FORM_LIMIT: usize = crate::state::BODY_LIMIT;

impl<T: DeserializeOwned> FromRequest<AppState> for Posted<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, WebError> {
        let (mut parts, body) = req.into_parts();
        let Web(mut caller) = Web::from_request_parts(&mut parts, state).await?;
        let bytes = axum::body::to_bytes(body, FORM_LIMIT)
            .await
            .map_err(|_| ApiError::bad_request("form", "the form is too large"))?;
        let sent = form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        if sent.is_empty() || !secret_token::constant_time_eq(&sent, csrf_of(&caller)) {
            return Err(ApiError::forbidden(
                "the form's CSRF token is missing or wrong; reload the page and try again",
            )
            .into());
        }
        if let Some((_, key)) = form_urlencoded::parse(&bytes).find(|(k, _)| k == "idem") {
            let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            caller.idempotency = Some(
                crate::idempotency::form_key(&key, &parts.method, path, &bytes).ok_or_else(|| {
                    ApiError::bad_request("idem", "the form's key is not valid; reload the page and try again")
                })?,
            );
        }
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| ApiError::bad_request("form", format!("the form could not be read: {e}")))?;
        Ok(Posted { caller, form })
    }
}

/// A page's query string, read like axum's `Query` but refused as an HTML
/// page naming the problem (axum's own rejection is plain text).
pub struct PageQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for PageQuery<T> {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, WebError> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(q)
            .map(PageQuery)
            .map_err(|e| ApiError::bad_request("query", format!("the address's query could not be read: {e}")).into())
    }
}
