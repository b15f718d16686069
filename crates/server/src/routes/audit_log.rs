use axum::extract::State;
use axum::Json;
use prism_store::audit::{self, AuditEvent, AuditFilter};
use serde::Deserialize;

use super::ApiQuery;
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub record_type: Option<String>,
    pub record_id: Option<String>,
    /// RFC 3339 time or Unix milliseconds: events at or after.
    pub since: Option<String>,
    /// RFC 3339 time or Unix milliseconds: events before.
    pub until: Option<String>,
    /// Cursor: events with a smaller id.
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

fn time(field: &str, v: Option<&str>) -> ApiResult<Option<i64>> {
    let Some(v) = v else { return Ok(None) };
    if let Ok(ms) = v.parse::<i64>() {
        return Ok(Some(ms));
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| Some(t.timestamp_millis()))
        .map_err(|_| {
            ApiError::bad_request(
                field,
                "must be an RFC 3339 time (2026-01-31T12:00:00Z) or Unix milliseconds",
            )
        })
}

/// The audit log, newest first. Admins only.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery), responses((status = 200, body = [AuditEvent])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEvent>>> {
    caller.require_admin()?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit", "must be between 1 and 1000"));
    }
    let filter = AuditFilter {
        actor: q.actor,
        action: q.action,
        record_type: q.record_type,
        record_id: q.record_id,
        since: time("since", q.since.as_deref())?,
        until: time("until", q.until.as_deref())?,
        before: q.before,
        limit,
    };
    Ok(Json(audit::list(&mut *state.store.conn().await?, &filter).await?))
}
