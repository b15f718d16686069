//! API tokens (for the CLI and CI) and browser sessions. Only a SHA-256 hash
//! of each secret is stored: the secret itself is shown once, at creation.

use serde::Serialize;
use sqlx::AnyConnection;

use crate::users::User;
use crate::{now_ms, Result, StoreError};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ApiToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

const TOKEN_COLS: &str = "id, user_id, name, created_at, expires_at, revoked_at, last_used_at";

pub async fn create_token(
    c: &mut AnyConnection,
    user_id: i64,
    name: &str,
    token_hash: &str,
    expires_at: Option<i64>,
) -> Result<ApiToken> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO api_tokens (user_id, name, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(user_id)
    .bind(name)
    .bind(token_hash)
    .bind(now_ms())
    .bind(expires_at)
    .fetch_one(&mut *c)
    .await?;
    get_token(c, id).await
}

pub async fn get_token(c: &mut AnyConnection, id: i64) -> Result<ApiToken> {
    sqlx::query_as(&format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE id = $1"))
        .bind(id)
        .fetch_optional(c)
        .await?
        .ok_or_else(|| StoreError::not_found("token", id))
}

pub async fn list_tokens(c: &mut AnyConnection, user_id: Option<i64>) -> Result<Vec<ApiToken>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TOKEN_COLS} FROM api_tokens WHERE ($1 IS NULL OR user_id = $1) ORDER BY id"
    ))
    .bind(user_id)
    .fetch_all(c)
    .await?)
}

pub async fn revoke_token(c: &mut AnyConnection, id: i64) -> Result<ApiToken> {
    sqlx::query("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1")
        .bind(id)
        .bind(now_ms())
        .execute(&mut *c)
        .await?;
    get_token(c, id).await
}

/// The live (not revoked, not expired, user not disabled) token's user.
pub async fn user_by_token(c: &mut AnyConnection, token_hash: &str) -> Result<Option<(User, i64)>> {
    let now = now_ms();
    let row: Option<(i64, i64, Option<i64>)> = sqlx::query_as(
        "SELECT t.id, t.user_id, t.last_used_at FROM api_tokens t JOIN users u ON u.id = t.user_id \
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2) AND u.disabled = 0",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(&mut *c)
    .await?;
    let Some((token_id, user_id, last_used)) = row else {
        return Ok(None);
    };
    // Recorded at most once a minute, and only then is a write sent: on
    // SQLite a statement that may write takes the database's write lock even
    // when it changes no row, so every API read queued behind every write
    // (and failed, "database is locked", behind one longer than the busy
    // timeout).
    if last_used.is_none_or(|t| t < now - LAST_USED_EVERY_MS) {
        sqlx::query(
            "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(token_id)
        .bind(now)
        .bind(now - LAST_USED_EVERY_MS)
        .execute(&mut *c)
        .await?;
    }
    Ok(Some((crate::users::get(c, user_id).await?, token_id)))
}

/// How often a token's "last used" time is written at most.
const LAST_USED_EVERY_MS: i64 = 60_000;

/// Marks lapsed tokens revoked so that listings show them as dead; returns how many.
pub async fn expire_tokens(c: &mut AnyConnection) -> Result<u64> {
    Ok(sqlx::query("UPDATE api_tokens SET revoked_at = expires_at WHERE revoked_at IS NULL AND expires_at IS NOT NULL AND expires_at <= $1")
        .bind(now_ms())
        .execute(c)
        .await?
        .rows_affected())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    pub id: i64,
    pub user_id: i64,
    pub csrf_token: String,
    pub expires_at: i64,
}

pub async fn create_session(
    c: &mut AnyConnection,
    user_id: i64,
    token_hash: &str,
    csrf_token: &str,
    ttl_ms: i64,
) -> Result<Session> {
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO sessions (token_hash, csrf_token, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(token_hash)
    .bind(csrf_token)
    .bind(user_id)
    .bind(now)
    .bind(now + ttl_ms)
    .fetch_one(c)
    .await?;
    Ok(Session {
        id,
        user_id,
        csrf_token: csrf_token.to_owned(),
        expires_at: now + ttl_ms,
    })
}

pub async fn session_by_hash(c: &mut AnyConnection, token_hash: &str) -> Result<Option<(Session, User)>> {
    let s: Option<Session> = sqlx::query_as(
        "SELECT s.id, s.user_id, s.csrf_token, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled = 0",
    )
    .bind(token_hash)
    .bind(now_ms())
    .fetch_optional(&mut *c)
    .await?;
    match s {
        Some(s) => {
            let u = crate::users::get(c, s.user_id).await?;
            Ok(Some((s, u)))
        }
        None => Ok(None),
    }
}

pub async fn delete_session(c: &mut AnyConnection, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn delete_expired_sessions(c: &mut AnyConnection) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now_ms())
        .execute(c)
        .await?
        .rows_affected())
}

/// Whether API token `id` still authenticates (not revoked, not expired, its
/// user not disabled): long-lived streams re-check their caller with it.
pub async fn token_active(c: &mut AnyConnection, id: i64) -> Result<bool> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT t.id FROM api_tokens t JOIN users u ON u.id = t.user_id \
         WHERE t.id = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2) AND u.disabled = 0",
    )
    .bind(id)
    .bind(now_ms())
    .fetch_optional(&mut *c)
    .await?;
    Ok(row.is_some())
}

/// Whether session `id` still authenticates (not ended, not expired, its user
/// not disabled).
pub async fn session_active(c: &mut AnyConnection, id: i64) -> Result<bool> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.id = $1 AND s.expires_at > $2 AND u.disabled = 0",
    )
    .bind(id)
    .bind(now_ms())
    .fetch_optional(&mut *c)
    .await?;
    Ok(row.is_some())
}

/// Ends every browser session of `user_id` except `keep` (the session that
/// changed its own password): a password change signs the user out
/// everywhere else. API tokens are not touched (they are listed to the user).
/// Returns how many sessions ended.
pub async fn end_sessions(c: &mut AnyConnection, user_id: i64, keep: Option<i64>) -> Result<u64> {
    let r = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
        .bind(user_id)
        .bind(keep.unwrap_or(-1))
        .execute(c)
        .await?;
    Ok(r.rows_affected())
}
