use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_store::audit;
use prism_store::tokens::{self, ApiToken};
use serde::Deserialize;
use serde_json::json;

use super::auth::{expiry, token_name, NewToken};
use super::ApiQuery;
use crate::app::AppState;
use crate::auth::{secret_token, Caller};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TokenQuery {
    /// Admins: list every user's tokens.
    #[serde(default)]
    pub all: bool,
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", params(TokenQuery), responses((status = 200, body = [ApiToken])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TokenQuery>,
) -> ApiResult<Json<Vec<ApiToken>>> {
    if q.all {
        caller.require_admin()?;
    }
    let user = (!q.all).then_some(caller.user.id);
    Ok(Json(tokens::list_tokens(&mut *state.store.conn().await?, user).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: Option<String>,
    pub expires_in_days: Option<i64>,
}

/// Creates a token for the caller. The secret is in the response, once.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateToken, responses((status = 201, body = NewToken)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<NewToken>)> {
    let expires_at = expiry("expires_in_days", req.expires_in_days)?;
    let name = token_name("name", req.name)?;
    let secret = secret_token::generate(secret_token::API_TOKEN_PREFIX);
    let mut tx = state.store.begin().await?;
    let token = tokens::create_token(&mut tx, caller.user.id, &name, &secret_token::hash(&secret), expires_at).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "token.create",
        "token",
        &token.id.to_string(),
        json!({"name": name, "expires_at": expires_at}),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(NewToken { token, secret })))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = i64, Path)), responses((status = 200, body = ApiToken)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiToken>> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request("id", "token id must be a number"))?;
    let mut tx = state.store.begin().await?;
    let token = tokens::get_token(&mut tx, id).await?;
    if token.user_id != caller.user.id && !caller.is_admin() {
        // Another user's token: as if it did not exist.
        return Err(ApiError::not_found("token", id));
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
    Ok(Json(token))
}
