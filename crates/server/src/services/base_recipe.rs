//! How Prism builds a base image: a recipe (a root filesystem tarball for the
//! first tier, or a parent base for the next, plus layers from files,
//! directories or tarballs, plus config) read only from the base sources
//! directory, so an admin's recipe cannot pull server files such as the
//! secret key into an image.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use prism_domain::env_var::validate_env_vars;
use prism_domain::ValidationError;
use prism_image::{Compression, ConfigChanges, Layer, LayerSpec};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Tier 1: a `.tar` or `.tar.gz` root filesystem, relative to the base sources directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerSource>,
    #[serde(default)]
    pub config: RecipeConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LayerSource {
    /// A file, a directory or a `.tar`/`.tar.gz` under the base sources directory.
    pub source: String,
    /// Where a file or directory's contents go in the image (default `/`).
    #[serde(default = "root")]
    pub destination: String,
}

fn root() -> String {
    "/".into()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RecipeConfig {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
}

fn relative(field: &str, p: &str) -> Result<(), ValidationError> {
    if p.is_empty() || p.len() > 1024 || p.contains('\0') {
        return Err(ValidationError::new(field, "must be 1 to 1024 characters"));
    }
    for c in Path::new(p).components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            _ => {
                return Err(ValidationError::new(
                    field,
                    "must be relative to the base sources directory, without '..'",
                ))
            }
        }
    }
    Ok(())
}

impl Recipe {
    pub fn parse(v: &serde_json::Value, tier: i64) -> Result<Recipe, ValidationError> {
        let r: Recipe = serde_json::from_value(v.clone()).map_err(|e| ValidationError::new("recipe", e.to_string()))?;
        match (tier, &r.rootfs) {
            (1, None) => {
                return Err(ValidationError::new(
                    "recipe.rootfs",
                    "a tier-1 recipe starts from a root filesystem tarball",
                ))
            }
            (2, Some(_)) => {
                return Err(ValidationError::new(
                    "recipe.rootfs",
                    "a tier-2 base starts from its parent, not a root filesystem",
                ))
            }
            (2, None) if r.layers.is_empty() => {
                return Err(ValidationError::new(
                    "recipe.layers",
                    "a tier-2 base adds at least one layer to its parent",
                ))
            }
            _ => {}
        }
        if let Some(p) = &r.rootfs {
            relative("recipe.rootfs", p)?;
        }
        if r.layers.len() > 20 {
            return Err(ValidationError::new("recipe.layers", "at most 20 layers"));
        }
        for (i, l) in r.layers.iter().enumerate() {
            relative(&format!("recipe.layers[{i}].source"), &l.source)?;
            prism_domain::build::validate_image_dir(&format!("recipe.layers[{i}].destination"), &l.destination)
                .or_else(|e| if l.destination == "/" { Ok(()) } else { Err(e) })?;
        }
        validate_env_vars("recipe.config.env", &r.config.env)?;
        if let Some(e) = &r.config.entrypoint {
            prism_domain::build::validate_argv("recipe.config.entrypoint", e)?;
        }
        if let Some(c) = &r.config.cmd {
            prism_domain::build::validate_argv("recipe.config.cmd", c)?;
        }
        if let Some(w) = &r.config.workdir {
            prism_domain::build::validate_image_dir("recipe.config.workdir", w)?;
        }
        if let Some(u) = &r.config.user {
            if u.is_empty() || u.len() > 256 || u.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(ValidationError::new(
                    "recipe.config.user",
                    "must be a user name or uid[:gid]",
                ));
            }
        }
        Ok(r)
    }

    pub fn changes(&self, comment: String) -> ConfigChanges {
        ConfigChanges {
            env: self.config.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            entrypoint: self.config.entrypoint.clone(),
            cmd: self.config.cmd.clone(),
            user: self.config.user.clone(),
            workdir: self.config.workdir.clone(),
            history_comment: comment,
            ..ConfigChanges::default()
        }
    }
}

/// A path under the sources directory, refusing anything (symlinks included)
/// that resolves outside it.
pub fn source_path(sources: &Path, rel: &str) -> Result<PathBuf, String> {
    let base = sources
        .canonicalize()
        .map_err(|e| format!("base sources directory {}: {e}", sources.display()))?;
    let real = base
        .join(rel)
        .canonicalize()
        .map_err(|e| format!("{rel}: {e} (in {})", base.display()))?;
    if !real.starts_with(&base) {
        return Err(format!("{rel} resolves outside the base sources directory"));
    }
    Ok(real)
}

fn is_tarball(p: &Path) -> bool {
    let n = p.to_string_lossy();
    n.ends_with(".tar") || n.ends_with(".tar.gz") || n.ends_with(".tgz")
}

/// Builds one recipe layer (blocking: reads and compresses files).
pub fn build_layer(sources: &Path, l: &LayerSource) -> Result<Layer, String> {
    let path = source_path(sources, &l.source)?;
    if path.is_file() && is_tarball(&path) {
        if l.destination != "/" {
            return Err(format!(
                "{}: a tarball layer is unpacked at /, destination must be /",
                l.source
            ));
        }
        return prism_image::layer_from_tarball(&path, Compression::Gzip).map_err(|e| e.to_string());
    }
    let (root, paths) = if path.is_dir() {
        let mut names: Vec<String> = std::fs::read_dir(&path)
            .map_err(|e| format!("{}: {e}", l.source))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        (path.clone(), names)
    } else {
        let parent = path
            .parent()
            .ok_or_else(|| format!("{}: no parent directory", l.source))?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{}: not a UTF-8 file name", l.source))?;
        (parent.to_path_buf(), vec![name.to_string()])
    };
    // The admin's source folder may be reached through links of the host: the layer root is its real path.
    let root = root.canonicalize().map_err(|e| format!("{}: {e}", l.source))?;
    prism_image::build_layer(&LayerSpec::new(root, paths, &l.destination)).map_err(|e| e.to_string())
}
