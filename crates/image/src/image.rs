//! Appending a layer to a base image: read the base manifest and config, write the new config,
//! upload only the blobs the target lacks, push the manifest.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::error::{ImageError, Result};
use crate::layer::Layer;
use crate::media::{Descriptor, Family, Manifest};
use crate::reference::ImageReference;
use crate::registry::{Registries, RegistryClient};
use crate::sha256_digest;

/// Label keys Prism writes on application images.
pub const LABEL_RELEASE: &str = "io.prism.release";
pub const LABEL_COMMIT: &str = "io.prism.commit";
pub const LABEL_APPLICATION: &str = "io.prism.application";

/// Timestamp written when none is given, so the same inputs give the same config.
pub const EPOCH: &str = "1970-01-01T00:00:00Z";

/// Changes to the image config made together with the new layer.
#[derive(Debug, Clone, Default)]
pub struct ConfigChanges {
    /// Environment variables set (replacing the same name in the base).
    pub env: Vec<(String, String)>,
    pub labels: BTreeMap<String, String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    /// The `created_by` / `comment` of the history entry.
    pub history_comment: String,
    /// RFC 3339 creation time of the image and its history entry; [`EPOCH`] if `None`.
    pub created: Option<String>,
}

impl ConfigChanges {
    /// Adds Prism's release labels (`io.prism.release`, `io.prism.commit`, `io.prism.application`).
    pub fn with_release(mut self, release: &str, commit: &str, application: &str) -> Self {
        self.labels.insert(LABEL_RELEASE.into(), release.into());
        self.labels.insert(LABEL_COMMIT.into(), commit.into());
        self.labels.insert(LABEL_APPLICATION.into(), application.into());
        self
    }
}

/// What a push did.
#[derive(Debug, Clone, Default)]
pub struct PushResult {
    pub manifest_digest: String,
    pub manifest_media_type: String,
    pub config_digest: String,
    /// Layer digests in order, base layers first.
    pub layers: Vec<String>,
    /// Bytes of blob bodies PUT to the registry (0 for blobs it already had or mounted).
    pub bytes_uploaded: u64,
    pub blobs_uploaded: usize,
    pub blobs_mounted: usize,
    pub blobs_present: usize,
    /// The digest of the base image's (platform) manifest the image was built on.
    pub base_digest: Option<String>,
}

/// Applies `changes` and the new layers' diff ids to an image config (kept as JSON so fields
/// Prism does not know survive).
pub(crate) fn apply_changes(config: &mut Value, changes: &ConfigChanges, diff_ids: &[String]) -> Result<()> {
    let created = changes.created.clone().unwrap_or_else(|| EPOCH.to_string());
    let root = config.as_object_mut().ok_or_else(|| ImageError::Manifest {
        reference: "config".into(),
        reason: "image config is not a JSON object".into(),
    })?;
    root.insert("created".into(), json!(created));
    let inner = root.entry("config").or_insert_with(|| json!({}));
    if inner.is_null() {
        *inner = json!({});
    }
    let inner = inner.as_object_mut().ok_or_else(|| ImageError::Manifest {
        reference: "config".into(),
        reason: "image config's `config` is not an object".into(),
    })?;
    if !changes.env.is_empty() {
        let mut env: Vec<String> = inner
            .get("Env")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        for (name, value) in &changes.env {
            let entry = format!("{name}={value}");
            match env
                .iter_mut()
                .find(|e| e.split_once('=').map(|(n, _)| n) == Some(name.as_str()))
            {
                Some(existing) => *existing = entry,
                None => env.push(entry),
            }
        }
        inner.insert("Env".into(), json!(env));
    }
    if !changes.labels.is_empty() {
        let labels = inner.entry("Labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        let labels = labels.as_object_mut().expect("labels is an object");
        for (k, v) in &changes.labels {
            labels.insert(k.clone(), json!(v));
        }
    }
    if let Some(entrypoint) = &changes.entrypoint {
        inner.insert("Entrypoint".into(), json!(entrypoint));
    }
    if let Some(cmd) = &changes.cmd {
        inner.insert("Cmd".into(), json!(cmd));
    }
    if let Some(workdir) = &changes.workdir {
        inner.insert("WorkingDir".into(), json!(workdir));
    }
    if let Some(user) = &changes.user {
        inner.insert("User".into(), json!(user));
    }
    let rootfs = root
        .entry("rootfs")
        .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    let ids = rootfs
        .as_object_mut()
        .and_then(|r| r.entry("diff_ids").or_insert_with(|| json!([])).as_array_mut())
        .ok_or_else(|| ImageError::Manifest {
            reference: "config".into(),
            reason: "rootfs.diff_ids is not a list".into(),
        })?;
    ids.extend(diff_ids.iter().map(|d| json!(d)));
    let history = root.entry("history").or_insert_with(|| json!([]));
    if !history.is_array() {
        *history = json!([]);
    }
    let comment = if changes.history_comment.is_empty() {
        "prism".to_string()
    } else {
        changes.history_comment.clone()
    };
    for _ in diff_ids {
        let mut entry = Map::new();
        entry.insert("created".into(), json!(created));
        entry.insert("created_by".into(), json!(format!("prism: {comment}")));
        entry.insert("comment".into(), json!(comment));
        history
            .as_array_mut()
            .expect("history is a list")
            .push(Value::Object(entry));
    }
    Ok(())
}

/// Uploads config and new layers (HEAD first) and pushes the manifest. Base layers must already be
/// in the target repository.
pub(crate) async fn push_image(
    client: &RegistryClient,
    target: &ImageReference,
    family: Family,
    config: &Value,
    base_layers: Vec<Descriptor>,
    new_layers: &[&Layer],
    result: &mut PushResult,
) -> Result<()> {
    let repo = &target.repository;
    let tag = target.tag.as_deref().ok_or_else(|| ImageError::Reference {
        reference: target.to_string(),
        field: "tag",
        reason: "a push target needs a tag".into(),
    })?;
    let config_bytes = serde_json::to_vec(config).expect("JSON values serialize");
    let config_digest = sha256_digest(&config_bytes);
    let mut layers = base_layers;
    for layer in new_layers {
        count_upload(
            result,
            client.ensure_blob(repo, &layer.digest, layer.data.clone()).await?,
        );
        layers.push(Descriptor::new(layer.media_type(family), &layer.digest, layer.size));
    }
    let config_size = config_bytes.len() as u64;
    count_upload(
        result,
        client
            .ensure_blob(repo, &config_digest, Bytes::from(config_bytes))
            .await?,
    );
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(family.manifest().to_string()),
        config: Descriptor::new(family.config(), &config_digest, config_size),
        layers,
        annotations: None,
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("manifests serialize");
    result.manifest_digest = client
        .put_manifest(repo, tag, family.manifest(), manifest_bytes)
        .await?;
    result.manifest_media_type = family.manifest().to_string();
    result.config_digest = config_digest;
    result.layers = manifest.layers.iter().map(|l| l.digest.clone()).collect();
    tracing::info!(target = %target, digest = %result.manifest_digest, bytes = result.bytes_uploaded, "pushed image");
    Ok(())
}

fn count_upload(result: &mut PushResult, bytes: u64) {
    if bytes == 0 {
        result.blobs_present += 1;
    } else {
        result.blobs_uploaded += 1;
        result.bytes_uploaded += bytes;
    }
}

/// Appends `layer` to the image `base` and pushes it as `target` (which must carry a tag, e.g. the
/// release id). The manifest has the base's media type family (Docker v2 schema 2 or OCI); an
/// uncompressed layer forces OCI. Base layers the target lacks are mounted across repositories where
/// the registry allows it, otherwise copied.
pub async fn append_layer(
    registries: &Registries,
    base: &ImageReference,
    layer: &Layer,
    changes: &ConfigChanges,
    target: &ImageReference,
) -> Result<PushResult> {
    append_layers(registries, base, &[layer], changes, target).await
}

/// [`append_layer`] with several new layers (a runtime base made of a few parts), in order.
pub async fn append_layers(
    registries: &Registries,
    base: &ImageReference,
    layers: &[&Layer],
    changes: &ConfigChanges,
    target: &ImageReference,
) -> Result<PushResult> {
    let base_client = registries.client(&base.registry)?;
    let target_client = registries.client(&target.registry)?;
    let fetched = base_client
        .get_image_manifest(&base.repository, base.reference(), "linux", "amd64")
        .await?
        .ok_or_else(|| ImageError::BaseNotFound {
            reference: base.to_string(),
        })?;
    let manifest = fetched.parse()?;
    let declared = manifest.media_type.as_deref().unwrap_or(&fetched.media_type);
    let mut family = Family::of_manifest(declared).ok_or_else(|| ImageError::Manifest {
        reference: base.to_string(),
        reason: format!("unsupported manifest media type {declared}"),
    })?;
    if layers.iter().any(|l| !l.compression.docker_has_it()) {
        family = Family::Oci;
    }
    let config_bytes = base_client.get_blob(&base.repository, &manifest.config.digest).await?;
    let mut config: Value = serde_json::from_slice(&config_bytes).map_err(|e| ImageError::Manifest {
        reference: base.to_string(),
        reason: format!("unreadable image config: {e}"),
    })?;
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
    apply_changes(&mut config, changes, &diff_ids)?;

    let mut result = PushResult {
        base_digest: Some(fetched.digest.clone()),
        ..PushResult::default()
    };
    let same_registry = base.registry == target.registry;
    let mut base_layers = Vec::with_capacity(manifest.layers.len());
    for descriptor in &manifest.layers {
        let digest = &descriptor.digest;
        let mut descriptor = descriptor.clone();
        if family == Family::Oci && descriptor.media_type == crate::media::DOCKER_LAYER_GZIP {
            descriptor.media_type = crate::media::OCI_LAYER_GZIP.to_string();
        }
        base_layers.push(descriptor);
        if target_client.has_blob(&target.repository, digest).await? {
            result.blobs_present += 1;
            continue;
        }
        if same_registry
            && base.repository != target.repository
            && target_client
                .mount_blob(&target.repository, digest, &base.repository)
                .await?
        {
            result.blobs_mounted += 1;
            continue;
        }
        let data = base_client.get_blob(&base.repository, digest).await?;
        result.bytes_uploaded += target_client
            .upload_blob(&target.repository, digest, Bytes::from(data))
            .await?;
        result.blobs_uploaded += 1;
    }
    push_image(
        &target_client,
        target,
        family,
        &config,
        base_layers,
        layers,
        &mut result,
    )
    .await?;
    Ok(result)
}
