//! Image references and the registry check that stands in for a kubelet's image pull.
//!
//! Only registries named with `--registry HOST:PORT` are asked (plain HTTP, as Prism's
//! test registries on loopback are); every other image counts as pulled.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The manifest types a container runtime asks for (OCI and Docker v2, single and multi-arch).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// A parsed image reference, normalised the way container runtimes do
/// (`nginx` is `docker.io/library/nginx:latest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host, with port when given (`127.0.0.1:5000`, `docker.io`).
    pub host: String,
    /// Repository path inside the registry (`library/nginx`, `shop/web`).
    pub repository: String,
    /// Tag, or digest (`sha256:...`) when the reference has `@`.
    pub reference: String,
    pub is_digest: bool,
}

impl ImageRef {
    pub fn parse(image: &str) -> Option<ImageRef> {
        let image = image.trim();
        if image.is_empty() || image.contains(char::is_whitespace) {
            return None;
        }
        let (name, digest) = match image.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (image, None),
        };
        // A tag is a ':' after the last '/' (a ':' before it is a registry port).
        let last_slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
            None => (name, None),
        };
        let (host, repository) = match name.split_once('/') {
            Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
                (first.to_string(), rest.to_string())
            }
            _ => {
                let repo = if name.contains('/') {
                    name.to_string()
                } else {
                    format!("library/{name}")
                };
                ("docker.io".to_string(), repo)
            }
        };
        if repository.is_empty() || tag == Some("") || digest == Some("") {
            return None;
        }
        let (reference, is_digest) = match (digest, tag) {
            (Some(d), _) => (d.to_string(), true),
            (None, Some(t)) => (t.to_string(), false),
            (None, None) => ("latest".to_string(), false),
        };
        Some(ImageRef {
            host,
            repository,
            reference,
            is_digest,
        })
    }

    /// The full normalised reference, as containerd prints it in error messages.
    pub fn full(&self) -> String {
        let sep = if self.is_digest { '@' } else { ':' };
        format!("{}/{}{}{}", self.host, self.repository, sep, self.reference)
    }

    /// The repository with host, as in a status `imageID` (`host/repo@sha256:...`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.host, self.repository)
    }
}

/// What the registry said about a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullCheck {
    /// The manifest exists; the digest is the registry's `Docker-Content-Digest` when it sent one.
    Found { digest: Option<String> },
    /// An error a kubelet reports as `ErrImagePull`, with containerd's message.
    Failed { message: String },
}

/// Asks `HEAD http://HOST/v2/REPO/manifests/REF` (then GET when HEAD is not allowed).
/// `basic_auth` is the base64 `user:password` of a pull secret, when the pod has one.
pub async fn check(image: &ImageRef, basic_auth: Option<&str>, timeout: Duration) -> PullCheck {
    let full = image.full();
    let path = format!("/v2/{}/manifests/{}", image.repository, image.reference);
    let url = format!("http://{}{}", image.host, path);
    let mut result = request(&image.host, "HEAD", &path, basic_auth, timeout).await;
    if matches!(result, Ok((405, _))) {
        result = request(&image.host, "GET", &path, basic_auth, timeout).await;
    }
    let prefix = format!("failed to pull and unpack image \"{full}\": failed to resolve reference \"{full}\"");
    match result {
        Ok((200, digest)) => PullCheck::Found { digest },
        Ok((404, _)) => PullCheck::Failed {
            message: format!("rpc error: code = NotFound desc = {prefix}: {full}: not found"),
        },
        Ok((401, _)) | Ok((403, _)) => {
            let status = if matches!(result, Ok((401, _))) {
                "401 Unauthorized"
            } else {
                "403 Forbidden"
            };
            PullCheck::Failed {
                message: format!(
                    "rpc error: code = Unknown desc = {prefix}: pulling from host {} failed with status code \
                     [manifests {}]: {status}",
                    image.host, image.reference
                ),
            }
        }
        Ok((code, _)) => PullCheck::Failed {
            message: format!("rpc error: code = Unknown desc = {prefix}: unexpected status code {url}: {code}"),
        },
        Err(e) => PullCheck::Failed {
            message: format!("rpc error: code = Unknown desc = {prefix}: failed to do request: Head \"{url}\": {e}",),
        },
    }
}

/// One plain HTTP/1.1 request; returns the status code and the `Docker-Content-Digest` header.
async fn request(
    host: &str,
    method: &str,
    path: &str,
    basic_auth: Option<&str>,
    timeout: Duration,
) -> Result<(u16, Option<String>), String> {
    let work = async {
        let mut stream = TcpStream::connect(host)
            .await
            .map_err(|e| format!("dial tcp {host}: connect: {}", io_reason(&e)))?;
        let auth = basic_auth
            .map(|a| format!("Authorization: Basic {a}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: prism-kube-sim\r\nAccept: {MANIFEST_ACCEPT}\r\n\
             {auth}Connection: close\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
        // Only the head matters; a GET body is read until the headers end and dropped.
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() > 64 * 1024 {
                break;
            }
        }
        parse_head(&buf).ok_or_else(|| "malformed HTTP response".to_string())
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("dial tcp {host}: i/o timeout")),
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        _ => e.to_string(),
    }
}

fn parse_head(buf: &[u8]) -> Option<(u16, Option<String>)> {
    let text = String::from_utf8_lossy(buf);
    let mut lines = text.split("\r\n");
    let status = lines.next()?;
    let mut parts = status.split_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let code = parts.next()?.parse().ok()?;
    let mut digest = None;
    for line in lines {
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("docker-content-digest") {
                digest = Some(v.trim().to_string());
            }
        }
    }
    Some((code, digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(host: &str, repo: &str, reference: &str, is_digest: bool) -> ImageRef {
        ImageRef {
            host: host.into(),
            repository: repo.into(),
            reference: reference.into(),
            is_digest,
        }
    }

    #[test]
    fn parses_references_like_a_runtime() {
        assert_eq!(
            ImageRef::parse("nginx"),
            Some(r("docker.io", "library/nginx", "latest", false))
        );
        assert_eq!(
            ImageRef::parse("nginx:1.19"),
            Some(r("docker.io", "library/nginx", "1.19", false))
        );
        assert_eq!(
            ImageRef::parse("bitnami/redis:7"),
            Some(r("docker.io", "bitnami/redis", "7", false))
        );
        assert_eq!(
            ImageRef::parse("127.0.0.1:5000/shop/web:v1"),
            Some(r("127.0.0.1:5000", "shop/web", "v1", false))
        );
        assert_eq!(
            ImageRef::parse("localhost/app"),
            Some(r("localhost", "app", "latest", false))
        );
        assert_eq!(
            ImageRef::parse("127.0.0.1:5000/app@sha256:abc"),
            Some(r("127.0.0.1:5000", "app", "sha256:abc", true))
        );
        assert_eq!(
            ImageRef::parse("reg.example:5000/app:v2@sha256:abc"),
            Some(r("reg.example:5000", "app", "sha256:abc", true))
        );
        assert_eq!(ImageRef::parse(""), None);
        assert_eq!(ImageRef::parse("app:"), None);
        assert_eq!(
            ImageRef::parse("127.0.0.1:5000/shop/web:v1").unwrap().full(),
            "127.0.0.1:5000/shop/web:v1"
        );
    }

    #[test]
    fn reads_status_and_digest() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: x\r\nDocker-Content-Digest: sha256:ab\r\n\r\n";
        assert_eq!(parse_head(head), Some((200, Some("sha256:ab".into()))));
        assert_eq!(parse_head(b"HTTP/1.1 404 Not Found\r\n\r\n"), Some((404, None)));
        assert_eq!(parse_head(b"garbage"), None);
    }
}
