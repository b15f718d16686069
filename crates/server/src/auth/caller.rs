use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum_extra::extract::cookie::{Cookie, SameSite};
use axum_extra::extract::CookieJar;
use prism_store::audit::Origin;
use prism_store::tokens;
use prism_store::users::User;

use super::secret_token;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "prism_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Debug, Clone)]
pub enum Credential {
    ApiToken { id: i64 },
    Session { id: i64, csrf: String },
}

/// The authenticated user behind a request, and where it came from.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub credential: Credential,
    pub address: String,
    /// The request's `Idempotency-Key` (API requests that carry one; see
    /// [`crate::idempotency`]): the operation claims it in its transaction.
    pub idempotency: Option<crate::idempotency::IdempotencyKey>,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.user.admin()
    }

    pub fn origin(&self) -> Origin {
        Origin {
            actor_id: Some(self.user.id),
            actor: self.user.username.clone(),
            address: self.address.clone(),
        }
    }
}

/// The client's address (the trusted proxy's header, or the TCP peer): see [`super::proxy`].
pub fn client_address(parts: &Parts) -> String {
    super::proxy::client_address(parts)
}

/// The client's address (for throttling and the audit log), and whether the
/// request came over HTTPS (directly or through the trusted proxy).
pub struct Address(pub String, pub bool);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Address {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Address(client_address(parts), super::proxy::is_https(parts)))
    }
}

/// The session cookie for a new session's secret: `Secure` whenever the
/// request came over HTTPS, or always with `PRISM_SECURE_COOKIES`.
pub fn session_cookie(state: &AppState, secret: String, https: bool) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, secret))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.settings.secure_cookies || https)
        .path("/")
        .max_age(cookie::time::Duration::milliseconds(state.settings.session_ttl_ms))
        .build()
}

/// The cookie that ends the session in the browser.
pub fn session_removal() -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE).path("/").build()
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let address = client_address(parts);
        let mut c = state.store.conn().await?;
        if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
            let token = auth
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or_else(|| ApiError::unauthorized("Authorization must be `Bearer <token>`"))?;
            let (user, id) = tokens::user_by_token(&mut c, &secret_token::hash(token.trim()))
                .await?
                .ok_or_else(|| ApiError::unauthorized("the API token is unknown, expired or revoked"))?;
            return Ok(Caller {
                user,
                credential: Credential::ApiToken { id },
                address,
                idempotency: parts.extensions.get().cloned(),
            });
        }
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(cookie) = jar.get(SESSION_COOKIE) else {
            return Err(ApiError::unauthorized("log in first (session cookie or bearer token)"));
        };
        let (session, user) = tokens::session_by_hash(&mut c, &secret_token::hash(cookie.value()))
            .await?
            .ok_or_else(|| ApiError::unauthorized("the session has expired; log in again"))?;
        // Cookies ride along on cross-site requests; a state-changing request
        // must also prove it came from our own pages.
        if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !secret_token::constant_time_eq(sent, &session.csrf_token) {
                return Err(ApiError::forbidden(
                    "missing or wrong CSRF token (send the X-CSRF-Token header)",
                ));
            }
        }
        Ok(Caller {
            user,
            credential: Credential::Session {
                id: session.id,
                csrf: session.csrf_token,
            },
            address,
            idempotency: parts.extensions.get().cloned(),
        })
    }
}
