use prism_domain::{Role, RoleSet};
use serde::Serialize;
use sqlx::AnyConnection;

use crate::error::unique;
use crate::{now_ms, Result, StoreError};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Membership {
    pub project: String,
    pub username: String,
    pub role: String,
    pub created_at: i64,
}

pub async fn create(c: &mut AnyConnection, name: &str, description: &str) -> Result<Project> {
    let id: i64 =
        sqlx::query_scalar("INSERT INTO projects (name, description, created_at) VALUES ($1, $2, $3) RETURNING id")
            .bind(name)
            .bind(description)
            .bind(now_ms())
            .fetch_one(&mut *c)
            .await
            .map_err(unique("project", "name", name))?;
    get(c, id).await
}

pub async fn get(c: &mut AnyConnection, id: i64) -> Result<Project> {
    sqlx::query_as("SELECT id, name, description, created_at FROM projects WHERE id = $1")
        .bind(id)
        .fetch_optional(c)
        .await?
        .ok_or_else(|| StoreError::not_found("project", id))
}

pub async fn by_name(c: &mut AnyConnection, name: &str) -> Result<Project> {
    find_by_name(c, name)
        .await?
        .ok_or_else(|| StoreError::not_found("project", name))
}

pub async fn find_by_name(c: &mut AnyConnection, name: &str) -> Result<Option<Project>> {
    Ok(
        sqlx::query_as("SELECT id, name, description, created_at FROM projects WHERE name = $1")
            .bind(name)
            .fetch_optional(c)
            .await?,
    )
}

/// Projects the user may see: all for an admin (`user_id` None), else those
/// where the user holds any role.
pub async fn list_visible(c: &mut AnyConnection, user_id: Option<i64>) -> Result<Vec<Project>> {
    Ok(sqlx::query_as(
        "SELECT id, name, description, created_at FROM projects p \
         WHERE CAST($1 AS BIGINT) IS NULL OR EXISTS (SELECT 1 FROM memberships m WHERE m.project_id = p.id AND m.user_id = $1) \
         ORDER BY name",
    )
    .bind(user_id)
    .fetch_all(c)
    .await?)
}

pub async fn update(c: &mut AnyConnection, id: i64, description: &str) -> Result<Project> {
    sqlx::query("UPDATE projects SET description = $2 WHERE id = $1")
        .bind(id)
        .bind(description)
        .execute(&mut *c)
        .await?;
    get(c, id).await
}

pub async fn delete(c: &mut AnyConnection, id: i64) -> Result<()> {
    let apps: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM applications WHERE project_id = $1")
        .bind(id)
        .fetch_one(&mut *c)
        .await?;
    if apps > 0 {
        return Err(StoreError::InUse(format!(
            "the project still has {apps} application(s)"
        )));
    }
    sqlx::query("DELETE FROM projects WHERE id = $1")
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn grant(c: &mut AnyConnection, project_id: i64, user_id: i64, role: Role) -> Result<bool> {
    let n = sqlx::query(
        "INSERT INTO memberships (project_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(project_id)
    .bind(user_id)
    .bind(role.as_str())
    .bind(now_ms())
    .execute(c)
    .await?
    .rows_affected();
    Ok(n > 0)
}

pub async fn revoke(c: &mut AnyConnection, project_id: i64, user_id: i64, role: Role) -> Result<bool> {
    let n = sqlx::query("DELETE FROM memberships WHERE project_id = $1 AND user_id = $2 AND role = $3")
        .bind(project_id)
        .bind(user_id)
        .bind(role.as_str())
        .execute(c)
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// Replaces all of a user's roles with `roles` (project id, role): what a
/// directory user's groups grant at their login. Returns whether anything changed.
pub async fn replace_memberships(c: &mut AnyConnection, user_id: i64, roles: &[(i64, Role)]) -> Result<bool> {
    let mut before: Vec<(i64, String)> = sqlx::query_as("SELECT project_id, role FROM memberships WHERE user_id = $1")
        .bind(user_id)
        .fetch_all(&mut *c)
        .await?;
    let mut after: Vec<(i64, String)> = roles.iter().map(|(p, r)| (*p, r.as_str().to_owned())).collect();
    before.sort();
    after.sort();
    after.dedup();
    if before == after {
        return Ok(false);
    }
    sqlx::query("DELETE FROM memberships WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *c)
        .await?;
    for (project_id, role) in roles {
        grant(c, *project_id, user_id, *role).await?;
    }
    Ok(true)
}

pub async fn members(c: &mut AnyConnection, project_id: i64) -> Result<Vec<Membership>> {
    Ok(sqlx::query_as(
        "SELECT p.name AS project, u.username, m.role, m.created_at FROM memberships m \
         JOIN users u ON u.id = m.user_id JOIN projects p ON p.id = m.project_id \
         WHERE m.project_id = $1 ORDER BY u.username, m.role",
    )
    .bind(project_id)
    .fetch_all(c)
    .await?)
}

pub async fn memberships_of(c: &mut AnyConnection, user_id: i64) -> Result<Vec<Membership>> {
    Ok(sqlx::query_as(
        "SELECT p.name AS project, u.username, m.role, m.created_at FROM memberships m \
         JOIN users u ON u.id = m.user_id JOIN projects p ON p.id = m.project_id \
         WHERE m.user_id = $1 ORDER BY p.name, m.role",
    )
    .bind(user_id)
    .fetch_all(c)
    .await?)
}

/// The caller's roles in a project, with the admin flag folded in.
pub async fn roles(c: &mut AnyConnection, project_id: i64, user_id: i64, admin: bool) -> Result<RoleSet> {
    if admin {
        return Ok(RoleSet::admin());
    }
    let rows: Vec<String> = sqlx::query_scalar("SELECT role FROM memberships WHERE project_id = $1 AND user_id = $2")
        .bind(project_id)
        .bind(user_id)
        .fetch_all(c)
        .await?;
    let roles = rows
        .iter()
        .map(|r| Role::parse("role", r).map_err(|e| StoreError::Corrupt(e.to_string())))
        .collect::<Result<Vec<_>>>()?;
    Ok(RoleSet::of(roles))
}
