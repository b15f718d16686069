//! Stack presets: how a kind of application is built and run (build command,
//! artifact paths, where they go in the image, the command the image runs).
//! They are data an admin edits, not branches in the pipeline's code.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::AnyConnection;

use crate::error::unique;
use crate::{now_ms, Result, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct Stack {
    pub name: String,
    pub description: String,
    pub build_command: String,
    pub artifact_paths: Vec<String>,
    pub image_dir: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    name: String,
    description: String,
    build_command: String,
    artifact_paths: String,
    image_dir: String,
    entrypoint: String,
    cmd: String,
    env: String,
    updated_at: i64,
}

fn parse<T: serde::de::DeserializeOwned>(field: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("stack {field}: {e}")))
}

impl TryFrom<Row> for Stack {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self> {
        Ok(Stack {
            artifact_paths: parse("artifact_paths", &r.artifact_paths)?,
            entrypoint: parse("entrypoint", &r.entrypoint)?,
            cmd: parse("cmd", &r.cmd)?,
            env: parse("env", &r.env)?,
            name: r.name,
            description: r.description,
            build_command: r.build_command,
            image_dir: r.image_dir,
            updated_at: r.updated_at,
        })
    }
}

const COLS: &str = "name, description, build_command, artifact_paths, image_dir, entrypoint, cmd, env, updated_at";

pub async fn list(c: &mut AnyConnection) -> Result<Vec<Stack>> {
    let rows: Vec<Row> = sqlx::query_as(&format!("SELECT {COLS} FROM stacks ORDER BY name"))
        .fetch_all(c)
        .await?;
    rows.into_iter().map(Stack::try_from).collect()
}

pub async fn by_name(c: &mut AnyConnection, name: &str) -> Result<Stack> {
    let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLS} FROM stacks WHERE name = $1"))
        .bind(name)
        .fetch_optional(c)
        .await?;
    row.ok_or_else(|| StoreError::not_found("stack", name))?.try_into()
}

fn js<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("stack fields serialise")
}

pub async fn create(c: &mut AnyConnection, s: &Stack) -> Result<Stack> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO stacks (name, description, build_command, artifact_paths, image_dir, entrypoint, cmd, env, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(&s.name)
    .bind(&s.description)
    .bind(&s.build_command)
    .bind(js(&s.artifact_paths))
    .bind(&s.image_dir)
    .bind(js(&s.entrypoint))
    .bind(js(&s.cmd))
    .bind(js(&s.env))
    .bind(now)
    .execute(&mut *c)
    .await
    .map_err(unique("stack", "name", &s.name))?;
    by_name(c, &s.name).await
}

/// Replaces every field of the stack named `s.name`.
pub async fn replace(c: &mut AnyConnection, s: &Stack) -> Result<Stack> {
    let n = sqlx::query(
        "UPDATE stacks SET description = $2, build_command = $3, artifact_paths = $4, image_dir = $5, \
         entrypoint = $6, cmd = $7, env = $8, updated_at = $9 WHERE name = $1",
    )
    .bind(&s.name)
    .bind(&s.description)
    .bind(&s.build_command)
    .bind(js(&s.artifact_paths))
    .bind(&s.image_dir)
    .bind(js(&s.entrypoint))
    .bind(js(&s.cmd))
    .bind(js(&s.env))
    .bind(now_ms())
    .execute(&mut *c)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(StoreError::not_found("stack", &s.name));
    }
    by_name(c, &s.name).await
}

pub async fn delete(c: &mut AnyConnection, name: &str) -> Result<()> {
    let n = sqlx::query("DELETE FROM stacks WHERE name = $1")
        .bind(name)
        .execute(c)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::not_found("stack", name));
    }
    Ok(())
}
