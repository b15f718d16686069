use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum_extra::extract::CookieJar;
use prism_api::sessions::{
    CliLoginPoll, CliLoginPollRequest, CliLoginStarted, LoginRequest, LoginResponse, Me, StartCliLogin,
    TokenLoginRequest,
};
use prism_api::tokens::NewToken;

use crate::auth::caller::{session_cookie, session_removal, Address};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::ops::sessions as op;
use crate::state::AppState;
use crate::wire::ToApi;

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    Address(address, https): Address,
    jar: CookieJar,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let session = op::login(&state, &address, &req).await?;
    let cookie = session_cookie(&state, session.secret, https);
    let body = LoginResponse {
        user: session.user.to_api(),
        csrf_token: session.csrf,
    };
    Ok((jar.add(cookie), Json(body)).into_response())
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204)))]
pub async fn logout(State(state): State<AppState>, caller: Caller, jar: CookieJar) -> ApiResult<Response> {
    op::logout(&state, &caller).await?;
    Ok((jar.remove(session_removal()), StatusCode::NO_CONTENT).into_response())
}

/// POST /auth/token: exchange a username and password for an API token (what `prism login` does).
#[utoipa::path(post, path = "/api/v1/auth/token", tag = "auth", request_body = TokenLoginRequest,
    responses((status = 201, body = NewToken), (status = 401, body = crate::error::ErrorBody)))]
pub async fn token(
    State(state): State<AppState>,
    Address(address, _): Address,
    ApiJson(req): ApiJson<TokenLoginRequest>,
) -> ApiResult<(StatusCode, Json<NewToken>)> {
    Ok((StatusCode::CREATED, Json(op::token_login(&state, &address, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/me", tag = "auth", responses((status = 200, body = Me)))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Me>> {
    Ok(Json(op::me(&state, caller).await?))
}

/// POST /auth/cli-login: the command line asks for a login a person will
/// approve in a browser (`prism login --sso`).
#[utoipa::path(post, path = "/api/v1/auth/cli-login", tag = "auth", request_body = StartCliLogin,
    security(()),
    responses((status = 201, body = CliLoginStarted), (status = 429, body = crate::error::ErrorBody)))]
pub async fn cli_login(
    State(state): State<AppState>,
    Address(address, _): Address,
    crate::json::OptionalJson(req): crate::json::OptionalJson<StartCliLogin>,
) -> ApiResult<(StatusCode, Json<CliLoginStarted>)> {
    Ok((
        StatusCode::CREATED,
        Json(crate::ops::cli_logins::start(&state, &address, req.unwrap_or_default()).await?),
    ))
}

/// POST /auth/cli-login/poll: pending, or (once) the approved login's token.
#[utoipa::path(post, path = "/api/v1/auth/cli-login/poll", tag = "auth", request_body = CliLoginPollRequest,
    security(()),
    responses((status = 200, body = CliLoginPoll), (status = 404, body = crate::error::ErrorBody, description = "expired, unknown or picked up")))]
pub async fn cli_login_poll(
    State(state): State<AppState>,
    Address(address, _): Address,
    ApiJson(req): ApiJson<CliLoginPollRequest>,
) -> ApiResult<Json<CliLoginPoll>> {
    Ok(Json(
        crate::ops::cli_logins::poll(&state, &address, &req.poll_secret).await?,
    ))
}
