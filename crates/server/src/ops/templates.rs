//! A project's deploy templates: read (its own set and the built-ins),
//! saved as a new version after a syntax check (operators), and rendered for
//! an application, environment and release as a preview.

use prism_api::templates::{Preview, PreviewRequest, SaveTemplates, Templates};
use prism_domain::ReleaseId;
use prism_manifests::{TemplateSet, BUILTIN_NAMES};
use prism_store::template_sets::{self, TemplateSetVersion, VersionSummary};
use prism_store::{audit, environments, releases};
use serde_json::json;

use super::deploys::deploy_error;
use super::{access, referenced, Ctx, OpError, OpResult};
use crate::auth::Caller;
use crate::services::deploy_plan;
use crate::wire::ToApi;

pub async fn get(ctx: &Ctx, caller: &Caller, project: &str) -> OpResult<Templates> {
    let mut c = ctx.store.conn().await?;
    let p = access::project(&mut c, caller, project).await?;
    let current = template_sets::current(&mut c, p.id).await?;
    let b = TemplateSet::builtin();
    let builtin = BUILTIN_NAMES
        .iter()
        .filter_map(|n| Some((n.to_string(), b.get(n)?.to_owned())))
        .collect();
    Ok(Templates {
        current: current.to_api(),
        builtin,
    })
}

pub async fn versions(ctx: &Ctx, caller: &Caller, project: &str) -> OpResult<Vec<VersionSummary>> {
    let mut c = ctx.store.conn().await?;
    let p = access::project(&mut c, caller, project).await?;
    Ok(template_sets::history(&mut c, p.id).await?)
}

pub async fn version(ctx: &Ctx, caller: &Caller, project: &str, version: &str) -> OpResult<TemplateSetVersion> {
    let v: i64 = version
        .parse()
        .map_err(|_| OpError::invalid("version", "must be a number"))?;
    let mut c = ctx.store.conn().await?;
    let p = access::project(&mut c, caller, project).await?;
    Ok(template_sets::get(&mut c, p.id, v).await?)
}

/// Saves a new version of the project's templates after checking that
/// every template compiles (names, sizes, Jinja syntax).
pub async fn save(ctx: &Ctx, caller: &Caller, project: &str, req: SaveTemplates) -> OpResult<TemplateSetVersion> {
    if req.note.len() > 2000 {
        return Err(OpError::invalid("note", "must be at most 2000 characters"));
    }
    let set = TemplateSet::with_overrides(&req.files).map_err(|e| manifest_error(&e))?;
    set.check_syntax().map_err(|e| manifest_error(&e))?;
    let mut tx = ctx.store.begin().await?;
    let p = access::project(&mut tx, caller, project).await?;
    if !access::may_edit_application(access::roles_in(&mut tx, caller, p.id).await?) {
        return Err(OpError::forbidden(
            "editing templates needs the operator role in the project (or admin)",
        ));
    }
    let saved = template_sets::save(
        &mut tx,
        p.id,
        req.base_version,
        &req.files,
        &caller.user.username,
        &req.note,
    )
    .await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "templates.save",
        "project",
        project,
        json!({"version": saved.version, "files": req.files.keys().collect::<Vec<_>>(), "note": req.note}),
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
}

fn manifest_error(e: &prism_manifests::ManifestError) -> OpError {
    OpError::Invalid {
        field: e.problems().first().map(|p| format!("files.{}", p.template)),
        message: e.to_string(),
        code: "invalid_template",
    }
}

/// Renders an application's templates for (environment, release) and returns
/// the YAML, or the problems with their template and line.
pub async fn preview(ctx: &Ctx, caller: &Caller, name: &str, req: PreviewRequest) -> OpResult<Preview> {
    let rid = ReleaseId::parse("release", &req.release)?;
    let mut c = ctx.store.conn().await?;
    let (app, _) = access::application(&mut c, caller, name).await?;
    let env = referenced("environment", environments::by_name(&mut c, &req.environment).await)?;
    let rel = releases::get(&mut c, rid)
        .await
        .map_err(|_| OpError::invalid("release", format!("no release {rid}")))?;
    if rel.app_id != app.id {
        return Err(OpError::invalid("release", format!("{rid} is not a release of {name}")));
    }
    let objects = match &req.files {
        Some(files) => {
            let set = TemplateSet::with_overrides(files).map_err(|e| manifest_error(&e))?;
            deploy_plan::render_with(&mut c, &rel, &env, Default::default(), &set)
                .await
                .map_err(deploy_error)?
        }
        None => {
            deploy_plan::render_for(&mut c, &rel, &env, Default::default(), None)
                .await
                .map_err(deploy_error)?
                .1
        }
    };
    let rendered = prism_manifests::Rendered {
        objects: objects
            .iter()
            .map(|o| prism_manifests::RenderedObject {
                template: o.template.clone(),
                object: o.object.clone(),
            })
            .collect(),
    };
    Ok(Preview {
        yaml: rendered.to_yaml(),
        objects: serde_json::to_value(&objects).unwrap_or_default(),
    })
}
