//! Prism's daemonless OCI image assembler.
//!
//! Prism builds application images without a container daemon: it reads a base image's manifest and
//! config from a registry, writes the build artifact as one new deterministic layer, uploads only the
//! blobs the registry lacks and pushes a new manifest tagged with the release id. It can also build a
//! first-tier base image from a root filesystem tarball.

pub mod base;
pub mod docker_config;
pub mod error;
pub mod executor_image;
pub mod image;
pub mod layer;
pub mod media;
pub mod reference;
pub mod registry;
pub mod server_image;
pub mod unpack;

pub use base::{build_base, BaseRecipe};
pub use error::ImageError;
pub use image::{append_layer, append_layers, ConfigChanges, PushResult};
pub use layer::{build_layer, layer_from_tarball, Compression, Layer, LayerSpec};
pub use reference::ImageReference;
pub use registry::{Credentials, Registries, RegistryClient, RegistryOptions, Scheme};

/// `sha256:<hex>` of some bytes, the form registries use for digests.
pub fn sha256_digest(data: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}
