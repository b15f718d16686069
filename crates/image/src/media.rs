//! Media types of Docker v2 schema 2 and OCI images, and the descriptor they share.

use serde::{Deserialize, Serialize};

use crate::layer::Compression;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// What a registry should send for a manifest request, in order of preference.
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.index.v1+json";

/// The two manifest families Prism reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Docker,
    Oci,
}

impl Family {
    pub fn manifest(self) -> &'static str {
        match self {
            Family::Docker => DOCKER_MANIFEST,
            Family::Oci => OCI_MANIFEST,
        }
    }

    pub fn config(self) -> &'static str {
        match self {
            Family::Docker => DOCKER_CONFIG,
            Family::Oci => OCI_CONFIG,
        }
    }

    /// The layer media type for a layer compressed so. Docker's schema 2 has
    /// only gzip layers: images with another kind are OCI images
    /// ([`Compression::docker_has_it`]).
    pub fn layer(self, compression: Compression) -> &'static str {
        debug_assert!(
            self == Family::Oci || compression.docker_has_it(),
            "a {compression:?} layer in a Docker manifest: the image must be an OCI image"
        );
        match (self, compression) {
            (Family::Docker, _) => DOCKER_LAYER_GZIP,
            (Family::Oci, Compression::Gzip) => OCI_LAYER_GZIP,
            (Family::Oci, Compression::None) => OCI_LAYER_TAR,
            (Family::Oci, Compression::Zstd) => OCI_LAYER_ZSTD,
        }
    }

    pub fn of_manifest(media_type: &str) -> Option<Family> {
        match media_type {
            DOCKER_MANIFEST => Some(Family::Docker),
            OCI_MANIFEST => Some(Family::Oci),
            _ => None,
        }
    }
}

/// A content descriptor as it appears in manifests and indexes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub urls: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub platform: Option<Platform>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: &str, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size,
            urls: None,
            annotations: None,
            platform: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub variant: Option<String>,
}

/// An image manifest (Docker v2 schema 2 or OCI; same shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", skip_serializing_if = "Option::is_none", default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A manifest list / image index.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    pub manifests: Vec<Descriptor>,
}
