use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use futures::TryStreamExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, WatchParams};
use kube::config::{
    AuthInfo, Cluster as KcCluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{ApiCapabilities, Discovery, Scope};
use prism_manifests::ObjectRef;
use tokio::sync::RwLock;

use crate::error::{KubeError, Result};
use crate::FIELD_MANAGER;

/// How to reach one cluster. The token is a secret: never logged.
#[derive(Clone)]
pub struct ClusterConfig {
    pub api_url: String,
    pub ca_cert_pem: Option<String>,
    pub token: Option<String>,
    pub insecure_skip_tls_verify: bool,
    /// Which addresses the API server may be reached at.
    pub guard: prism_netguard::Guard,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("api_url", &self.api_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A connected cluster: a client plus the cluster's API discovery, read once
/// per client (v1.20 servers have no aggregated discovery, so `Discovery::run`).
pub struct Cluster {
    client: kube::Client,
    discovery: RwLock<Option<std::sync::Arc<Discovery>>>,
}

/// Resolves the API server's name under the address policy and points the
/// client at the checked address (the name stays the TLS server name), so
/// the client's own later lookups cannot land elsewhere (DNS rebinding).
/// The API server does not redirect; a refused address reads like an
/// unreachable one.
async fn pin(config: &mut kube::Config, guard: &prism_netguard::Guard) -> Result<()> {
    let unreachable = || KubeError::Unreachable(prism_netguard::UNREACHABLE.into());
    let uri = config.cluster_url.clone();
    let host = uri.host().ok_or_else(unreachable)?.to_owned();
    let https = uri.scheme_str() != Some("http");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let addrs = guard.resolve(&host, port).await.map_err(|_| unreachable())?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let addr = addrs[0];
    let authority = match addr {
        std::net::SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        std::net::SocketAddr::V4(a) => a.to_string(),
    };
    let mut parts = uri.into_parts();
    parts.authority = Some(authority.parse().map_err(|_| unreachable())?);
    config.cluster_url = http::Uri::from_parts(parts).map_err(|_| unreachable())?;
    if config.tls_server_name.is_none() {
        config.tls_server_name = Some(bare.to_owned());
    }
    Ok(())
}

/// An object as the cluster has it (None when absent).
pub type Live = Option<serde_json::Value>;

impl Cluster {
    pub async fn connect(cfg: ClusterConfig) -> Result<Self> {
        crate::install_crypto_provider();
        let kc = Kubeconfig {
            clusters: vec![NamedCluster {
                name: "prism".into(),
                cluster: Some(KcCluster {
                    server: Some(cfg.api_url.clone()),
                    certificate_authority_data: cfg.ca_cert_pem.as_ref().map(|pem| B64.encode(pem)),
                    insecure_skip_tls_verify: Some(cfg.insecure_skip_tls_verify),
                    ..Default::default()
                }),
                other: Default::default(),
            }],
            auth_infos: vec![NamedAuthInfo {
                name: "prism".into(),
                auth_info: Some(AuthInfo {
                    token: cfg.token.clone().map(secrecy::SecretString::from),
                    ..Default::default()
                }),
                other: Default::default(),
            }],
            contexts: vec![NamedContext {
                name: "prism".into(),
                context: Some(Context {
                    cluster: "prism".into(),
                    user: Some("prism".into()),
                    ..Default::default()
                }),
                other: Default::default(),
            }],
            current_context: Some("prism".into()),
            ..Default::default()
        };
        let mut config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .map_err(|e| KubeError::Config(e.to_string()))?;
        pin(&mut config, &cfg.guard).await?;
        config.connect_timeout = Some(Duration::from_secs(10));
        config.read_timeout = Some(Duration::from_secs(60));
        let client = kube::Client::try_from(config).map_err(|e| KubeError::Config(e.to_string()))?;
        Ok(Self {
            client,
            discovery: RwLock::new(None),
        })
    }

    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// The server's version: the cheapest proof the address and credentials work.
    pub async fn version(&self) -> Result<String> {
        let v = tokio::time::timeout(Duration::from_secs(15), self.client.apiserver_version())
            .await
            .map_err(|_| KubeError::Unreachable("no answer within 15 s".into()))?
            .map_err(|e| KubeError::from_kube("/version", e))?;
        Ok(v.git_version)
    }

    async fn discovery(&self) -> Result<std::sync::Arc<Discovery>> {
        if let Some(d) = self.discovery.read().await.clone() {
            return Ok(d);
        }
        let d = std::sync::Arc::new(
            Discovery::new(self.client.clone())
                .run()
                .await
                .map_err(|e| KubeError::from_kube("API discovery", e))?,
        );
        *self.discovery.write().await = Some(d.clone());
        Ok(d)
    }

    /// Whether the cluster serves `group/version` (e.g. to pick an HPA version).
    pub async fn serves(&self, api_version: &str) -> Result<bool> {
        let d = self.discovery().await?;
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        Ok(d.get(group).is_some_and(|g| g.versions().any(|v| v == version)))
    }

    pub async fn resolve(&self, api_version: &str, kind: &str) -> Result<(ApiResource, ApiCapabilities)> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        if let Some(found) = self.discovery().await?.resolve_gvk(&gvk) {
            return Ok(found);
        }
        // A kind installed since discovery ran (a new CRD): look again once.
        *self.discovery.write().await = None;
        self.discovery()
            .await?
            .resolve_gvk(&gvk)
            .ok_or_else(|| KubeError::UnknownKind(format!("{api_version} {kind}")))
    }

    /// Whether the cluster serves this kind outside namespaces (asks discovery,
    /// so custom resources are judged too).
    pub async fn is_cluster_scoped(&self, api_version: &str, kind: &str) -> Result<bool> {
        Ok(self.resolve(api_version, kind).await?.1.scope == Scope::Cluster)
    }

    async fn api_for(&self, r: &ObjectRef) -> Result<Api<DynamicObject>> {
        let (ar, caps) = self.resolve(&r.api_version, &r.kind).await?;
        Ok(match (caps.scope, &r.namespace) {
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &ar),
            (Scope::Namespaced, None) => return Err(KubeError::Config(format!("{r} needs a namespace"))),
            (Scope::Cluster, _) => Api::all_with(self.client.clone(), &ar),
        })
    }

    /// Server-side apply as field manager `prism` (forcing ownership of the
    /// fields Prism sets); with `dry_run` nothing is persisted and the result
    /// is the object as it would be.
    pub async fn apply(&self, r: &ObjectRef, object: &serde_json::Value, dry_run: bool) -> Result<serde_json::Value> {
        let api = self.api_for(r).await?;
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = dry_run;
        let applied = api
            .patch(&r.name, &params, &Patch::Apply(object))
            .await
            .map_err(|e| KubeError::from_kube(&r.to_string(), e))?;
        serde_json::to_value(applied).map_err(|e| KubeError::Config(e.to_string()))
    }

    pub async fn get(&self, r: &ObjectRef) -> Result<Live> {
        let api = self.api_for(r).await?;
        let found = api
            .get_opt(&r.name)
            .await
            .map_err(|e| KubeError::from_kube(&r.to_string(), e))?;
        found
            .map(|o| serde_json::to_value(o).map_err(|e| KubeError::Config(e.to_string())))
            .transpose()
    }

    /// Waits until the object changes after `resource_version` (the version
    /// a `get` read), or `at_most` passes: a watch on that one object, as
    /// `kubectl rollout status` does, instead of reading it again and again.
    /// Any event (a change, a deletion, the version being too old to watch
    /// from) counts as a change: the caller reads the object afresh either way.
    pub async fn wait_for_change(&self, r: &ObjectRef, resource_version: &str, at_most: Duration) -> Result<bool> {
        let api = self.api_for(r).await?;
        let seconds = at_most.as_secs().clamp(1, 290) as u32;
        let params = WatchParams::default()
            .fields(&format!("metadata.name={}", r.name))
            .timeout(seconds);
        let events = api
            .watch(&params, resource_version)
            .await
            .map_err(|e| KubeError::from_kube(&r.to_string(), e))?;
        let mut events = std::pin::pin!(events);
        // The server ends the watch at its timeout; the local one is a backstop.
        match tokio::time::timeout(Duration::from_secs(u64::from(seconds) + 5), events.try_next()).await {
            Ok(Ok(Some(_))) => Ok(true),
            Ok(Ok(None)) | Err(_) => Ok(false),
            Ok(Err(e)) => Err(KubeError::from_kube(&r.to_string(), e)),
        }
    }

    /// Deletes the object, but only the very object that was checked: with
    /// `uid` set, a same-named object recreated meanwhile is left alone.
    pub async fn delete(&self, r: &ObjectRef, uid: Option<String>) -> Result<()> {
        let api = self.api_for(r).await?;
        let mut params = DeleteParams::background();
        if uid.is_some() {
            params.preconditions = Some(kube::api::Preconditions {
                uid,
                resource_version: None,
            });
        }
        match api.delete(&r.name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(KubeError::from_kube(&r.to_string(), e)),
        }
    }

    /// Objects of the given kinds in `namespace` that carry all `labels`.
    pub async fn list_labelled(
        &self,
        kinds: &[(String, String)],
        namespace: &str,
        labels: &[(String, String)],
    ) -> Result<Vec<ObjectRef>> {
        let selector = labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut out = vec![];
        for (api_version, kind) in kinds {
            let (ar, caps) = self.resolve(api_version, kind).await?;
            let api: Api<DynamicObject> = match caps.scope {
                Scope::Namespaced => Api::namespaced_with(self.client.clone(), namespace, &ar),
                Scope::Cluster => Api::all_with(self.client.clone(), &ar),
            };
            let list = api
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| KubeError::from_kube(kind, e))?;
            for o in list {
                out.push(ObjectRef {
                    api_version: api_version.clone(),
                    kind: kind.clone(),
                    namespace: o.metadata.namespace.clone(),
                    name: o.metadata.name.clone().unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }

    /// Why pods matching `selector` in `namespace` are not ready, e.g. the
    /// kubelet's `ErrImagePull` message: what an operator needs to read.
    pub async fn pod_problems(&self, namespace: &str, selector: &str) -> Result<Vec<String>> {
        let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(self.client.clone(), namespace);
        let list = pods
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| KubeError::from_kube("pods", e))?;
        let mut out = vec![];
        for p in list {
            let name = p.metadata.name.clone().unwrap_or_default();
            for cs in p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.clone())
                .unwrap_or_default()
            {
                if let Some(w) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) {
                    let reason = w.reason.clone().unwrap_or_default();
                    if !reason.is_empty() && reason != "ContainerCreating" {
                        out.push(format!(
                            "pod {name}: {reason}: {}",
                            w.message.clone().unwrap_or_default()
                        ));
                    }
                }
                if let Some(t) = cs.state.as_ref().and_then(|s| s.terminated.as_ref()) {
                    out.push(format!(
                        "pod {name}: terminated: {} (exit {})",
                        t.reason.clone().unwrap_or_default(),
                        t.exit_code
                    ));
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

#[cfg(test)]
mod address_tests {
    use super::*;
    use prism_domain::{AddressPolicy, AddressRules};

    fn config(api_url: &str, denied: &[&str]) -> ClusterConfig {
        let rules = AddressRules {
            allowed: vec![],
            denied: denied.iter().map(|s| s.to_string()).collect(),
        };
        ClusterConfig {
            api_url: api_url.into(),
            ca_cert_pem: None,
            token: Some("t".into()),
            insecure_skip_tls_verify: true,
            guard: prism_netguard::Guard::new(AddressPolicy::parse("p", &rules).unwrap()),
        }
    }

    // Issue 11 item 9: before the fix a cluster URL could name any address.
    #[tokio::test]
    async fn clusters_in_denied_ranges_are_refused_before_connecting() {
        for (url, denied) in [
            ("https://169.254.169.254:6443", &[][..]),
            ("https://[fd00:ec2::254]:6443", &[][..]),
            ("https://127.0.0.2:6443", &["127.0.0.2/32"][..]),
            // A name resolving into a denied range.
            ("https://localhost:6443", &["127.0.0.0/8", "::1"][..]),
        ] {
            let err = Cluster::connect(config(url, denied)).await.err().expect(url);
            assert!(
                matches!(&err, KubeError::Unreachable(m) if m == prism_netguard::UNREACHABLE),
                "{url}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn an_allowed_name_is_pinned_to_its_checked_address() {
        let c = Cluster::connect(config("https://localhost:6443", &["::1"])).await;
        assert!(c.is_ok(), "localhost resolves to 127.0.0.1, which is allowed");
        let mut kc = kube::Config::new("https://localhost:6443".parse().unwrap());
        pin(&mut kc, &config("", &["::1"]).guard).await.unwrap();
        assert_eq!(kc.cluster_url.to_string(), "https://127.0.0.1:6443/");
        assert_eq!(kc.tls_server_name.as_deref(), Some("localhost"));
    }
}
