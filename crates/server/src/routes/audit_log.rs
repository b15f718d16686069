use axum::extract::State;
use axum::Json;
use prism_api::audit::AuditEvent;

use super::ApiQuery;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::ops::audit::AuditQuery;
use crate::state::AppState;
use crate::wire::ToApi;

/// The audit log, newest first. Admins only.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery), responses((status = 200, body = [AuditEvent])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEvent>>> {
    Ok(Json(crate::ops::audit::list(&state, &caller, q).await?.to_api()))
}
