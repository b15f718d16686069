//! The one error type of the image assembler; each variant names where it failed.

/// Everything that can go wrong while reading, assembling or pushing an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// An image reference could not be parsed; `field` names the part that is wrong.
    #[error("invalid image reference {reference:?}: {field}: {reason}")]
    Reference {
        reference: String,
        field: &'static str,
        reason: String,
    },
    /// The registry answered with an error status; `message` is the registry's own error text.
    #[error("registry {operation} failed with HTTP {status}: {message}")]
    Registry {
        operation: String,
        status: u16,
        message: String,
    },
    /// Authentication with the registry (or its token service) failed.
    #[error("registry authentication for {operation} failed: {message}")]
    Auth { operation: String, message: String },
    /// The base image (or the requested platform of it) does not exist.
    #[error("base image {reference} not found")]
    BaseNotFound { reference: String },
    /// An artifact path was refused or unreadable.
    #[error("artifact {path}: {reason}")]
    Artifact { path: String, reason: String },
    /// The root filesystem tarball of a base recipe was unusable.
    #[error("root filesystem tarball {path}: {reason}")]
    Rootfs { path: String, reason: String },
    /// A manifest or config from the registry was not what the image format requires.
    #[error("manifest {reference}: {reason}")]
    Manifest { reference: String, reason: String },
    /// A downloaded blob did not match its digest.
    #[error("blob {expected} from {repository} has digest {actual}")]
    DigestMismatch {
        repository: String,
        expected: String,
        actual: String,
    },
    /// The HTTP connection to the registry failed. A connection that could
    /// not be made reads the same whatever the cause (refused, filtered, an
    /// address the policy does not allow): the message reaches non-admins.
    #[error("HTTP {operation} to {url}: {}", transport_detail(source))]
    Transport {
        operation: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The URL names an address the address policy refuses.
    #[error("HTTP {operation} to {url}: {}", prism_netguard::UNREACHABLE)]
    Unreachable { operation: String, url: String },
    /// Local I/O failed (writing the layer, reading files).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

fn transport_detail(e: &reqwest::Error) -> String {
    if e.is_connect() {
        prism_netguard::UNREACHABLE.to_owned()
    } else {
        e.to_string()
    }
}

impl ImageError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
        let context = context.into();
        move |source| ImageError::Io { context, source }
    }

    pub(crate) fn artifact(path: impl std::fmt::Display, reason: impl Into<String>) -> ImageError {
        ImageError::Artifact {
            path: path.to_string(),
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;
