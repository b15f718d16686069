use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_api::tokens::{ApiToken, CreateToken, NewToken};
use serde::Deserialize;

use super::ApiQuery;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::ops::tokens as op;
use crate::state::AppState;
use crate::wire::ToApi;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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
    Ok(Json(op::list(&state, &caller, q.all).await?.to_api()))
}

/// Creates a token for the caller. The secret is in the response, once.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateToken, responses((status = 201, body = NewToken)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<NewToken>)> {
    Ok((StatusCode::CREATED, Json(op::create(&state, &caller, req).await?)))
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
    Ok(Json(op::revoke(&state, &caller, id).await?.to_api()))
}
