//! Projects: admins create, describe and delete them; members see theirs.

use prism_api::projects::{CreateProject, UpdateProject};
use prism_domain::Name;
use prism_store::audit;
use prism_store::projects::{self, Project};
use serde_json::json;

use super::{access, Ctx, OpError, OpResult};
use crate::auth::Caller;

fn description(field: &str, d: &str) -> OpResult<()> {
    if d.len() > 2000 {
        return Err(OpError::invalid(field, "must be at most 2000 characters"));
    }
    Ok(())
}

/// The projects the caller may see.
pub async fn list(ctx: &Ctx, caller: &Caller) -> OpResult<Vec<Project>> {
    Ok(projects::list_visible(&mut *ctx.store.conn().await?, access::visibility(caller)).await?)
}

pub async fn create(ctx: &Ctx, caller: &Caller, req: CreateProject) -> OpResult<Project> {
    access::require_admin(caller)?;
    let name = Name::parse("name", &req.name)?;
    description("description", &req.description)?;
    let mut tx = ctx.store.begin().await?;
    let p = projects::create(&mut tx, name.as_str(), &req.description).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "project.create",
        "project",
        name.as_str(),
        json!({"description": req.description}),
    )
    .await?;
    tx.commit().await?;
    Ok(p)
}

pub async fn get(ctx: &Ctx, caller: &Caller, name: &str) -> OpResult<Project> {
    access::project(&mut *ctx.store.conn().await?, caller, name).await
}

pub async fn update(ctx: &Ctx, caller: &Caller, name: &str, req: UpdateProject) -> OpResult<Project> {
    access::require_admin(caller)?;
    description("description", &req.description)?;
    let mut tx = ctx.store.begin().await?;
    let p = projects::by_name(&mut tx, name).await?;
    let p = projects::update(&mut tx, p.id, &req.description).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "project.update",
        "project",
        name,
        json!({"description": req.description}),
    )
    .await?;
    tx.commit().await?;
    Ok(p)
}

pub async fn delete(ctx: &Ctx, caller: &Caller, name: &str) -> OpResult<()> {
    access::require_admin(caller)?;
    let mut tx = ctx.store.begin().await?;
    let p = projects::by_name(&mut tx, name).await?;
    projects::delete(&mut tx, p.id).await?;
    audit::record(&mut tx, &caller.origin(), "project.delete", "project", name, json!({})).await?;
    tx.commit().await?;
    Ok(())
}
