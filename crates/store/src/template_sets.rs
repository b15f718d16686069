//! Versioned manifest templates per project: every edit stores the whole set
//! as a new version, so a deploy can say exactly what it rendered.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::AnyConnection;

use crate::{now_ms, Result, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct TemplateSetVersion {
    pub version: i64,
    /// The project's own templates (name -> body); built-ins fill the rest.
    pub files: BTreeMap<String, String>,
    pub author: String,
    pub note: String,
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    version: i64,
    files: String,
    author: String,
    note: String,
    created_at: i64,
}

impl TryFrom<Row> for TemplateSetVersion {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self> {
        Ok(Self {
            version: r.version,
            files: serde_json::from_str(&r.files).map_err(|e| StoreError::Corrupt(format!("template set: {e}")))?,
            author: r.author,
            note: r.note,
            created_at: r.created_at,
        })
    }
}

/// The current set (version 0 with no files when never edited).
pub async fn current(c: &mut AnyConnection, project_id: i64) -> Result<TemplateSetVersion> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT version, files, author, note, created_at FROM template_sets WHERE project_id = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(project_id)
    .fetch_optional(c)
    .await?;
    match row {
        Some(r) => r.try_into(),
        None => Ok(TemplateSetVersion {
            version: 0,
            files: BTreeMap::new(),
            author: String::new(),
            note: String::new(),
            created_at: 0,
        }),
    }
}

pub async fn get(c: &mut AnyConnection, project_id: i64, version: i64) -> Result<TemplateSetVersion> {
    if version == 0 {
        return Ok(TemplateSetVersion {
            version: 0,
            files: BTreeMap::new(),
            author: String::new(),
            note: String::new(),
            created_at: 0,
        });
    }
    let row: Row = sqlx::query_as(
        "SELECT version, files, author, note, created_at FROM template_sets WHERE project_id = $1 AND version = $2",
    )
    .bind(project_id)
    .bind(version)
    .fetch_optional(c)
    .await?
    .ok_or_else(|| StoreError::not_found("template version", version))?;
    row.try_into()
}

/// Stores a new version; `expected` is the version the edit was based on, so
/// two concurrent edits cannot silently overwrite each other.
pub async fn save(
    c: &mut AnyConnection,
    project_id: i64,
    expected: i64,
    files: &BTreeMap<String, String>,
    author: &str,
    note: &str,
) -> Result<TemplateSetVersion> {
    let cur = current(c, project_id).await?;
    if cur.version != expected {
        return Err(StoreError::Conflict(format!(
            "the templates were changed meanwhile (now version {}); reload and retry",
            cur.version
        )));
    }
    let version = cur.version + 1;
    sqlx::query("INSERT INTO template_sets (project_id, version, files, author, note, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(project_id)
        .bind(version)
        .bind(serde_json::to_string(files).expect("a string map serialises"))
        .bind(author)
        .bind(note)
        .bind(now_ms())
        .execute(&mut *c)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict("the templates were changed meanwhile; reload and retry".into()),
            _ => StoreError::Database(e),
        })?;
    get(c, project_id, version).await
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct VersionSummary {
    pub version: i64,
    pub author: String,
    pub note: String,
    pub created_at: i64,
}

pub async fn history(c: &mut AnyConnection, project_id: i64) -> Result<Vec<VersionSummary>> {
    Ok(sqlx::query_as(
        "SELECT version, author, note, created_at FROM template_sets WHERE project_id = $1 ORDER BY version DESC",
    )
    .bind(project_id)
    .fetch_all(c)
    .await?)
}
