//! The rules that map the company directory's groups to Prism roles
//! (`/api/v1/directory/group-rules`, admins), applied at every directory login.

use axum::extract::State;
use axum::Json;
use prism_api::directory::GroupRules;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::ops::directory as op;
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/directory/group-rules", tag = "directory",
    responses((status = 200, body = GroupRules), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn get_rules(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<GroupRules>> {
    Ok(Json(GroupRules {
        rules: op::rules(&state, &caller).await?,
    }))
}

#[utoipa::path(put, path = "/api/v1/directory/group-rules", tag = "directory", request_body = GroupRules,
    responses((status = 200, body = GroupRules), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn put_rules(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<GroupRules>,
) -> ApiResult<Json<GroupRules>> {
    Ok(Json(GroupRules {
        rules: op::put_rules(&state, &caller, req.rules).await?,
    }))
}
