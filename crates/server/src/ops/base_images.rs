//! Base images and their lineage: admins register public bases (built from a
//! root filesystem tarball, or an existing image) and runtime bases on them;
//! Prism builds them, records every digest, lists what is still built on an
//! old digest, and creates rebuild releases that follow the normal
//! promotion path.

use prism_api::base_images::{BaseDetail, CreateBase, Rebuilt, UpdateBase};
use prism_domain::build::validate_repository;
use prism_domain::{GitRef, Name};
use prism_store::base_images::{self, BaseImage, NewBase};
use prism_store::{audit, credentials, releases};
use serde_json::json;

use super::{access, referenced, Ctx, OpError, OpResult};
use crate::auth::Caller;
use crate::services::base_recipe::Recipe;
use crate::wire::ToApi;

fn validate_tag(tag: &str) -> OpResult<()> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(OpError::invalid(
            "tag",
            "must be an image tag: letters, digits, '_', '.', '-' (at most 128)",
        ))
    }
}

/// Every base image (everyone signed in may read them).
pub async fn list(ctx: &Ctx) -> OpResult<Vec<BaseImage>> {
    Ok(base_images::list(&mut *ctx.store.conn().await?).await?)
}

/// Registers a base image and queues its first build (or, for an existing
/// image, the resolution of its tag).
pub async fn create(ctx: &Ctx, caller: &Caller, req: CreateBase) -> OpResult<BaseImage> {
    access::require_admin(caller)?;
    let name = Name::parse("name", &req.name)?;
    if !(1..=2).contains(&req.tier) {
        return Err(OpError::invalid(
            "tier",
            "must be 1 (public base) or 2 (runtime base); application images are tier 3 and come from builds",
        ));
    }
    validate_repository("repository", &req.repository)?;
    validate_tag(&req.tag)?;
    let recipe = match &req.recipe {
        Some(r) => Some(Recipe::parse(r, req.tier)?),
        None if req.tier == 2 => {
            return Err(OpError::invalid(
                "recipe",
                "a tier-2 base is built by Prism: give its recipe",
            ))
        }
        None => None,
    };
    let mut tx = ctx.store.begin().await?;
    let parent = match (&req.parent, req.tier) {
        (Some(p), 2) => {
            let parent = referenced("parent", base_images::by_name(&mut tx, p).await)?;
            if parent.tier != 1 {
                return Err(OpError::invalid("parent", "a runtime base is built on a tier-1 base"));
            }
            Some(parent)
        }
        (None, 2) => return Err(OpError::invalid("parent", "a tier-2 base needs a tier-1 parent")),
        (Some(_), _) => return Err(OpError::invalid("parent", "only a tier-2 base has a parent")),
        (None, _) => None,
    };
    let registry = referenced("registry", credentials::registry_by_name(&mut tx, &req.registry).await)?;
    let recipe_json = recipe
        .as_ref()
        .map(|r| serde_json::to_value(r).expect("recipe serialises"))
        .unwrap_or_else(|| json!({}));
    let created = base_images::create(
        &mut tx,
        NewBase {
            name: name.as_str(),
            tier: req.tier,
            parent_id: parent.as_ref().map(|p| p.id),
            registry_id: Some(registry.id),
            repository: &req.repository,
            tag: &req.tag,
            recipe: &recipe_json,
            digest: None,
        },
    )
    .await?;
    // Built (or, for an existing image, resolved) at once.
    base_images::mark_queued(&mut tx, created.id).await?;
    crate::jobs::base_image::enqueue(&mut tx, created.id).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "base_image.create",
        "base_image",
        name.as_str(),
        json!({"tier": req.tier, "parent": req.parent, "registry": req.registry, "repository": req.repository, "tag": req.tag, "recipe": recipe_json}),
    )
    .await?;
    let created = base_images::get(&mut tx, created.id).await?;
    tx.commit().await?;
    ctx.job_wakeup.notify_one();
    Ok(created)
}

/// A base image's versions and what still runs on older ones. The
/// applications listed are those of the caller's projects (all for admins):
/// their names, releases, commits and refs are those projects' business.
pub async fn get(ctx: &Ctx, caller: &Caller, name: &str) -> OpResult<BaseDetail> {
    let mut c = ctx.store.conn().await?;
    let base = base_images::by_name(&mut c, name).await?;
    let mut outdated_applications = base_images::outdated_apps(&mut c, base.id).await?;
    if let Some(user_id) = access::visibility(caller) {
        let mine: std::collections::BTreeSet<String> = prism_store::projects::memberships_of(&mut c, user_id)
            .await?
            .into_iter()
            .map(|m| m.project)
            .collect();
        outdated_applications.retain(|a| mine.contains(&a.project));
    }
    Ok(BaseDetail {
        versions: base_images::versions(&mut c, base.id).await?.to_api(),
        outdated_children: base_images::outdated_children(&mut c, base.id).await?.to_api(),
        outdated_applications: outdated_applications.to_api(),
        base: base.to_api(),
    })
}

/// Builds the base again (after changing its recipe, or to pick up a new
/// parent digest); an image registered as it is has its tag re-resolved.
pub async fn build(ctx: &Ctx, caller: &Caller, name: &str, req: UpdateBase) -> OpResult<BaseImage> {
    access::require_admin(caller)?;
    let mut tx = ctx.store.begin().await?;
    let base = base_images::by_name(&mut tx, name).await?;
    if let Some(r) = &req.recipe {
        let recipe = Recipe::parse(r, base.tier)?;
        base_images::update_recipe(
            &mut tx,
            base.id,
            &serde_json::to_value(recipe).expect("recipe serialises"),
        )
        .await?;
    }
    if !base_images::mark_queued(&mut tx, base.id).await? {
        return Err(OpError::conflict(format!("base image {name} is being built already")));
    }
    crate::jobs::base_image::enqueue(&mut tx, base.id).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "base_image.build",
        "base_image",
        name,
        json!({"recipe_changed": req.recipe.is_some()}),
    )
    .await?;
    let base = base_images::get(&mut tx, base.id).await?;
    tx.commit().await?;
    ctx.job_wakeup.notify_one();
    Ok(base)
}

/// Creates a release of each application still on an older digest of this
/// base (the same commit, rebuilt on the current digest) and starts its build.
pub async fn rebuild_applications(ctx: &Ctx, caller: &Caller, name: &str) -> OpResult<Vec<Rebuilt>> {
    access::require_admin(caller)?;
    let mut tx = ctx.store.begin().await?;
    let base = base_images::by_name(&mut tx, name).await?;
    let digest = base
        .digest
        .clone()
        .ok_or_else(|| OpError::conflict(format!("base image {name} has not been built yet")))?;
    let mut out = Vec::new();
    for app in base_images::outdated_apps(&mut tx, base.id).await? {
        let git_ref = app.commit_sha.clone().unwrap_or(app.git_ref.clone());
        let git_ref = GitRef::parse("git_ref", &git_ref)?;
        let note = format!(
            "Rebuild of {} on base image {name} {digest} (was {})",
            prism_domain::ReleaseId::from_seq(app.release_seq),
            app.base_digest
        );
        let rel = releases::create(&mut tx, app.app_id, git_ref.as_str(), &note, caller.user.id).await?;
        audit::record(
            &mut tx,
            &caller.origin(),
            "release.create",
            "release",
            &rel.id.to_string(),
            json!({"application": app.application, "git_ref": git_ref, "change_note": note, "rebuild_of": prism_domain::ReleaseId::from_seq(app.release_seq)}),
        )
        .await?;
        let b = super::builds::start_in(&mut tx, ctx, caller, rel.id).await?;
        out.push(Rebuilt {
            application: app.application,
            release: rel.id.to_string(),
            build: b.id,
        });
    }
    tx.commit().await?;
    ctx.job_wakeup.notify_one();
    Ok(out)
}

pub async fn delete(ctx: &Ctx, caller: &Caller, name: &str) -> OpResult<()> {
    access::require_admin(caller)?;
    let mut tx = ctx.store.begin().await?;
    let base = base_images::by_name(&mut tx, name).await?;
    base_images::delete(&mut tx, base.id).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "base_image.delete",
        "base_image",
        name,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
