//! Image references (`host[:port]/repository[:tag][@digest]`), parsed once.

use std::fmt;
use std::str::FromStr;

use crate::error::ImageError;

const DOCKER_HUB: &str = "registry-1.docker.io";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    /// Registry host, with port if any (`127.0.0.1:5000`, `ghcr.io`).
    pub registry: String,
    /// Repository path inside the registry (`team/app`).
    pub repository: String,
    /// Tag, if given.
    pub tag: Option<String>,
    /// Digest (`sha256:...`), if given.
    pub digest: Option<String>,
}

impl ImageReference {
    /// Parses `host[:port]/repo[:tag][@sha256:hex]`. A first component without `.` or `:` (and not
    /// `localhost`) is a Docker Hub repository, as Docker reads it.
    pub fn parse(input: &str) -> Result<Self, ImageError> {
        let err = |field: &'static str, reason: &str| ImageError::Reference {
            reference: input.to_string(),
            field,
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(err("reference", "is empty"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                let (algo, hex) = digest
                    .split_once(':')
                    .ok_or_else(|| err("digest", "must be algorithm:hex"))?;
                if algo != "sha256" || hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(err("digest", "must be sha256: followed by 64 hex digits"));
                }
                (rest, Some(digest.to_ascii_lowercase()))
            }
            None => (input, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(rest[last_slash + i + 1..].to_string())),
            None => (rest, None),
        };
        if let Some(tag) = &tag {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && tag.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !valid {
                return Err(err("tag", "must be 1-128 of [A-Za-z0-9_.-], not starting with . or -"));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path)) if first.contains('.') || first.contains(':') || first == "localhost" => {
                (first.to_string(), path.to_string())
            }
            _ if name.contains('/') => (DOCKER_HUB.to_string(), name.to_string()),
            _ => (DOCKER_HUB.to_string(), format!("library/{name}")),
        };
        if registry.is_empty() {
            return Err(err("registry", "is empty"));
        }
        if let Some((_, port)) = registry.rsplit_once(':') {
            if port.parse::<u16>().is_err() {
                return Err(err("registry", "port must be a number"));
            }
        }
        if repository.is_empty() {
            return Err(err("repository", "is empty"));
        }
        for component in repository.split('/') {
            let valid = !component.is_empty()
                && component
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                && component.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && component.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
            if !valid {
                return Err(err(
                    "repository",
                    "components must be lowercase letters, digits and . _ - separators",
                ));
            }
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(ImageReference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What to ask the registry for: the digest if known, else the tag.
    pub fn reference(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Self {
        ImageReference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }
}

impl FromStr for ImageReference {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageReference::parse(s)
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_repo_tag() {
        let r = ImageReference::parse("127.0.0.1:5000/team/app:rel-1").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("rel-1"));
        assert_eq!(r.to_string(), "127.0.0.1:5000/team/app:rel-1");
    }

    #[test]
    fn defaults_and_digest() {
        let r = ImageReference::parse("busybox").unwrap();
        assert_eq!(r.registry, DOCKER_HUB);
        assert_eq!(r.repository, "library/busybox");
        assert_eq!(r.reference(), "latest");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageReference::parse(&format!("localhost:5000/x@{d}")).unwrap();
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.tag, None);
        assert_eq!(r.reference(), d);
    }

    #[test]
    fn errors_name_the_field() {
        let e = ImageReference::parse("localhost:5000/UPPER:tag")
            .unwrap_err()
            .to_string();
        assert!(e.contains("repository"), "{e}");
        let e = ImageReference::parse("localhost:5000/x:-bad").unwrap_err().to_string();
        assert!(e.contains("tag"), "{e}");
        let e = ImageReference::parse("localhost:5000/x@sha256:zz")
            .unwrap_err()
            .to_string();
        assert!(e.contains("digest"), "{e}");
        let e = ImageReference::parse("host:port/x").unwrap_err().to_string();
        assert!(e.contains("registry"), "{e}");
    }
}
