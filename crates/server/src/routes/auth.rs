use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum_extra::extract::cookie::{Cookie, SameSite};
use axum_extra::extract::CookieJar;
use prism_store::audit::{self, Origin};
use prism_store::projects::Membership;
use prism_store::tokens::{self, ApiToken};
use prism_store::users::{self, User};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::app::AppState;
use crate::auth::caller::{client_address, Credential, SESSION_COOKIE};
use crate::auth::{password, secret_token, Caller};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    pub user: User,
    /// Send this as `X-CSRF-Token` with every state-changing request made with the session cookie.
    pub csrf_token: String,
}

/// The client's address, and whether it came over HTTPS (see `auth::proxy`).
pub struct Address(pub String, pub bool);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Address {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Address(client_address(parts), crate::auth::proxy::is_https(parts)))
    }
}

/// Checks a username and password, throttling repeated failures per account
/// and per address. The same answer for an unknown user and a wrong password.
pub async fn authenticate(state: &AppState, address: &str, username: &str, pw: &str) -> ApiResult<User> {
    let attempt = state.throttle.begin(username, address).map_err(|wait| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            format!("too many failed logins; try again in {} s", wait.as_secs().max(1)),
        )
    })?;
    let mut c = state.store.conn().await?;
    let user = users::find_by_name(&mut c, username).await?;
    drop(c);
    // Verify against a fixed hash when the user is unknown, so timing does not tell.
    let stored = match &user {
        Some(u) => u.password_hash.clone(),
        None => DUMMY_HASH
            .get_or_try_init(|| password::hash(secret_token::generate("")))
            .await?
            .clone(),
    };
    let ok = password::verify(pw.to_owned(), stored).await;
    match user {
        Some(u) if ok && !u.is_disabled() => {
            attempt.succeeded();
            Ok(u)
        }
        _ => {
            attempt.failed();
            let mut tx = state.store.begin().await?;
            let origin = Origin {
                actor_id: None,
                actor: username.to_owned(),
                address: address.to_owned(),
            };
            audit::record(&mut tx, &origin, "auth.login_failed", "user", username, json!({})).await?;
            tx.commit().await?;
            Err(ApiError::unauthorized("wrong username or password"))
        }
    }
}

static DUMMY_HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    Address(address, https): Address,
    jar: CookieJar,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let user = authenticate(&state, &address, &req.username, &req.password).await?;
    let secret = secret_token::generate("");
    let csrf = secret_token::generate("");
    let mut tx = state.store.begin().await?;
    tokens::create_session(
        &mut tx,
        user.id,
        &secret_token::hash(&secret),
        &csrf,
        state.settings.session_ttl_ms,
    )
    .await?;
    let origin = Origin {
        actor_id: Some(user.id),
        actor: user.username.clone(),
        address,
    };
    audit::record(&mut tx, &origin, "auth.login", "user", &user.username, json!({})).await?;
    tx.commit().await?;
    let cookie = Cookie::build((SESSION_COOKIE, secret))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.settings.secure_cookies || https)
        .path("/")
        .max_age(time_from_ms(state.settings.session_ttl_ms))
        .build();
    Ok((jar.add(cookie), Json(LoginResponse { user, csrf_token: csrf })).into_response())
}

fn time_from_ms(ms: i64) -> cookie::time::Duration {
    cookie::time::Duration::milliseconds(ms)
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204)))]
pub async fn logout(State(state): State<AppState>, caller: Caller, jar: CookieJar) -> ApiResult<Response> {
    let mut tx = state.store.begin().await?;
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
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/").build());
    Ok((jar, StatusCode::NO_CONTENT).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenLoginRequest {
    pub username: String,
    pub password: String,
    /// A label for the token, e.g. the machine it is for.
    #[serde(default)]
    pub name: Option<String>,
    /// Days until the token expires (default 30, at most 365).
    #[serde(default)]
    pub expires_in_days: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NewToken {
    pub token: ApiToken,
    /// The secret, shown this once; only its hash is stored.
    pub secret: String,
}

pub fn expiry(field: &str, days: Option<i64>) -> ApiResult<Option<i64>> {
    let days = days.unwrap_or(30);
    if !(1..=365).contains(&days) {
        return Err(ApiError::bad_request(field, "must be between 1 and 365 days"));
    }
    Ok(Some(prism_store::now_ms() + days * 86_400_000))
}

pub fn token_name(field: &str, name: Option<String>) -> ApiResult<String> {
    let name = name.unwrap_or_else(|| "cli".into());
    if name.trim().is_empty() || name.len() > 100 || name.chars().any(|c| c.is_control()) {
        return Err(ApiError::bad_request(field, "must be 1-100 printable characters"));
    }
    Ok(name)
}

/// POST /auth/token: exchange a username and password for an API token (what `prism login` does).
#[utoipa::path(post, path = "/api/v1/auth/token", tag = "auth", request_body = TokenLoginRequest,
    responses((status = 201, body = NewToken), (status = 401, body = crate::error::ErrorBody)))]
pub async fn token(
    State(state): State<AppState>,
    Address(address, _): Address,
    ApiJson(req): ApiJson<TokenLoginRequest>,
) -> ApiResult<(StatusCode, Json<NewToken>)> {
    let expires_at = expiry("expires_in_days", req.expires_in_days)?;
    let name = token_name("name", req.name)?;
    let user = authenticate(&state, &address, &req.username, &req.password).await?;
    let secret = secret_token::generate(secret_token::API_TOKEN_PREFIX);
    let mut tx = state.store.begin().await?;
    let token = tokens::create_token(&mut tx, user.id, &name, &secret_token::hash(&secret), expires_at).await?;
    let origin = Origin {
        actor_id: Some(user.id),
        actor: user.username.clone(),
        address,
    };
    audit::record(
        &mut tx,
        &origin,
        "token.create",
        "token",
        &token.id.to_string(),
        json!({"name": name, "expires_at": expires_at}),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(NewToken { token, secret })))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    pub user: User,
    pub memberships: Vec<Membership>,
    /// Present when authenticated by session cookie.
    pub csrf_token: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "auth", responses((status = 200, body = Me)))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Me>> {
    let mut c = state.store.conn().await?;
    let memberships = prism_store::projects::memberships_of(&mut c, caller.user.id).await?;
    let csrf_token = match caller.credential {
        Credential::Session { csrf, .. } => Some(csrf),
        Credential::ApiToken { .. } => None,
    };
    Ok(Json(Me {
        user: caller.user,
        memberships,
        csrf_token,
    }))
}
