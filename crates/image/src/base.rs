//! Base images Prism builds itself: a first tier from a root filesystem tarball plus layers plus
//! config, and next tiers as a layer appended to a parent.

use std::path::PathBuf;

use serde_json::json;

use crate::error::Result;
use crate::image::{append_layer, apply_changes, push_image, ConfigChanges, PushResult};
use crate::layer::{layer_from_tarball, Compression, Layer};
use crate::media::Family;
use crate::reference::ImageReference;
use crate::registry::Registries;

/// The default `PATH` of a first-tier base.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A first-tier base: a root filesystem tarball, extra layers on top, and config (env such as `TZ`,
/// entrypoint, user, workdir).
#[derive(Debug, Clone)]
pub struct BaseRecipe {
    /// A `.tar` or `.tar.gz` of the root filesystem.
    pub rootfs: PathBuf,
    /// Layers added on top of the root filesystem (e.g. from [`crate::build_layer`] with destination `/`).
    pub layers: Vec<Layer>,
    pub config: ConfigChanges,
    /// Manifest family to push (OCI by default).
    pub family: Family,
}

impl BaseRecipe {
    pub fn new(rootfs: impl Into<PathBuf>, config: ConfigChanges) -> Self {
        BaseRecipe {
            rootfs: rootfs.into(),
            layers: Vec::new(),
            config,
            family: Family::Oci,
        }
    }
}

/// Builds a first-tier base image for linux/amd64 and pushes it as `target`.
pub async fn build_base(registries: &Registries, recipe: &BaseRecipe, target: &ImageReference) -> Result<PushResult> {
    let rootfs = layer_from_tarball(&recipe.rootfs, Compression::Gzip)?;
    let mut layers: Vec<&Layer> = vec![&rootfs];
    layers.extend(recipe.layers.iter());
    let family = if layers.iter().any(|l| !l.compression.docker_has_it()) {
        Family::Oci
    } else {
        recipe.family
    };
    let mut config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": [format!("PATH={DEFAULT_PATH}")]},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    });
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
    apply_changes(&mut config, &recipe.config, &diff_ids)?;
    let client = registries.client(&target.registry)?;
    let mut result = PushResult::default();
    push_image(&client, target, family, &config, Vec::new(), &layers, &mut result).await?;
    Ok(result)
}

/// A next-tier base: `layer` (e.g. a runtime) appended to `parent`, pushed as `target`.
pub async fn build_tier(
    registries: &Registries,
    parent: &ImageReference,
    layer: &Layer,
    changes: &ConfigChanges,
    target: &ImageReference,
) -> Result<PushResult> {
    append_layer(registries, parent, layer, changes, target).await
}
