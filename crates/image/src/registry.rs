//! A registry client for the OCI distribution API: basic and bearer-token auth, HTTP or HTTPS,
//! manifests (resolving an index to one platform), blobs (HEAD, GET, cross-repository mount, upload).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode, Url};

use crate::error::{ImageError, Result};
use crate::media::{self, Index, Manifest};
use crate::sha256_digest;

/// Username and password (or token) for a registry.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Whether to speak HTTP or HTTPS to a registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scheme {
    /// HTTP for `localhost`, `127.0.0.1` and `[::1]`, HTTPS for everything else.
    #[default]
    Auto,
    Http,
    Https,
}

/// How to reach one registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    pub credentials: Option<Credentials>,
    pub scheme: Scheme,
    /// Hosts (`host[:port]`) besides the registry's own that may receive the
    /// credentials when a bearer challenge names them as the token realm;
    /// a realm anywhere else is asked for a token without them.
    pub token_realm_hosts: Vec<String>,
    /// Which addresses may be contacted (registry, token realm, redirects).
    pub guard: prism_netguard::Guard,
}

/// A manifest as fetched: its bytes, media type and digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
}

impl FetchedManifest {
    pub fn parse(&self) -> Result<Manifest> {
        serde_json::from_slice(&self.bytes).map_err(|e| ImageError::Manifest {
            reference: self.digest.clone(),
            reason: format!("not an image manifest: {e}"),
        })
    }
}

/// A client for one registry host.
pub struct RegistryClient {
    http: reqwest::Client,
    host: String,
    base: Url,
    credentials: Option<Credentials>,
    guard: prism_netguard::Guard,
    token_realm_hosts: Vec<String>,
    /// Authorization header values by scope set, learnt from 401 challenges.
    auth: Mutex<HashMap<String, HeaderValue>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

fn is_local(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) && !name.ends_with(':') => name,
        _ => host,
    };
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

/// The `errors` of a registry error body as `CODE: message (detail)`, or the body itself.
fn registry_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        errors: Vec<Err>,
    }
    #[derive(serde::Deserialize)]
    struct Err {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        detail: serde_json::Value,
    }
    if let Ok(parsed) = serde_json::from_slice::<Body>(body) {
        if !parsed.errors.is_empty() {
            return parsed
                .errors
                .iter()
                .map(|e| match &e.detail {
                    serde_json::Value::Null => format!("{}: {}", e.code, e.message),
                    detail => format!("{}: {} ({detail})", e.code, e.message),
                })
                .collect::<Vec<_>>()
                .join("; ");
        }
    }
    let text = String::from_utf8_lossy(body).trim().to_string();
    if text.is_empty() {
        "(no error body)".to_string()
    } else {
        text.chars().take(500).collect()
    }
}

/// Parses `Bearer realm="...",service="...",scope="..."` into its scheme and parameters.
fn parse_challenge(header: &str) -> (String, HashMap<String, String>) {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.insert(key, value.to_string());
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    (scheme.to_ascii_lowercase(), params)
}

/// A response whose status was checked, with its body read.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl RegistryClient {
    /// A client for `host` (`registry.example.com` or `127.0.0.1:5000`).
    pub fn new(host: &str, options: RegistryOptions) -> Result<Self> {
        let https = match options.scheme {
            Scheme::Http => false,
            Scheme::Https => true,
            Scheme::Auto => !is_local(host),
        };
        let base = Url::parse(&format!("{}://{host}/", if https { "https" } else { "http" })).map_err(|e| {
            ImageError::Reference {
                reference: host.to_string(),
                field: "registry",
                reason: e.to_string(),
            }
        })?;
        let guard = options.guard.clone();
        let http = reqwest::Client::builder()
            // Names resolve to allowed addresses only, on redirects too;
            // literal addresses are checked before each request and redirect.
            .dns_resolver(guard.resolver())
            .redirect(guard.redirect_policy(10))
            .user_agent(concat!("prism-image/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ImageError::Transport {
                operation: "client setup".into(),
                url: base.to_string(),
                source,
            })?;
        Ok(RegistryClient {
            http,
            host: host.to_string(),
            base,
            credentials: options.credentials,
            guard,
            token_realm_hosts: options
                .token_realm_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            auth: Mutex::default(),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("registry paths are valid URL paths")
    }

    fn basic_header(&self) -> Option<HeaderValue> {
        let c = self.credentials.as_ref()?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
        HeaderValue::from_str(&format!("Basic {encoded}")).ok()
    }

    /// Sends a request, answering one 401 challenge (basic or bearer) and retrying once.
    async fn send(
        &self,
        operation: &str,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<Bytes>,
        scopes: &[String],
    ) -> Result<Reply> {
        let key = scopes.join(" ");
        let mut challenged = false;
        self.allowed(operation, &url)?;
        let ours = self.is_registry(&url);
        loop {
            let mut request = self.http.request(method.clone(), url.clone()).headers(headers.clone());
            // Credentials (and tokens bought with them) go to the registry's
            // own host only, not to an upload Location elsewhere.
            let cached = ours
                .then(|| self.auth.lock().expect("auth cache lock").get(&key).cloned())
                .flatten();
            if let Some(value) = cached {
                request = request.header(AUTHORIZATION, value);
            }
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            let response = request.send().await.map_err(|source| ImageError::Transport {
                operation: operation.to_string(),
                url: url.to_string(),
                source,
            })?;
            let status = response.status();
            let response_headers = response.headers().clone();
            let body_bytes = if method == Method::HEAD {
                Bytes::new()
            } else {
                response.bytes().await.map_err(|source| ImageError::Transport {
                    operation: operation.to_string(),
                    url: url.to_string(),
                    source,
                })?
            };
            if status == StatusCode::UNAUTHORIZED && !challenged && ours {
                challenged = true;
                let challenge = response_headers
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let value = self.answer_challenge(operation, challenge, scopes).await?;
                self.auth.lock().expect("auth cache lock").insert(key.clone(), value);
                continue;
            }
            if status == StatusCode::UNAUTHORIZED {
                return Err(ImageError::Auth {
                    operation: operation.to_string(),
                    message: registry_message(&body_bytes),
                });
            }
            return Ok(Reply {
                status,
                headers: response_headers,
                body: body_bytes,
            });
        }
    }

    async fn answer_challenge(&self, operation: &str, challenge: &str, scopes: &[String]) -> Result<HeaderValue> {
        let (scheme, params) = parse_challenge(challenge);
        let auth_err = |message: String| ImageError::Auth {
            operation: operation.to_string(),
            message,
        };
        match scheme.as_str() {
            "basic" => self
                .basic_header()
                .ok_or_else(|| auth_err("registry requires credentials; none given".into())),
            "bearer" => {
                let realm = params
                    .get("realm")
                    .ok_or_else(|| auth_err("bearer challenge without realm".into()))?;
                let mut url = Url::parse(realm).map_err(|e| auth_err(format!("bad token realm {realm}: {e}")))?;
                {
                    let mut query = url.query_pairs_mut();
                    if let Some(service) = params.get("service") {
                        query.append_pair("service", service);
                    }
                    if scopes.is_empty() {
                        if let Some(scope) = params.get("scope") {
                            query.append_pair("scope", scope);
                        }
                    }
                    for scope in scopes {
                        query.append_pair("scope", scope);
                    }
                }
                self.allowed(&format!("{operation} (token)"), &url)?;
                let mut request = self.http.get(url.clone());
                // The realm comes from the server's answer: the credentials go
                // only to the registry's own host or a realm host the admin allowed.
                if self.may_receive_credentials(&url) {
                    if let Some(basic) = self.basic_header() {
                        request = request.header(AUTHORIZATION, basic);
                    }
                }
                let response = request.send().await.map_err(|source| ImageError::Transport {
                    operation: format!("{operation} (token)"),
                    url: url.to_string(),
                    source,
                })?;
                let status = response.status();
                let body = response.bytes().await.unwrap_or_default();
                if !status.is_success() {
                    return Err(auth_err(format!(
                        "token service answered {status}: {}",
                        registry_message(&body)
                    )));
                }
                #[derive(serde::Deserialize)]
                struct Token {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let token: Token =
                    serde_json::from_slice(&body).map_err(|e| auth_err(format!("token response unreadable: {e}")))?;
                let token = token
                    .token
                    .or(token.access_token)
                    .ok_or_else(|| auth_err("token response has no token".into()))?;
                HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| auth_err(e.to_string()))
            }
            other => Err(auth_err(format!(
                "unsupported authentication scheme {other:?} ({challenge})"
            ))),
        }
    }

    /// Refuses a literal address the policy does not allow (names are
    /// checked when resolved).
    fn allowed(&self, operation: &str, url: &Url) -> Result<()> {
        self.guard.check_url(url).map_err(|_| ImageError::Unreachable {
            operation: operation.to_string(),
            url: url.to_string(),
        })
    }

    /// Whether `url` is on the registry's own host (scheme's default port or not).
    fn is_registry(&self, url: &Url) -> bool {
        url.host_str().is_some()
            && url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default()
    }

    /// Whether `url` (a token realm) is on the registry's host or an allowed realm host.
    fn may_receive_credentials(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        }
        .to_ascii_lowercase();
        let with_default = url
            .port_or_known_default()
            .map(|p| format!("{}:{p}", host.to_ascii_lowercase()));
        let ours = self.host.to_ascii_lowercase();
        std::iter::once(&ours)
            .chain(self.token_realm_hosts.iter())
            .any(|h| *h == authority || Some(h) == with_default.as_ref())
    }

    fn pull_scope(repository: &str) -> Vec<String> {
        vec![format!("repository:{repository}:pull")]
    }

    fn push_scope(repository: &str) -> Vec<String> {
        vec![format!("repository:{repository}:pull,push")]
    }

    fn fail(operation: &str, reply: &Reply) -> ImageError {
        ImageError::Registry {
            operation: operation.to_string(),
            status: reply.status.as_u16(),
            message: registry_message(&reply.body),
        }
    }

    /// Fetches a manifest by tag or digest; `None` if the registry does not have it.
    pub async fn get_manifest(&self, repository: &str, reference: &str) -> Result<Option<FetchedManifest>> {
        let operation = format!("GET manifest {repository}:{reference}");
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(media::MANIFEST_ACCEPT));
        let url = self.url(&format!("v2/{repository}/manifests/{reference}"));
        let reply = self
            .send(
                &operation,
                Method::GET,
                url,
                headers,
                None,
                &Self::pull_scope(repository),
            )
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !reply.status.is_success() {
            return Err(Self::fail(&operation, &reply));
        }
        let bytes = reply.body.to_vec();
        let media_type = reply
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
            .filter(|v| v != "application/json" && !v.is_empty())
            .or_else(|| {
                serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| v.get("mediaType").and_then(|m| m.as_str()).map(str::to_string))
            })
            .unwrap_or_else(|| media::OCI_MANIFEST.to_string());
        let digest = sha256_digest(&bytes);
        if reference.starts_with("sha256:") && reference != digest {
            return Err(ImageError::DigestMismatch {
                repository: repository.to_string(),
                expected: reference.to_string(),
                actual: digest,
            });
        }
        Ok(Some(FetchedManifest {
            bytes,
            media_type,
            digest,
        }))
    }

    /// Fetches an image manifest, resolving a manifest list / index to `os`/`architecture`.
    /// `None` if the tag or the platform does not exist.
    pub async fn get_image_manifest(
        &self,
        repository: &str,
        reference: &str,
        os: &str,
        architecture: &str,
    ) -> Result<Option<FetchedManifest>> {
        let Some(fetched) = self.get_manifest(repository, reference).await? else {
            return Ok(None);
        };
        if fetched.media_type != media::DOCKER_MANIFEST_LIST && fetched.media_type != media::OCI_INDEX {
            return Ok(Some(fetched));
        }
        let index: Index = serde_json::from_slice(&fetched.bytes).map_err(|e| ImageError::Manifest {
            reference: format!("{repository}:{reference}"),
            reason: format!("unreadable index: {e}"),
        })?;
        let chosen = index.manifests.iter().find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == os && p.architecture == architecture)
        });
        match chosen {
            Some(d) => self.get_manifest(repository, &d.digest).await,
            None => Ok(None),
        }
    }

    /// Downloads a blob and checks its digest.
    pub async fn get_blob(&self, repository: &str, digest: &str) -> Result<Vec<u8>> {
        let operation = format!("GET blob {repository}@{digest}");
        let url = self.url(&format!("v2/{repository}/blobs/{digest}"));
        let reply = self
            .send(
                &operation,
                Method::GET,
                url,
                HeaderMap::new(),
                None,
                &Self::pull_scope(repository),
            )
            .await?;
        if !reply.status.is_success() {
            return Err(Self::fail(&operation, &reply));
        }
        let actual = sha256_digest(&reply.body);
        if actual != digest {
            return Err(ImageError::DigestMismatch {
                repository: repository.into(),
                expected: digest.into(),
                actual,
            });
        }
        Ok(reply.body.to_vec())
    }

    /// Whether the repository already has the blob.
    pub async fn has_blob(&self, repository: &str, digest: &str) -> Result<bool> {
        let operation = format!("HEAD blob {repository}@{digest}");
        let url = self.url(&format!("v2/{repository}/blobs/{digest}"));
        let reply = self
            .send(
                &operation,
                Method::HEAD,
                url,
                HeaderMap::new(),
                None,
                &Self::push_scope(repository),
            )
            .await?;
        match reply.status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(Self::fail(&operation, &reply)),
        }
    }

    /// Asks the registry to mount a blob from another repository of the same registry. `Ok(false)` if
    /// it refused (it may answer 202 and start an upload instead; that upload is cancelled).
    pub async fn mount_blob(&self, repository: &str, digest: &str, from: &str) -> Result<bool> {
        let operation = format!("mount blob {digest} from {from} into {repository}");
        let mut url = self.url(&format!("v2/{repository}/blobs/uploads/"));
        url.query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from);
        let mut scopes = Self::push_scope(repository);
        scopes.push(format!("repository:{from}:pull"));
        let reply = self
            .send(
                &operation,
                Method::POST,
                url,
                HeaderMap::new(),
                Some(Bytes::new()),
                &scopes,
            )
            .await?;
        match reply.status {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                if let Ok(location) = self.location(&operation, &reply) {
                    // Best effort: abandoned sessions are garbage-collected by the registry anyway.
                    let _ = self
                        .send(&operation, Method::DELETE, location, HeaderMap::new(), None, &scopes)
                        .await;
                }
                Ok(false)
            }
            _ => Err(Self::fail(&operation, &reply)),
        }
    }

    fn location(&self, operation: &str, reply: &Reply) -> Result<Url> {
        let location = reply
            .headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ImageError::Registry {
                operation: operation.to_string(),
                status: reply.status.as_u16(),
                message: "upload accepted without a Location header".into(),
            })?;
        // Location may be absolute or relative to the registry.
        self.base.join(location).map_err(|e| ImageError::Registry {
            operation: operation.to_string(),
            status: reply.status.as_u16(),
            message: format!("bad upload Location {location:?}: {e}"),
        })
    }

    /// Uploads a blob monolithically (POST then PUT ?digest=). Returns the bytes sent.
    pub async fn upload_blob(&self, repository: &str, digest: &str, data: Bytes) -> Result<u64> {
        let operation = format!("upload blob {digest} to {repository}");
        let scopes = Self::push_scope(repository);
        let url = self.url(&format!("v2/{repository}/blobs/uploads/"));
        let reply = self
            .send(
                &operation,
                Method::POST,
                url,
                HeaderMap::new(),
                Some(Bytes::new()),
                &scopes,
            )
            .await?;
        if reply.status != StatusCode::ACCEPTED {
            return Err(Self::fail(&operation, &reply));
        }
        let mut location = self.location(&operation, &reply)?;
        location.query_pairs_mut().append_pair("digest", digest);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        let size = data.len() as u64;
        let reply = self
            .send(&operation, Method::PUT, location, headers, Some(data), &scopes)
            .await?;
        if reply.status != StatusCode::CREATED {
            return Err(Self::fail(&operation, &reply));
        }
        tracing::debug!(repository, digest, size, "uploaded blob");
        Ok(size)
    }

    /// Uploads a blob unless the repository already has it. Returns the bytes sent (0 if present).
    pub async fn ensure_blob(&self, repository: &str, digest: &str, data: Bytes) -> Result<u64> {
        if self.has_blob(repository, digest).await? {
            return Ok(0);
        }
        self.upload_blob(repository, digest, data).await
    }

    /// Pushes a manifest under a tag (or digest). Returns the manifest's digest.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<String> {
        let operation = format!("PUT manifest {repository}:{reference}");
        let digest = sha256_digest(&bytes);
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(media_type).map_err(|e| ImageError::Manifest {
                reference: reference.to_string(),
                reason: format!("bad media type {media_type:?}: {e}"),
            })?,
        );
        let url = self.url(&format!("v2/{repository}/manifests/{reference}"));
        let reply = self
            .send(
                &operation,
                Method::PUT,
                url,
                headers,
                Some(Bytes::from(bytes)),
                &Self::push_scope(repository),
            )
            .await?;
        if reply.status != StatusCode::CREATED {
            return Err(Self::fail(&operation, &reply));
        }
        if let Some(server) = reply.headers.get("docker-content-digest").and_then(|v| v.to_str().ok()) {
            if server != digest {
                return Err(ImageError::DigestMismatch {
                    repository: repository.to_string(),
                    expected: digest,
                    actual: server.to_string(),
                });
            }
        }
        Ok(digest)
    }
}

/// Clients for several registries, created on first use with per-host options.
#[derive(Default)]
pub struct Registries {
    options: HashMap<String, RegistryOptions>,
    default: RegistryOptions,
    clients: Mutex<HashMap<String, Arc<RegistryClient>>>,
}

impl Registries {
    pub fn new() -> Self {
        Self::default()
    }

    /// Options (credentials, scheme) for one registry host.
    pub fn with(mut self, host: &str, options: RegistryOptions) -> Self {
        self.options.insert(host.to_string(), options);
        self
    }

    /// Options for hosts not configured with [`Registries::with`].
    pub fn with_default(mut self, options: RegistryOptions) -> Self {
        self.default = options;
        self
    }

    /// The address policy for every client (set after the `with` calls).
    pub fn with_guard(mut self, guard: prism_netguard::Guard) -> Self {
        for o in self.options.values_mut() {
            o.guard = guard.clone();
        }
        self.default.guard = guard;
        self
    }

    /// The client for a host.
    pub fn client(&self, host: &str) -> Result<Arc<RegistryClient>> {
        let mut clients = self.clients.lock().expect("registry clients lock");
        if let Some(client) = clients.get(host) {
            return Ok(client.clone());
        }
        let options = self.options.get(host).cloned().unwrap_or_else(|| self.default.clone());
        let client = Arc::new(RegistryClient::new(host, options)?);
        clients.insert(host.to_string(), client.clone());
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge() {
        let (scheme, p) = parse_challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(scheme, "bearer");
        assert_eq!(p["realm"], "https://auth.example.com/token");
        assert_eq!(p["service"], "registry.example.com");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
        let (scheme, p) = parse_challenge(r#"Basic realm="r""#);
        assert_eq!(scheme, "basic");
        assert_eq!(p["realm"], "r");
    }

    #[test]
    fn local_hosts_use_http() {
        assert!(is_local("127.0.0.1:5000"));
        assert!(is_local("localhost"));
        assert!(!is_local("ghcr.io"));
    }

    #[test]
    fn registry_message_extracts_errors() {
        let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#;
        assert_eq!(registry_message(body), "UNAUTHORIZED: authentication required");
    }
}
