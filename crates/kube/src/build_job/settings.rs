//! What an admin says about a Kubernetes build runner: which registered
//! cluster and namespace its Jobs go to, and the defaults every build Job
//! there gets (node selector, tolerations, requests, workspace size, how
//! long a finished Job stays). Parsed once at the edge: every field is
//! checked and named in the error before anything is stored.

use std::collections::BTreeMap;

use prism_domain::{Cpu, Memory, Name, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const DEFAULT_WORKSPACE_SIZE: &str = "4Gi";
pub const DEFAULT_TTL_SECONDS: i32 = 600;
pub const DEFAULT_QUEUE_TIMEOUT_SECONDS: u64 = 600;

/// A toleration as the API writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Toleration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `Exists` or `Equal` (default `Equal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute` (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
}

/// A Kubernetes build runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunnerSettings {
    /// A registered cluster (by name).
    pub cluster: String,
    /// The namespace the build Jobs and their Secrets go to (it must exist).
    pub namespace: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Requests of the build step (its limits come from the application's
    /// `memory_limit` / `cpu_limit`, else these defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_request: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_request: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<String>,
    /// Size limit of the workspace `emptyDir` (default 4Gi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_size: Option<String>,
    /// `ttlSecondsAfterFinished` of the Jobs (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<i32>,
    /// How long a build may wait for a node before it fails as unschedulable (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_timeout_seconds: Option<u64>,
    /// Secrets of the namespace the node pulls images with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<String>,
    /// Run the build pod in the node's network namespace. Only for clusters
    /// whose git server and registry are reachable from the node alone (a
    /// single-node cluster on loopback): the build step then shares the
    /// node's network too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_network: bool,
    /// How many builds may run on this runner at once, across every Prism
    /// instance sharing the store; more wait in Prism's queue (not as
    /// Pending pods). Unset: no limit but the cluster's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_builds: Option<u32>,
    /// Size of the dependency cache volume each application gets on this
    /// runner: a PersistentVolumeClaim `prism-cache-APPLICATION` in the
    /// namespace, made at the application's first build and kept between
    /// builds, mounted at `/cache` in the build step only (npm, pip and
    /// Maven are pointed at it). Unset: no cache volume, every build
    /// downloads its dependencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_size: Option<String>,
    /// The cache claims' storage class (unset: the cluster's default class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_storage_class: Option<String>,
    /// `ReadWriteOnce` (the default: builds of one application share the
    /// node that holds its volume) or `ReadWriteMany` (a class that allows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_access_mode: Option<String>,
}

/// The access modes a cache claim may ask for.
pub const CACHE_ACCESS_MODES: [&str; 2] = ["ReadWriteOnce", "ReadWriteMany"];

/// The most a runner's concurrency limit may be set to.
pub const MAX_CONCURRENT_BUILDS: u32 = 1000;

/// A DNS-1123 label (namespaces, Secret names of one segment).
fn dns_label(field: &str, v: &str) -> Result<(), ValidationError> {
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !v.starts_with('-')
        && !v.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            "must be a DNS-1123 label: 1 to 63 lowercase letters, digits or '-', starting and ending alphanumeric",
        ))
    }
}

/// A DNS-1123 subdomain (Secret names).
fn dns_subdomain(field: &str, v: &str) -> Result<(), ValidationError> {
    if v.is_empty() || v.len() > 253 || v.split('.').any(|p| dns_label(field, p).is_err()) {
        return Err(ValidationError::new(
            field,
            "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.'",
        ));
    }
    Ok(())
}

/// A label value: at most 63 of `[A-Za-z0-9._-]`, alphanumeric at both ends (may be empty).
fn label_value(field: &str, v: &str) -> Result<(), ValidationError> {
    let ok = v.is_empty()
        || (v.len() <= 63
            && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && v.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            "must be at most 63 letters, digits, '.', '_' or '-', starting and ending alphanumeric",
        ))
    }
}

/// A label key: an optional DNS subdomain prefix and `/`, then a name like a label value.
fn label_key(field: &str, k: &str) -> Result<(), ValidationError> {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix {
        dns_subdomain(field, p)?;
    }
    if name.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    label_value(field, name)
}

impl RunnerSettings {
    /// Parses and checks `raw` (the `kubernetes` object of a request);
    /// `field` prefixes the names in errors.
    pub fn parse(field: &str, raw: &Value) -> Result<Self, ValidationError> {
        let s: RunnerSettings =
            serde_json::from_value(raw.clone()).map_err(|e| ValidationError::new(field, e.to_string()))?;
        s.validate(field)?;
        Ok(s)
    }

    pub fn validate(&self, field: &str) -> Result<(), ValidationError> {
        let f = |name: &str| format!("{field}.{name}");
        Name::parse(&f("cluster"), &self.cluster)?;
        dns_label(&f("namespace"), &self.namespace)?;
        if let Some(n) = self.max_concurrent_builds {
            if !(1..=MAX_CONCURRENT_BUILDS).contains(&n) {
                return Err(ValidationError::new(
                    f("max_concurrent_builds"),
                    format!("must be between 1 and {MAX_CONCURRENT_BUILDS}"),
                ));
            }
        }
        for (k, v) in &self.node_selector {
            label_key(&f("node_selector"), k)?;
            label_value(&f(&format!("node_selector.{k}")), v)?;
        }
        for (i, t) in self.tolerations.iter().enumerate() {
            let tf = f(&format!("tolerations[{i}]"));
            if let Some(k) = &t.key {
                label_key(&format!("{tf}.key"), k)?;
            }
            match t.operator.as_deref() {
                None | Some("Equal") => {
                    if t.key.is_none() {
                        return Err(ValidationError::new(
                            format!("{tf}.key"),
                            "is required with operator Equal",
                        ));
                    }
                }
                Some("Exists") => {
                    if t.value.is_some() {
                        return Err(ValidationError::new(
                            format!("{tf}.value"),
                            "must be empty with operator Exists",
                        ));
                    }
                }
                Some(_) => {
                    return Err(ValidationError::new(
                        format!("{tf}.operator"),
                        "must be Exists or Equal",
                    ))
                }
            }
            if let Some(v) = &t.value {
                label_value(&format!("{tf}.value"), v)?;
            }
            if let Some(e) = &t.effect {
                if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&e.as_str()) {
                    return Err(ValidationError::new(
                        format!("{tf}.effect"),
                        "must be NoSchedule, PreferNoSchedule or NoExecute",
                    ));
                }
            }
        }
        for (name, v) in [("cpu_request", &self.cpu_request), ("cpu_limit", &self.cpu_limit)] {
            if let Some(v) = v {
                Cpu::parse(&f(name), v)?;
            }
        }
        for (name, v) in [
            ("memory_request", &self.memory_request),
            ("memory_limit", &self.memory_limit),
            ("workspace_size", &self.workspace_size),
        ] {
            if let Some(v) = v {
                Memory::parse(&f(name), v)?;
            }
        }
        if let Some(t) = self.ttl_seconds {
            if !(0..=7 * 24 * 3600).contains(&t) {
                return Err(ValidationError::new(f("ttl_seconds"), "must be 0 to 604800"));
            }
        }
        if let Some(t) = self.queue_timeout_seconds {
            if !(1..=24 * 3600).contains(&t) {
                return Err(ValidationError::new(f("queue_timeout_seconds"), "must be 1 to 86400"));
            }
        }
        for (i, s) in self.image_pull_secrets.iter().enumerate() {
            dns_subdomain(&f(&format!("image_pull_secrets[{i}]")), s)?;
        }
        if let Some(size) = &self.cache_size {
            Memory::parse(&f("cache_size"), size)?;
        } else if self.cache_storage_class.is_some() || self.cache_access_mode.is_some() {
            return Err(ValidationError::new(
                f("cache_size"),
                "is required with cache_storage_class or cache_access_mode",
            ));
        }
        if let Some(class) = &self.cache_storage_class {
            dns_subdomain(&f("cache_storage_class"), class)?;
        }
        if let Some(mode) = &self.cache_access_mode {
            if !CACHE_ACCESS_MODES.contains(&mode.as_str()) {
                return Err(ValidationError::new(
                    f("cache_access_mode"),
                    "must be ReadWriteOnce or ReadWriteMany",
                ));
            }
        }
        Ok(())
    }

    /// The dependency cache claim of `application` on this runner, when the
    /// runner keeps caches.
    pub fn cache_claim(&self, application: &str) -> Option<CacheClaim> {
        let size = self.cache_size.clone()?;
        Some(CacheClaim {
            name: format!("prism-cache-{application}"),
            application: application.to_string(),
            size,
            storage_class: self.cache_storage_class.clone(),
            access_mode: self
                .cache_access_mode
                .clone()
                .unwrap_or_else(|| CACHE_ACCESS_MODES[0].to_string()),
        })
    }

    pub fn workspace_size(&self) -> String {
        self.workspace_size
            .clone()
            .unwrap_or_else(|| DEFAULT_WORKSPACE_SIZE.to_string())
    }

    pub fn ttl_seconds(&self) -> i32 {
        self.ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS)
    }

    pub fn queue_timeout_seconds(&self) -> u64 {
        self.queue_timeout_seconds.unwrap_or(DEFAULT_QUEUE_TIMEOUT_SECONDS)
    }

    /// Tolerations as the pod spec writes them.
    pub fn tolerations_json(&self) -> Vec<Value> {
        self.tolerations
            .iter()
            .map(|t| serde_json::to_value(t).unwrap_or_else(|_| json!({})))
            .collect()
    }
}

/// The PersistentVolumeClaim that holds one application's dependency caches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheClaim {
    pub name: String,
    pub application: String,
    pub size: String,
    pub storage_class: Option<String>,
    pub access_mode: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(v: Value) -> String {
        RunnerSettings::parse("kubernetes", &v).unwrap_err().field
    }

    #[test]
    fn a_full_runner_parses() {
        let s = RunnerSettings::parse(
            "kubernetes",
            &json!({"cluster": "build", "namespace": "ci-builds", "node_selector": {"pool": "builds", "kubernetes.io/arch": "amd64"},
                "tolerations": [{"key": "builds", "operator": "Exists", "effect": "NoSchedule"}],
                "cpu_request": "500m", "memory_request": "256Mi", "workspace_size": "2Gi", "ttl_seconds": 60,
                "image_pull_secrets": ["registry"]}),
        )
        .unwrap();
        assert_eq!(s.workspace_size(), "2Gi");
        assert_eq!(s.tolerations_json()[0]["operator"], "Exists");
        assert_eq!(s.queue_timeout_seconds(), DEFAULT_QUEUE_TIMEOUT_SECONDS);
    }

    #[test]
    fn each_bad_field_is_named() {
        let base = |extra: Value| {
            let mut v = json!({"cluster": "build", "namespace": "builds"});
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            v
        };
        assert_eq!(err(base(json!({"namespace": "Builds_1"}))), "kubernetes.namespace");
        assert_eq!(err(base(json!({"cluster": "../x"}))), "kubernetes.cluster");
        assert_eq!(
            err(base(json!({"node_selector": {"a b": "x"}}))),
            "kubernetes.node_selector"
        );
        assert_eq!(
            err(base(json!({"node_selector": {"pool": "-x"}}))),
            "kubernetes.node_selector.pool"
        );
        assert_eq!(
            err(base(json!({"tolerations": [{"key": "k", "operator": "Maybe"}]}))),
            "kubernetes.tolerations[0].operator"
        );
        assert_eq!(
            err(base(json!({"memory_request": "lots"}))),
            "kubernetes.memory_request"
        );
        assert_eq!(err(base(json!({"workspace_size": "0"}))), "kubernetes.workspace_size");
        assert_eq!(err(base(json!({"ttl_seconds": -1}))), "kubernetes.ttl_seconds");
        assert_eq!(
            err(base(json!({"image_pull_secrets": ["A"]}))),
            "kubernetes.image_pull_secrets[0]"
        );
        assert_eq!(err(json!({"cluster": "build"})), "kubernetes");
        assert_eq!(
            err(base(json!({"max_concurrent_builds": 0}))),
            "kubernetes.max_concurrent_builds"
        );
        assert_eq!(
            err(base(json!({"max_concurrent_builds": 1001}))),
            "kubernetes.max_concurrent_builds"
        );
        let ok = RunnerSettings::parse("kubernetes", &base(json!({"max_concurrent_builds": 3}))).unwrap();
        assert_eq!(ok.max_concurrent_builds, Some(3));
        assert_eq!(err(base(json!({"cache_size": "lots"}))), "kubernetes.cache_size");
        assert_eq!(
            err(base(json!({"cache_storage_class": "local"}))),
            "kubernetes.cache_size",
            "a class without a size"
        );
        assert_eq!(
            err(base(json!({"cache_size": "1Gi", "cache_storage_class": "Local_Disk"}))),
            "kubernetes.cache_storage_class"
        );
        assert_eq!(
            err(base(json!({"cache_size": "1Gi", "cache_access_mode": "ReadOnlyMany"}))),
            "kubernetes.cache_access_mode"
        );
    }

    #[test]
    fn a_cache_claim_per_application_only_when_a_size_is_set() {
        let none = RunnerSettings::parse("kubernetes", &json!({"cluster": "build", "namespace": "b"})).unwrap();
        assert_eq!(none.cache_claim("web"), None);
        let s = RunnerSettings::parse(
            "kubernetes",
            &json!({"cluster": "build", "namespace": "b", "cache_size": "5Gi", "cache_storage_class": "fast"}),
        )
        .unwrap();
        let claim = s.cache_claim("web").unwrap();
        assert_eq!(claim.name, "prism-cache-web");
        assert_eq!(claim.size, "5Gi");
        assert_eq!(claim.storage_class.as_deref(), Some("fast"));
        assert_eq!(claim.access_mode, "ReadWriteOnce");
    }
}
