//! The base image job: builds (or, for an image registered as it is,
//! re-resolves) one base image and records its new digest in the lineage.
//! Pushing the same recipe again gives the same digest, so a retried job is
//! harmless.

use prism_domain::BaseBuildState;
use prism_image::{BaseRecipe, ImageReference};
use prism_jobs::{Cancel, Job, Quarantine};
use prism_store::{audit, base_images, credentials};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::JobError;
use crate::services::base_recipe::{self, Recipe};
use crate::services::build_config;
use crate::state::AppState;

pub const BASE_IMAGE: &str = BaseImageJob::KIND;

/// The job that builds one base image, once per request.
#[derive(Debug, Serialize, Deserialize)]
pub struct BaseImageJob {
    pub base_id: i64,
    /// When it was asked for (each request builds once).
    #[serde(default)]
    pub requested_at: i64,
}

impl Job for BaseImageJob {
    const KIND: &'static str = "base_image";
    const MAX_ATTEMPTS: i64 = 2;
    type Context = AppState;

    fn dedup_key(&self) -> Option<String> {
        Some(format!("base_image:{}:{}", self.base_id, self.requested_at))
    }

    async fn run(&self, ctx: &AppState, _cancel: Cancel) -> Result<(), JobError> {
        run(ctx, self.base_id).await
    }

    async fn quarantined(&self, ctx: &AppState, q: &Quarantine) -> Result<(), JobError> {
        let message = format!(
            "crashed: {}",
            q.describe().replacen("during it", "during this build", 1)
        );
        let mut tx = ctx.store.begin().await?;
        base_images::set_state(&mut tx, self.base_id, BaseBuildState::Failed, Some(&message)).await?;
        audit::record(
            &mut tx,
            &prism_store::audit::Origin::system("base_image"),
            "base_image.failed",
            "base_image",
            &self.base_id.to_string(),
            json!({"error": message, "failure_kind": "crashed"}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

pub async fn enqueue(c: &mut prism_store::AnyConnection, base_id: i64) -> prism_store::Result<()> {
    let job = BaseImageJob {
        base_id,
        requested_at: prism_store::now_ms(),
    };
    prism_jobs::enqueue(c, &job).await?;
    Ok(())
}

async fn run(state: &AppState, id: i64) -> Result<(), JobError> {
    base_images::set_state(&mut *state.store.conn().await?, id, BaseBuildState::Building, None).await?;
    let result = build(state, id).await;
    let mut tx = state.store.begin().await?;
    let origin = prism_store::audit::Origin::system("base_image");
    match result {
        Ok((digest, parent_digest)) => {
            base_images::record_build(&mut tx, id, &digest, parent_digest.as_deref()).await?;
            audit::record(
                &mut tx,
                &origin,
                "base_image.built",
                "base_image",
                &id.to_string(),
                json!({"digest": digest, "parent_digest": parent_digest}),
            )
            .await?;
        }
        Err(message) => {
            base_images::set_state(&mut tx, id, BaseBuildState::Failed, Some(&message)).await?;
            audit::record(
                &mut tx,
                &origin,
                "base_image.failed",
                "base_image",
                &id.to_string(),
                json!({"error": message}),
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The new digest and the parent digest it was built on.
async fn build(state: &AppState, id: i64) -> Result<(String, Option<String>), String> {
    let mut c = state.store.conn().await.map_err(|e| e.to_string())?;
    let base = base_images::get(&mut c, id).await.map_err(|e| e.to_string())?;
    let registry = match base.registry_id {
        Some(r) => credentials::registry(&mut c, r).await.map_err(|e| e.to_string())?,
        None => return Err("the base image has no registry".into()),
    };
    let parent = match base.parent_id {
        Some(p) => Some(base_images::get(&mut c, p).await.map_err(|e| e.to_string())?),
        None => None,
    };
    let parent_registry = match parent.as_ref().and_then(|p| p.registry_id) {
        Some(r) => Some(credentials::registry(&mut c, r).await.map_err(|e| e.to_string())?),
        None => None,
    };
    drop(c);
    let registries = build_config::registries(state).await.map_err(|e| e.to_string())?;
    let target = ImageReference::parse(&format!("{}/{}:{}", registry.host, base.repository, base.tag))
        .map_err(|e| e.to_string())?;
    let is_external = base.recipe.as_object().is_none_or(|o| o.is_empty());
    if is_external {
        // Registered as it is: follow the tag to its current digest.
        let client = registries.client(&target.registry).map_err(|e| e.to_string())?;
        let m = client
            .get_image_manifest(&target.repository, target.reference(), "linux", "amd64")
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{target} not found in the registry"))?;
        return Ok((m.digest, None));
    }
    let recipe = Recipe::parse(&base.recipe, base.tier).map_err(|e| e.to_string())?;
    let sources = state.settings.build.base_sources.clone();
    let layer_sources = recipe.layers.clone();
    let layers = tokio::task::spawn_blocking(move || {
        layer_sources
            .iter()
            .map(|l| base_recipe::build_layer(&sources, l))
            .collect::<Result<Vec<_>, String>>()
    })
    .await
    .map_err(|e| e.to_string())??;
    let changes = recipe.changes(format!("prism base image {}", base.name));
    match (&recipe.rootfs, parent) {
        (Some(rootfs), _) => {
            let path = base_recipe::source_path(&state.settings.build.base_sources, rootfs)?;
            let mut r = BaseRecipe::new(path, changes);
            r.layers = layers;
            let pushed = prism_image::build_base(&registries, &r, &target)
                .await
                .map_err(|e| e.to_string())?;
            Ok((pushed.manifest_digest, None))
        }
        (None, Some(parent)) => {
            let parent_digest = parent
                .digest
                .clone()
                .ok_or_else(|| format!("parent base {} has not been built yet", parent.name))?;
            let host = parent_registry.map(|r| r.host).unwrap_or(registry.host.clone());
            let parent_ref = ImageReference::parse(&format!("{host}/{}@{parent_digest}", parent.repository))
                .map_err(|e| e.to_string())?;
            let refs: Vec<&prism_image::Layer> = layers.iter().collect();
            let pushed = prism_image::append_layers(&registries, &parent_ref, &refs, &changes, &target)
                .await
                .map_err(|e| e.to_string())?;
            Ok((pushed.manifest_digest, Some(parent_digest)))
        }
        (None, None) => Err("a tier-2 base needs a parent".into()),
    }
}
