//! Base images in tiers (1: public base, 2: runtime base on a tier-1 parent;
//! application images are builds) and their lineage: every digest a base was
//! built as, which parent digest it was built on, and which application
//! images were built on which base digest.

use prism_domain::BaseBuildState;
use serde::Serialize;
use sqlx::AnyConnection;

use crate::error::unique;
use crate::{now_ms, Result, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct BaseImage {
    #[serde(skip)]
    pub id: i64,
    pub name: String,
    pub tier: i64,
    pub parent: Option<String>,
    #[serde(skip)]
    pub parent_id: Option<i64>,
    pub registry: Option<String>,
    #[serde(skip)]
    pub registry_id: Option<i64>,
    pub repository: String,
    pub tag: String,
    /// How Prism builds it (empty for an image registered as it is).
    pub recipe: serde_json::Value,
    /// The digest of the current build (or of the registered image).
    pub digest: Option<String>,
    /// The parent's digest this build was made on.
    pub parent_digest: Option<String>,
    pub built_at: Option<i64>,
    pub build_state: BaseBuildState,
    pub build_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    name: String,
    tier: i64,
    parent: Option<String>,
    parent_id: Option<i64>,
    registry: Option<String>,
    registry_id: Option<i64>,
    repository: String,
    tag: String,
    recipe: String,
    digest: Option<String>,
    parent_digest: Option<String>,
    built_at: Option<i64>,
    build_state: String,
    build_error: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<Row> for BaseImage {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self> {
        Ok(BaseImage {
            recipe: serde_json::from_str(&r.recipe).map_err(|e| StoreError::Corrupt(format!("base recipe: {e}")))?,
            id: r.id,
            name: r.name,
            tier: r.tier,
            parent: r.parent,
            parent_id: r.parent_id,
            registry: r.registry,
            registry_id: r.registry_id,
            repository: r.repository,
            tag: r.tag,
            digest: r.digest,
            parent_digest: r.parent_digest,
            built_at: r.built_at,
            build_state: crate::stored::read("base_images.build_state", &r.build_state)?,
            build_error: r.build_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const SELECT: &str = "SELECT b.id, b.name, b.tier, p.name AS parent, b.parent_id, r.name AS registry, b.registry_id, \
    b.repository, b.tag, b.recipe, b.digest, b.parent_digest, b.built_at, b.build_state, b.build_error, b.created_at, b.updated_at \
    FROM base_images b LEFT JOIN base_images p ON p.id = b.parent_id LEFT JOIN registries r ON r.id = b.registry_id";

pub struct NewBase<'a> {
    pub name: &'a str,
    pub tier: i64,
    pub parent_id: Option<i64>,
    pub registry_id: Option<i64>,
    pub repository: &'a str,
    pub tag: &'a str,
    pub recipe: &'a serde_json::Value,
    /// Known at once for an image registered as it is.
    pub digest: Option<&'a str>,
}

pub async fn create(c: &mut AnyConnection, n: NewBase<'_>) -> Result<BaseImage> {
    let now = now_ms();
    let state = if n.digest.is_some() {
        BaseBuildState::Succeeded
    } else {
        BaseBuildState::Never
    }
    .as_str();
    sqlx::query(
        "INSERT INTO base_images (name, tier, parent_id, registry_id, repository, tag, recipe, digest, built_at, build_state, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
    )
    .bind(n.name)
    .bind(n.tier)
    .bind(n.parent_id)
    .bind(n.registry_id)
    .bind(n.repository)
    .bind(n.tag)
    .bind(n.recipe.to_string())
    .bind(n.digest)
    .bind(n.digest.map(|_| now))
    .bind(state)
    .bind(now)
    .execute(&mut *c)
    .await
    .map_err(unique("base image", "name", n.name))?;
    let b = by_name(c, n.name).await?;
    if let Some(d) = n.digest {
        record_version(c, b.id, d, None).await?;
    }
    Ok(b)
}

pub async fn by_name(c: &mut AnyConnection, name: &str) -> Result<BaseImage> {
    let row: Option<Row> = sqlx::query_as(&format!("{SELECT} WHERE b.name = $1"))
        .bind(name)
        .fetch_optional(c)
        .await?;
    row.ok_or_else(|| StoreError::not_found("base image", name))?.try_into()
}

pub async fn get(c: &mut AnyConnection, id: i64) -> Result<BaseImage> {
    let row: Option<Row> = sqlx::query_as(&format!("{SELECT} WHERE b.id = $1"))
        .bind(id)
        .fetch_optional(c)
        .await?;
    row.ok_or_else(|| StoreError::not_found("base image", id))?.try_into()
}

pub async fn list(c: &mut AnyConnection) -> Result<Vec<BaseImage>> {
    let rows: Vec<Row> = sqlx::query_as(&format!("{SELECT} ORDER BY b.tier, b.name"))
        .fetch_all(c)
        .await?;
    rows.into_iter().map(BaseImage::try_from).collect()
}

pub async fn update_recipe(c: &mut AnyConnection, id: i64, recipe: &serde_json::Value) -> Result<()> {
    sqlx::query("UPDATE base_images SET recipe = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(recipe.to_string())
        .bind(now_ms())
        .execute(c)
        .await?;
    Ok(())
}

/// Marks a build of the base queued; false if one is queued or running already.
pub async fn mark_queued(c: &mut AnyConnection, id: i64) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE base_images SET build_state = $3, build_error = NULL, updated_at = $2 \
         WHERE id = $1 AND build_state NOT IN ($3, $4)",
    )
    .bind(id)
    .bind(now_ms())
    .bind(BaseBuildState::Queued.as_str())
    .bind(BaseBuildState::Building.as_str())
    .execute(c)
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub async fn set_state(c: &mut AnyConnection, id: i64, state: BaseBuildState, error: Option<&str>) -> Result<()> {
    sqlx::query("UPDATE base_images SET build_state = $2, build_error = $3, updated_at = $4 WHERE id = $1")
        .bind(id)
        .bind(state.as_str())
        .bind(error)
        .bind(now_ms())
        .execute(c)
        .await?;
    Ok(())
}

/// Records a finished build of the base: its new digest and the parent digest it was built on.
pub async fn record_build(c: &mut AnyConnection, id: i64, digest: &str, parent_digest: Option<&str>) -> Result<()> {
    let now = now_ms();
    sqlx::query(
        "UPDATE base_images SET digest = $2, parent_digest = $3, built_at = $4, build_state = $5, \
         build_error = NULL, updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(digest)
    .bind(parent_digest)
    .bind(now)
    .bind(BaseBuildState::Succeeded.as_str())
    .execute(&mut *c)
    .await?;
    record_version(c, id, digest, parent_digest).await
}

async fn record_version(c: &mut AnyConnection, id: i64, digest: &str, parent_digest: Option<&str>) -> Result<()> {
    sqlx::query("DELETE FROM base_image_versions WHERE base_id = $1 AND digest = $2")
        .bind(id)
        .bind(digest)
        .execute(&mut *c)
        .await?;
    sqlx::query("INSERT INTO base_image_versions (base_id, digest, parent_digest, built_at) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(digest)
        .bind(parent_digest)
        .bind(now_ms())
        .execute(c)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct BaseVersion {
    pub digest: String,
    pub parent_digest: Option<String>,
    pub built_at: i64,
}

pub async fn versions(c: &mut AnyConnection, id: i64) -> Result<Vec<BaseVersion>> {
    Ok(sqlx::query_as(
        "SELECT digest, parent_digest, built_at FROM base_image_versions WHERE base_id = $1 ORDER BY built_at DESC, digest",
    )
    .bind(id)
    .fetch_all(c)
    .await?)
}

/// A tier-2 base built on an older digest of its parent than the current one.
pub async fn outdated_children(c: &mut AnyConnection, id: i64) -> Result<Vec<BaseImage>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "{SELECT} WHERE b.parent_id = $1 AND (b.parent_digest IS NULL OR b.parent_digest <> p.digest) ORDER BY b.name"
    ))
    .bind(id)
    .fetch_all(c)
    .await?;
    rows.into_iter().map(BaseImage::try_from).collect()
}

/// An application whose newest image is built on an older digest of a base.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct OutdatedApp {
    pub application: String,
    pub project: String,
    #[serde(skip)]
    pub app_id: i64,
    /// The release whose image is the application's newest.
    pub release_seq: i64,
    pub build_id: i64,
    pub commit_sha: Option<String>,
    pub git_ref: String,
    pub base_digest: String,
}

/// Applications whose newest successful build used base `id` at a digest other
/// than its current one (one query: newest build per application via MAX(id)).
pub async fn outdated_apps(c: &mut AnyConnection, id: i64) -> Result<Vec<OutdatedApp>> {
    Ok(sqlx::query_as(
        "SELECT a.name AS application, p.name AS project, a.id AS app_id, r.id AS release_seq, b.id AS build_id, \
         b.commit_sha, r.git_ref, b.base_digest \
         FROM builds b \
         JOIN (SELECT app_id, MAX(id) AS id FROM builds WHERE state = $2 GROUP BY app_id) newest ON newest.id = b.id \
         JOIN applications a ON a.id = b.app_id JOIN projects p ON p.id = a.project_id \
         JOIN releases r ON r.id = b.release_id \
         JOIN base_images bi ON bi.id = b.base_image_id \
         WHERE b.base_image_id = $1 AND b.base_digest IS NOT NULL AND (bi.digest IS NULL OR b.base_digest <> bi.digest) \
         ORDER BY a.name",
    )
    .bind(id)
    .bind(prism_domain::BuildState::Succeeded.as_str())
    .fetch_all(c)
    .await?)
}

pub async fn delete(c: &mut AnyConnection, id: i64) -> Result<()> {
    let children: Vec<String> = sqlx::query_scalar("SELECT name FROM base_images WHERE parent_id = $1 ORDER BY name")
        .bind(id)
        .fetch_all(&mut *c)
        .await?;
    if !children.is_empty() {
        return Err(StoreError::InUse(format!(
            "base images {} are built on it",
            children.join(", ")
        )));
    }
    let used: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM builds WHERE base_image_id = $1")
        .bind(id)
        .fetch_one(&mut *c)
        .await?;
    if used > 0 {
        return Err(StoreError::InUse(format!(
            "{used} builds were made on it (its lineage is kept)"
        )));
    }
    sqlx::query("DELETE FROM base_images WHERE id = $1")
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

/// Bases marked queued or building with no live job and no change for `quiet_for_ms`
/// (the job's last attempt died with its server).
pub async fn stale_builds(c: &mut AnyConnection, quiet_for_ms: i64) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT b.id FROM base_images b WHERE b.build_state IN ($2, $3) AND b.updated_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind = 'base_image' AND j.state IN ('queued', 'running') \
         AND j.dedup_key LIKE 'base_image:' || CAST(b.id AS TEXT) || ':%') ORDER BY b.id",
    )
    .bind(now_ms() - quiet_for_ms)
    .bind(BaseBuildState::Queued.as_str())
    .bind(BaseBuildState::Building.as_str())
    .fetch_all(c)
    .await?)
}
