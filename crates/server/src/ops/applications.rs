//! Applications: their definition (git URL, build and template settings)
//! and their settings per environment (replicas, resources, variables).
//! Project operators and admins change them; members read them.

use prism_api::applications::{CreateApplication, PutSettings, UpdateApplication};
use prism_domain::env_var::validate_env_vars;
use prism_domain::{Name, Resources};
use prism_store::apps::{self, Application, ApplicationPatch, EnvSettings, NewApplication};
use prism_store::{audit, environments, projects};
use serde_json::json;

use super::{access, referenced, Ctx, OpError, OpResult};
use crate::auth::Caller;

/// Who may change an application's definition and settings: admins and the
/// project's operators.
fn require_editor(roles: prism_domain::RoleSet) -> OpResult<()> {
    if access::may_edit_application(roles) {
        Ok(())
    } else {
        Err(OpError::forbidden(
            "changing an application needs the operator role in its project (or admin)",
        ))
    }
}

pub fn validate_git_url(field: &str, url: &str) -> OpResult<()> {
    let schemes = ["https://", "http://", "git://", "ssh://", "file://"];
    let scp_like = url.contains('@') && url.contains(':') && !url.contains("://");
    let ok = (schemes.iter().any(|s| url.starts_with(s)) || scp_like)
        && !url.starts_with('-')
        // No part of the URL may look like an option to git or ssh.
        && !url.contains("://-")
        && !url.contains("@-")
        && !url.contains("/-")
        && url.len() <= 2048
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(OpError::invalid(
            field,
            "must be a git URL (https://, ssh://, git://, file:// or user@host:path)",
        ));
    }
    Ok(())
}

fn object(field: &str, v: &serde_json::Value) -> OpResult<()> {
    if !v.is_object() {
        return Err(OpError::invalid(field, "must be a JSON object"));
    }
    if v.to_string().len() > 256 * 1024 {
        return Err(OpError::invalid(field, "must be at most 256 KiB"));
    }
    Ok(())
}

/// The applications the caller may see, of one project or all.
/// Applications per page of the list, by default and at most.
pub const PAGE_DEFAULT: i64 = 100;
pub const PAGE_MAX: i64 = 500;

/// A page of the applications the caller may see, by name, after `after`.
pub async fn list(
    ctx: &Ctx,
    caller: &Caller,
    project: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> OpResult<Vec<Application>> {
    if !(1..=PAGE_MAX).contains(&limit) {
        return Err(OpError::invalid("limit", format!("must be between 1 and {PAGE_MAX}")));
    }
    let mut c = ctx.store.conn().await?;
    let project = match project {
        Some(p) => Some(access::project(&mut c, caller, p).await?.id),
        None => None,
    };
    Ok(apps::list_visible_page(&mut c, access::visibility(caller), project, after, limit).await?)
}

/// One application the caller may see, with the caller's roles in its project.
pub async fn get(ctx: &Ctx, caller: &Caller, name: &str) -> OpResult<(Application, prism_domain::RoleSet)> {
    access::application(&mut *ctx.store.conn().await?, caller, name).await
}

pub async fn create(ctx: &Ctx, caller: &Caller, req: CreateApplication) -> OpResult<Application> {
    let name = Name::parse("name", &req.name)?;
    validate_git_url("git_url", &req.git_url)?;
    let empty = json!({});
    let build = req.build_settings.as_ref().unwrap_or(&empty);
    let template = req.template_settings.as_ref().unwrap_or(&empty);
    object("build_settings", build)?;
    object("template_settings", template)?;
    let parsed = prism_domain::BuildSettings::parse("build_settings", build)?;
    parsed.check_executor("build_settings", &ctx.settings.build.default_executor)?;
    let mut tx = ctx.store.begin().await?;
    let project = referenced("project", projects::by_name(&mut tx, &req.project).await)?;
    let roles = access::roles_in(&mut tx, caller, project.id).await?;
    if !roles.is_member() {
        return Err(OpError::invalid(
            "project",
            format!("no project named {:?}", req.project),
        ));
    }
    require_editor(roles)?;
    // After the membership check, and only against what this project may use.
    crate::services::build_config::check_references(&mut tx, &parsed, project.id, &project.name).await?;
    let app = apps::create(
        &mut tx,
        NewApplication {
            project_id: project.id,
            name: name.as_str(),
            git_url: &req.git_url,
            build_settings: build,
            template_settings: template,
        },
    )
    .await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "application.create",
        "application",
        name.as_str(),
        json!({"project": project.name, "git_url": req.git_url}),
    )
    .await?;
    tx.commit().await?;
    Ok(app)
}

pub async fn update(ctx: &Ctx, caller: &Caller, name: &str, req: UpdateApplication) -> OpResult<Application> {
    if let Some(u) = &req.git_url {
        validate_git_url("git_url", u)?;
    }
    let parsed = match &req.build_settings {
        Some(b) => {
            object("build_settings", b)?;
            let parsed = prism_domain::BuildSettings::parse("build_settings", b)?;
            parsed.check_executor("build_settings", &ctx.settings.build.default_executor)?;
            Some(parsed)
        }
        None => None,
    };
    if let Some(t) = &req.template_settings {
        object("template_settings", t)?;
    }
    let mut tx = ctx.store.begin().await?;
    let (app, roles) = access::application(&mut tx, caller, name).await?;
    require_editor(roles)?;
    if let Some(p) = &parsed {
        crate::services::build_config::check_references(&mut tx, p, app.project_id, &app.project).await?;
    }
    let patch = ApplicationPatch {
        git_url: req.git_url.as_deref(),
        build_settings: req.build_settings.as_ref(),
        template_settings: req.template_settings.as_ref(),
    };
    let updated = apps::update(&mut tx, app.id, patch).await?;
    let detail = json!({"git_url": req.git_url, "build_settings": req.build_settings, "template_settings": req.template_settings});
    audit::record(
        &mut tx,
        &caller.origin(),
        "application.update",
        "application",
        name,
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok(updated)
}

pub async fn delete(ctx: &Ctx, caller: &Caller, name: &str) -> OpResult<()> {
    access::require_admin(caller)?;
    let mut tx = ctx.store.begin().await?;
    let app = apps::by_name(&mut tx, name).await?;
    apps::delete(&mut tx, app.id).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "application.delete",
        "application",
        name,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn settings(ctx: &Ctx, caller: &Caller, name: &str) -> OpResult<Vec<EnvSettings>> {
    let mut c = ctx.store.conn().await?;
    let (app, _) = access::application(&mut c, caller, name).await?;
    Ok(apps::env_settings(&mut c, app.id).await?)
}

pub const MAX_REPLICAS: i64 = 1000;

/// Sets an application's replicas, resources and variables in one environment.
pub async fn put_settings(
    ctx: &Ctx,
    caller: &Caller,
    name: &str,
    env: &str,
    req: PutSettings,
) -> OpResult<Vec<EnvSettings>> {
    if !(0..=MAX_REPLICAS).contains(&req.replicas) {
        return Err(OpError::invalid(
            "replicas",
            format!("must be between 0 and {MAX_REPLICAS}"),
        ));
    }
    let resources = Resources::parse(&req.cpu_request, &req.cpu_limit, &req.memory_request, &req.memory_limit)?;
    validate_env_vars("env_vars", &req.env_vars)?;
    let mut tx = ctx.store.begin().await?;
    let (app, roles) = access::application(&mut tx, caller, name).await?;
    require_editor(roles)?;
    let environment = environments::by_name(&mut tx, env).await?;
    apps::put_env_settings(&mut tx, app.id, environment.id, req.replicas, &resources, &req.env_vars).await?;
    let detail = json!({"environment": env, "replicas": req.replicas, "resources": resources, "env_var_names": req.env_vars.keys().collect::<Vec<_>>()});
    audit::record(
        &mut tx,
        &caller.origin(),
        "application.settings",
        "application",
        name,
        detail,
    )
    .await?;
    let all = apps::env_settings(&mut tx, app.id).await?;
    tx.commit().await?;
    Ok(all)
}
