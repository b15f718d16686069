//! Idempotency keys: the response of a mutating request, stored in the same
//! transaction as the change it made, under the caller's key. The server's
//! middleware looks a key up before running a request again.

use sqlx::AnyConnection;

use crate::error::unique;
use crate::{now_ms, Result};

/// A key's record: what it was first used for and, once that committed, its response.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredKey {
    pub request: String,
    pub fingerprint: String,
    pub status: Option<i64>,
    pub body: Option<String>,
    pub created_at: i64,
}

/// The record of `user`'s `key`, if a committed request used it.
pub async fn find(c: &mut AnyConnection, user_id: i64, key: &str) -> Result<Option<StoredKey>> {
    Ok(sqlx::query_as(
        "SELECT request, fingerprint, status, body, created_at FROM idempotency_keys WHERE user_id = $1 AND idem_key = $2",
    )
    .bind(user_id)
    .bind(key)
    .fetch_optional(c)
    .await?)
}

/// Takes `key` for this request, first thing in its transaction: a second
/// request with the same key waits here until the first commits (PostgreSQL's
/// unique index; SQLite's single writer) and then fails with `Duplicate`.
pub async fn claim(c: &mut AnyConnection, user_id: i64, key: &str, request: &str, fingerprint: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO idempotency_keys (user_id, idem_key, request, fingerprint, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(user_id)
    .bind(key)
    .bind(request)
    .bind(fingerprint)
    .bind(now_ms())
    .execute(c)
    .await
    .map_err(unique("idempotency key", "Idempotency-Key", key))?;
    Ok(())
}

/// Stores the response of the request that claimed `key`, before its transaction commits.
pub async fn complete(c: &mut AnyConnection, user_id: i64, key: &str, status: u16, body: &str) -> Result<()> {
    sqlx::query("UPDATE idempotency_keys SET status = $1, body = $2 WHERE user_id = $3 AND idem_key = $4")
        .bind(i64::from(status))
        .bind(body)
        .bind(user_id)
        .bind(key)
        .execute(c)
        .await?;
    Ok(())
}

/// Deletes keys made before `before` (ms); returns how many.
pub async fn prune(c: &mut AnyConnection, before: i64) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(before)
        .execute(c)
        .await?
        .rows_affected())
}
