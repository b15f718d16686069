use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum_extra::extract::CookieJar;
use prism_domain::RoleSet;
use prism_store::audit::Origin;
use prism_store::users::User;
use prism_store::{projects, tokens};

use super::secret_token;
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};

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
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.user.admin()
    }

    pub fn require_admin(&self) -> ApiResult<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("this needs the admin role"))
        }
    }

    pub fn origin(&self) -> Origin {
        Origin {
            actor_id: Some(self.user.id),
            actor: self.user.username.clone(),
            address: self.address.clone(),
        }
    }

    /// The user id to filter listings by: None for admins, who see everything.
    pub fn visibility(&self) -> Option<i64> {
        (!self.is_admin()).then_some(self.user.id)
    }

    pub async fn roles_in(&self, c: &mut prism_store::AnyConnection, project_id: i64) -> ApiResult<RoleSet> {
        Ok(projects::roles(c, project_id, self.user.id, self.is_admin()).await?)
    }
}

/// The client's address (the trusted proxy's header, or the TCP peer): see [`super::proxy`].
pub fn client_address(parts: &Parts) -> String {
    super::proxy::client_address(parts)
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
        })
    }
}
