//! The audit log, newest first, filtered. Admins only.

use prism_store::audit::{self, AuditEvent, AuditFilter};
use serde::Deserialize;

use super::{access, Ctx, OpError, OpResult};
use crate::auth::Caller;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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

fn time(field: &str, v: Option<&str>) -> OpResult<Option<i64>> {
    let Some(v) = v else { return Ok(None) };
    if let Ok(ms) = v.parse::<i64>() {
        return Ok(Some(ms));
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| Some(t.timestamp_millis()))
        .map_err(|_| {
            OpError::invalid(
                field,
                "must be an RFC 3339 time (2026-01-31T12:00:00Z) or Unix milliseconds",
            )
        })
}

pub async fn list(ctx: &Ctx, caller: &Caller, q: AuditQuery) -> OpResult<Vec<AuditEvent>> {
    access::require_admin(caller)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(OpError::invalid("limit", "must be between 1 and 1000"));
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
    Ok(audit::list(&mut *ctx.store.conn().await?, &filter).await?)
}
