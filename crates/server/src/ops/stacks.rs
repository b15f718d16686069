//! Stack presets: what a build of a given kind runs (build command,
//! artifacts, image layout). Everyone signed in reads them; admins change them.

use prism_api::stacks::PutStack;
use prism_domain::build::{validate_argv, validate_image_dir, validate_relative_path};
use prism_domain::env_var::validate_env_vars;
use prism_domain::Name;
use prism_store::audit;
use prism_store::stacks::{self, Stack};
use serde_json::json;

use super::{access, Ctx, OpError, OpResult};
use crate::auth::Caller;

fn parse_stack(name: &str, req: PutStack) -> OpResult<Stack> {
    let name = Name::parse("name", name)?;
    if req.description.len() > 1000 {
        return Err(OpError::invalid("description", "must be at most 1000 characters"));
    }
    if req.build_command.len() > 16 * 1024 || req.build_command.contains('\0') {
        return Err(OpError::invalid("build_command", "must be at most 16 KiB without NUL"));
    }
    if req.artifact_paths.len() > 100 {
        return Err(OpError::invalid("artifact_paths", "at most 100 paths"));
    }
    for (i, p) in req.artifact_paths.iter().enumerate() {
        validate_relative_path(&format!("artifact_paths[{i}]"), p)?;
    }
    let image_dir = req.image_dir.unwrap_or_else(|| "/app".into());
    validate_image_dir("image_dir", &image_dir)?;
    validate_argv("entrypoint", &req.entrypoint)?;
    validate_argv("cmd", &req.cmd)?;
    validate_env_vars("env", &req.env)?;
    Ok(Stack {
        name: name.as_str().to_string(),
        description: req.description,
        build_command: req.build_command,
        artifact_paths: req.artifact_paths,
        image_dir,
        entrypoint: req.entrypoint,
        cmd: req.cmd,
        env: req.env,
        updated_at: 0,
    })
}

/// Every stack preset (everyone signed in may read them).
pub async fn list(ctx: &Ctx) -> OpResult<Vec<Stack>> {
    Ok(stacks::list(&mut *ctx.store.conn().await?).await?)
}

/// Creates or replaces a stack preset.
pub async fn put_stack(ctx: &Ctx, caller: &Caller, name: &str, req: PutStack) -> OpResult<Stack> {
    access::require_admin(caller)?;
    let stack = parse_stack(name, req)?;
    let mut tx = ctx.store.begin().await?;
    let existed = stacks::by_name(&mut tx, &stack.name).await.is_ok();
    let saved = if existed {
        stacks::replace(&mut tx, &stack).await?
    } else {
        stacks::create(&mut tx, &stack).await?
    };
    audit::record(
        &mut tx,
        &caller.origin(),
        if existed { "stack.update" } else { "stack.create" },
        "stack",
        &saved.name,
        serde_json::to_value(&saved).unwrap_or_default(),
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
}

pub async fn delete_stack(ctx: &Ctx, caller: &Caller, name: &str) -> OpResult<()> {
    access::require_admin(caller)?;
    let mut tx = ctx.store.begin().await?;
    stacks::delete(&mut tx, name).await?;
    audit::record(&mut tx, &caller.origin(), "stack.delete", "stack", name, json!({})).await?;
    tx.commit().await?;
    Ok(())
}
