//! The append-only audit log. There is deliberately no update or delete here.

use serde::Serialize;
use sqlx::AnyConnection;

use crate::{now_ms, Result};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditEvent {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub address: String,
    pub action: String,
    pub record_type: String,
    pub record_id: String,
    #[serde(serialize_with = "raw_json")]
    pub detail: String,
}

fn raw_json<S: serde::Serializer>(v: &str, s: S) -> std::result::Result<S::Ok, S::Error> {
    let value: serde_json::Value = serde_json::from_str(v).unwrap_or(serde_json::Value::String(v.to_owned()));
    value.serialize(s)
}

/// Who did it and from where, carried from the request into every write.
#[derive(Debug, Clone)]
pub struct Origin {
    pub actor_id: Option<i64>,
    pub actor: String,
    pub address: String,
}

impl Origin {
    pub fn system(what: &str) -> Self {
        Self {
            actor_id: None,
            actor: format!("system:{what}"),
            address: String::new(),
        }
    }
}

pub async fn record(
    c: &mut AnyConnection,
    origin: &Origin,
    action: &str,
    record_type: &str,
    record_id: &str,
    detail: serde_json::Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (at, actor_id, actor, address, action, record_type, record_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(now_ms())
    .bind(origin.actor_id)
    .bind(&origin.actor)
    .bind(&origin.address)
    .bind(action)
    .bind(record_type)
    .bind(record_id)
    .bind(detail.to_string())
    .execute(c)
    .await?;
    Ok(())
}

#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub record_type: Option<String>,
    pub record_id: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub before: Option<i64>,
    pub limit: i64,
}

pub async fn list(c: &mut AnyConnection, f: &AuditFilter) -> Result<Vec<AuditEvent>> {
    Ok(sqlx::query_as(
        "SELECT id, at, actor, address, action, record_type, record_id, detail FROM audit_events \
         WHERE (CAST($1 AS TEXT) IS NULL OR actor = $1) AND (CAST($2 AS TEXT) IS NULL OR action = $2) \
         AND (CAST($3 AS TEXT) IS NULL OR record_type = $3) AND (CAST($4 AS TEXT) IS NULL OR record_id = $4) \
         AND (CAST($5 AS BIGINT) IS NULL OR at >= $5) AND (CAST($6 AS BIGINT) IS NULL OR at < $6) \
         AND (CAST($7 AS BIGINT) IS NULL OR id < $7) ORDER BY id DESC LIMIT $8",
    )
    .bind(f.actor.as_deref())
    .bind(f.action.as_deref())
    .bind(f.record_type.as_deref())
    .bind(f.record_id.as_deref())
    .bind(f.since)
    .bind(f.until)
    .bind(f.before)
    .bind(f.limit)
    .fetch_all(c)
    .await?)
}

pub async fn count(c: &mut AnyConnection) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(c)
        .await?)
}
