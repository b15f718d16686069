//! Logins the command line asked for and a person approves in a browser
//! (`prism login --sso`); the caller hashes the polling secret and seals
//! the token.

use sqlx::AnyConnection;

use crate::{now_ms, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CliLogin {
    pub id: i64,
    pub user_code: String,
    pub name: String,
    pub address: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub approved_by: Option<i64>,
    pub token_enc: Option<Vec<u8>>,
}

const COLS: &str = "id, user_code, name, address, created_at, expires_at, approved_by, token_enc";

/// How many unexpired requests wait (a bound on what anyone can make Prism store).
pub async fn pending(c: &mut AnyConnection) -> Result<i64> {
    sqlx::query("DELETE FROM cli_logins WHERE expires_at < $1")
        .bind(now_ms())
        .execute(&mut *c)
        .await?;
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM cli_logins")
        .fetch_one(c)
        .await?)
}

/// How many unexpired requests came from `address`.
pub async fn pending_from(c: &mut AnyConnection, address: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM cli_logins WHERE address = $1 AND expires_at >= $2")
            .bind(address)
            .bind(now_ms())
            .fetch_one(c)
            .await?,
    )
}

pub async fn create(
    c: &mut AnyConnection,
    user_code: &str,
    poll_hash: &str,
    name: &str,
    address: &str,
    expires_at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO cli_logins (user_code, poll_hash, name, address, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(user_code)
    .bind(poll_hash)
    .bind(name)
    .bind(address)
    .bind(now_ms())
    .bind(expires_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn by_code(c: &mut AnyConnection, user_code: &str) -> Result<Option<CliLogin>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLS} FROM cli_logins WHERE user_code = $1 AND expires_at >= $2"
    ))
    .bind(user_code)
    .bind(now_ms())
    .fetch_optional(c)
    .await?)
}

pub async fn by_poll_hash(c: &mut AnyConnection, poll_hash: &str) -> Result<Option<CliLogin>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLS} FROM cli_logins WHERE poll_hash = $1 AND expires_at >= $2"
    ))
    .bind(poll_hash)
    .bind(now_ms())
    .fetch_optional(c)
    .await?)
}

/// Records the approval and the sealed token; false when another approval won.
pub async fn approve(c: &mut AnyConnection, id: i64, user_id: i64, token_enc: &[u8]) -> Result<bool> {
    Ok(
        sqlx::query("UPDATE cli_logins SET approved_by = $2, token_enc = $3 WHERE id = $1 AND approved_by IS NULL")
            .bind(id)
            .bind(user_id)
            .bind(token_enc)
            .execute(c)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Removes a request (its token was picked up, or it is refused).
pub async fn delete(c: &mut AnyConnection, id: i64) -> Result<bool> {
    Ok(sqlx::query("DELETE FROM cli_logins WHERE id = $1")
        .bind(id)
        .execute(c)
        .await?
        .rows_affected()
        == 1)
}
