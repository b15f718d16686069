//! The rules that map the company directory's groups to Prism roles, in
//! the order an admin gave them (the identity crate applies them).

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use crate::Result;

/// One stored rule: `group` grants `role` in `project`, or admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct StoredRule {
    pub group_name: String,
    pub project: Option<String>,
    pub role: Option<String>,
    pub admin: i64,
}

pub async fn group_rules(c: &mut AnyConnection) -> Result<Vec<StoredRule>> {
    Ok(
        sqlx::query_as("SELECT group_name, project, role, admin FROM directory_group_rules ORDER BY position, id")
            .fetch_all(c)
            .await?,
    )
}

/// Replaces every rule (the caller validated them).
pub async fn replace_group_rules(c: &mut AnyConnection, rules: &[StoredRule]) -> Result<()> {
    sqlx::query("DELETE FROM directory_group_rules")
        .execute(&mut *c)
        .await?;
    for (i, r) in rules.iter().enumerate() {
        sqlx::query(
            "INSERT INTO directory_group_rules (position, group_name, project, role, admin) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(i as i64)
        .bind(&r.group_name)
        .bind(&r.project)
        .bind(&r.role)
        .bind(r.admin)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}
