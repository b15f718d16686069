//! Who holds which role in a project: admins grant and revoke; members see
//! the project's members.

use prism_api::projects::Grant;
use prism_domain::Role;
use prism_store::projects::{self, Membership};
use prism_store::{audit, users, AnyConnection};
use serde_json::json;

use super::{access, referenced, Ctx, OpError, OpResult};
use crate::auth::Caller;

pub async fn list(ctx: &Ctx, caller: &Caller, project: &str) -> OpResult<Vec<Membership>> {
    let mut c = ctx.store.conn().await?;
    let p = access::project(&mut c, caller, project).await?;
    Ok(projects::members(&mut c, p.id).await?)
}

async fn user_id(c: &mut AnyConnection, username: &str) -> OpResult<i64> {
    if prism_store::webhooks::is_webhook_user(username) {
        // A webhook's row holds no role.
        return Err(OpError::invalid("username", format!("no user named {username:?}")));
    }
    Ok(referenced("username", users::by_name(c, username).await)?.id)
}

/// Grants a role; returns the project's members.
pub async fn grant(ctx: &Ctx, caller: &Caller, project: &str, req: Grant) -> OpResult<Vec<Membership>> {
    access::require_admin(caller)?;
    let role = Role::parse("role", &req.role)?;
    let mut tx = ctx.store.begin().await?;
    let p = projects::by_name(&mut tx, project).await?;
    let uid = user_id(&mut tx, &req.username).await?;
    if projects::grant(&mut tx, p.id, uid, role).await? {
        audit::record(
            &mut tx,
            &caller.origin(),
            "project.grant",
            "project",
            project,
            json!({"username": req.username, "role": role}),
        )
        .await?;
    }
    let members = projects::members(&mut tx, p.id).await?;
    tx.commit().await?;
    Ok(members)
}

pub async fn revoke(ctx: &Ctx, caller: &Caller, project: &str, username: &str, role: &str) -> OpResult<()> {
    access::require_admin(caller)?;
    let role = Role::parse("role", role)?;
    let mut tx = ctx.store.begin().await?;
    let p = projects::by_name(&mut tx, project).await?;
    let uid = user_id(&mut tx, username).await?;
    if !projects::revoke(&mut tx, p.id, uid, role).await? {
        return Err(OpError::not_found(
            "membership",
            format!("{username} as {role} in {project}"),
        ));
    }
    audit::record(
        &mut tx,
        &caller.origin(),
        "project.revoke",
        "project",
        project,
        json!({"username": username, "role": role}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
