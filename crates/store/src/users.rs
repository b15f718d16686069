use serde::Serialize;
use sqlx::AnyConnection;

use crate::error::unique;
use crate::{now_ms, Result, StoreError};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    #[serde(skip)]
    pub password_hash: String,
    #[serde(serialize_with = "crate::ser_flag")]
    pub is_admin: i64,
    #[serde(serialize_with = "crate::ser_flag")]
    pub disabled: i64,
    pub created_at: i64,
    /// `local` (a password Prism keeps) or `ldap` (the directory checks it
    /// and the user's groups set the roles at every login).
    pub source: String,
}

impl User {
    pub fn admin(&self) -> bool {
        self.is_admin != 0
    }
    pub fn is_disabled(&self) -> bool {
        self.disabled != 0
    }
}

const COLS: &str = "id, username, display_name, password_hash, is_admin, disabled, created_at, source";

pub async fn create(
    c: &mut AnyConnection,
    username: &str,
    display_name: &str,
    password_hash: &str,
    admin: bool,
) -> Result<User> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (username, display_name, password_hash, is_admin, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(username)
    .bind(display_name)
    .bind(password_hash)
    .bind(admin as i64)
    .bind(now_ms())
    .fetch_one(&mut *c)
    .await
    .map_err(unique("user", "username", username))?;
    get(c, id).await
}

pub async fn get(c: &mut AnyConnection, id: i64) -> Result<User> {
    sqlx::query_as(&format!("SELECT {COLS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(c)
        .await?
        .ok_or_else(|| StoreError::not_found("user", id))
}

pub async fn by_name(c: &mut AnyConnection, username: &str) -> Result<User> {
    find_by_name(c, username)
        .await?
        .ok_or_else(|| StoreError::not_found("user", username))
}

pub async fn find_by_name(c: &mut AnyConnection, username: &str) -> Result<Option<User>> {
    Ok(sqlx::query_as(&format!("SELECT {COLS} FROM users WHERE username = $1"))
        .bind(username)
        .fetch_optional(c)
        .await?)
}

pub async fn list(c: &mut AnyConnection) -> Result<Vec<User>> {
    // Webhooks' rows (`webhook:APP`, see `crate::webhooks`) are not people.
    Ok(sqlx::query_as(&format!(
        "SELECT {COLS} FROM users WHERE username NOT LIKE 'webhook:%' ORDER BY username"
    ))
    .fetch_all(c)
    .await?)
}

pub async fn count(c: &mut AnyConnection) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(c).await?)
}

pub async fn update(
    c: &mut AnyConnection,
    id: i64,
    display_name: Option<&str>,
    admin: Option<bool>,
    disabled: Option<bool>,
    password_hash: Option<&str>,
) -> Result<User> {
    let n = sqlx::query(
        "UPDATE users SET display_name = COALESCE($2, display_name), is_admin = COALESCE($3, is_admin), \
         disabled = COALESCE($4, disabled), password_hash = COALESCE($5, password_hash) WHERE id = $1",
    )
    .bind(id)
    .bind(display_name)
    .bind(admin.map(|b| b as i64))
    .bind(disabled.map(|b| b as i64))
    .bind(password_hash)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(StoreError::not_found("user", id));
    }
    if disabled == Some(true) {
        // A disabled user loses every live session at once.
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id)
            .execute(&mut *c)
            .await?;
    }
    get(c, id).await
}

pub async fn count_admins(c: &mut AnyConnection) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE is_admin = 1 AND disabled = 0")
            .fetch_one(c)
            .await?,
    )
}

/// Counts active admins, locking their rows until the transaction ends, so two
/// concurrent demotions cannot both see "another admin remains" (PostgreSQL;
/// SQLite's single writer already serialises them).
pub async fn lock_and_count_admins(c: &mut AnyConnection, backend: crate::Backend) -> Result<i64> {
    if backend == crate::Backend::Sqlite {
        return count_admins(c).await;
    }
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM users WHERE is_admin = 1 AND disabled = 0 ORDER BY id FOR UPDATE")
            .fetch_all(c)
            .await?;
    Ok(ids.len() as i64)
}

/// The source of users the company's directory checks.
pub const DIRECTORY_SOURCE: &str = "ldap";

/// A user the directory vouched for, created at their first login: no
/// password Prism could check (`!` matches no hash), so only the directory
/// lets them in.
/// Users the company's OpenID provider vouches for (no Prism password).
pub const OIDC_SOURCE: &str = "oidc";

pub async fn create_from_directory(c: &mut AnyConnection, username: &str, display_name: &str) -> Result<User> {
    create_external(c, username, display_name, DIRECTORY_SOURCE).await
}

/// A user whose identity another system keeps (`source`: the directory or
/// the OpenID provider): no usable Prism password.
pub async fn create_external(c: &mut AnyConnection, username: &str, display_name: &str, source: &str) -> Result<User> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (username, display_name, password_hash, is_admin, created_at, source) \
         VALUES ($1, $2, '!', 0, $3, $4) RETURNING id",
    )
    .bind(username)
    .bind(display_name)
    .bind(now_ms())
    .bind(source)
    .fetch_one(&mut *c)
    .await
    .map_err(unique("user", "username", username))?;
    get(c, id).await
}

/// The user an identity provider knows as `external_id` (`issuer#subject`).
pub async fn by_external_id(c: &mut AnyConnection, external_id: &str) -> Result<Option<User>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLS} FROM users WHERE external_id = $1"))
            .bind(external_id)
            .fetch_optional(c)
            .await?,
    )
}

/// The provider's identity recorded for a user, if any.
pub async fn external_id_of(c: &mut AnyConnection, user_id: i64) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT external_id FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(c)
        .await?)
}

pub async fn set_external_id(c: &mut AnyConnection, user_id: i64, external_id: &str) -> Result<()> {
    sqlx::query("UPDATE users SET external_id = $2 WHERE id = $1")
        .bind(user_id)
        .bind(external_id)
        .execute(c)
        .await?;
    Ok(())
}
