use axum::extract::State;
use axum::Json;
use prism_domain::AddressRules;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::ops::address_policy as op;
use crate::state::AppState;

/// The admin's address ranges (built-in: link-local and metadata addresses refused).
#[utoipa::path(get, path = "/api/v1/address-policy", tag = "admin", responses((status = 200, body = AddressRules)))]
pub async fn get(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<AddressRules>> {
    Ok(Json(op::get(&state, &caller).await?))
}

/// Replaces the allowed and denied address ranges (CIDR or single addresses).
#[utoipa::path(put, path = "/api/v1/address-policy", tag = "admin", request_body = AddressRules, responses((status = 200, body = AddressRules)))]
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(rules): ApiJson<AddressRules>,
) -> ApiResult<Json<AddressRules>> {
    Ok(Json(op::put(&state, &caller, rules).await?))
}
