//! Checks rendered objects before anything touches a cluster.

use std::collections::BTreeSet;

use prism_domain::{Cpu, Memory};

use crate::error::{ManifestError, Problem};
use crate::objects::{ObjectRef, Rendered};

/// Kinds that live outside any namespace. Applying one affects the whole
/// cluster, so an environment must allow it explicitly.
pub const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "RuntimeClass",
    "PodSecurityPolicy",
    "CSIDriver",
    "CSINode",
    "VolumeAttachment",
    "CertificateSigningRequest",
    "APIService",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Namespaced,
    Cluster,
}

pub fn scope_of(kind: &str) -> Scope {
    if CLUSTER_SCOPED.contains(&kind) {
        Scope::Cluster
    } else {
        Scope::Namespaced
    }
}

#[derive(Debug, Clone)]
pub struct ValidationPolicy {
    /// The environment's namespace: namespaced objects land here.
    pub namespace: String,
    /// Admin-granted per environment: cluster-scoped kinds and other namespaces.
    pub allow_cluster_scoped: bool,
    pub allow_other_namespaces: bool,
}

fn bad(template: &str, field: &str, message: impl Into<String>) -> Problem {
    Problem {
        template: template.to_owned(),
        line: None,
        field: Some(field.to_owned()),
        message: message.into(),
    }
}

/// A DNS-1123 subdomain: what most Kubernetes object names must be.
fn is_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// Validates and completes the objects (a namespaced object without a
/// namespace gets the environment's). Returns every problem found.
pub fn validate(rendered: &mut Rendered, policy: &ValidationPolicy) -> Result<Vec<ObjectRef>, ManifestError> {
    let mut problems = vec![];
    let mut seen = BTreeSet::new();
    let mut refs = vec![];
    for ro in &mut rendered.objects {
        let t = ro.template.clone();
        let o = &mut ro.object;
        let api_version = o.get("apiVersion").and_then(|v| v.as_str()).unwrap_or("").to_owned();
        let kind = o.get("kind").and_then(|v| v.as_str()).unwrap_or("").to_owned();
        if api_version.is_empty() {
            problems.push(bad(&t, "apiVersion", "every object needs an apiVersion"));
        }
        if kind.is_empty() {
            problems.push(bad(&t, "kind", "every object needs a kind"));
        }
        let name = o
            .pointer("/metadata/name")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        if name.is_empty() {
            problems.push(bad(&t, "metadata.name", format!("{kind} has no metadata.name")));
            continue;
        }
        if !is_subdomain(&name) {
            problems.push(bad(
                &t,
                "metadata.name",
                format!("{name:?} is not a valid Kubernetes name (lowercase DNS-1123)"),
            ));
        }
        let ns = o
            .pointer("/metadata/namespace")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let namespace = match scope_of(&kind) {
            Scope::Cluster => {
                if !policy.allow_cluster_scoped {
                    problems.push(bad(
                        &t,
                        "kind",
                        format!(
                            "{kind} {name} is cluster-scoped; this environment does not allow cluster-scoped objects"
                        ),
                    ));
                }
                None
            }
            Scope::Namespaced => match ns {
                None => {
                    o["metadata"]["namespace"] = serde_json::Value::String(policy.namespace.clone());
                    Some(policy.namespace.clone())
                }
                Some(ns) if ns == policy.namespace => Some(ns),
                Some(ns) => {
                    if !policy.allow_other_namespaces {
                        problems.push(bad(
                            &t,
                            "metadata.namespace",
                            format!(
                                "{kind} {name} names namespace {ns:?}; this environment deploys only to {:?}",
                                policy.namespace
                            ),
                        ));
                    }
                    Some(ns)
                }
            },
        };
        if !o.pointer("/metadata/labels").is_some_and(|l| l.is_object()) {
            problems.push(bad(
                &t,
                "metadata.labels",
                format!("{kind} {name}: metadata.labels must be a mapping"),
            ));
        }
        check_resources(&t, &kind, o, &mut problems);
        let r = ObjectRef {
            api_version: api_version.clone(),
            kind: kind.clone(),
            namespace,
            name: name.clone(),
        };
        let group = api_version
            .rsplit_once('/')
            .map(|(g, _)| g.to_owned())
            .unwrap_or_default();
        if !seen.insert((group, kind.clone(), r.namespace.clone(), name.clone())) {
            problems.push(bad(&t, "metadata.name", format!("{kind} {name} is defined twice")));
        }
        refs.push(r);
    }
    if problems.is_empty() {
        Ok(refs)
    } else {
        Err(ManifestError::Invalid(problems))
    }
}

/// Container resource quantities must parse, and limits cover requests.
fn check_resources(t: &str, kind: &str, o: &serde_json::Value, problems: &mut Vec<Problem>) {
    let pointer = match kind {
        "Pod" => "/spec",
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => "/spec/template/spec",
        "CronJob" => "/spec/jobTemplate/spec/template/spec",
        _ => return,
    };
    let Some(spec) = o.pointer(pointer) else { return };
    let prefix = pointer.trim_start_matches('/').replace('/', ".");
    for list in ["containers", "initContainers"] {
        let Some(containers) = spec.get(list).and_then(|c| c.as_array()) else {
            continue;
        };
        for (i, c) in containers.iter().enumerate() {
            let base = format!("{prefix}.{list}[{i}].resources");
            let get = |kind: &str, res: &str| {
                c.pointer(&format!("/resources/{kind}/{res}")).map(|v| match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            };
            let cpu = |k: &str| get(k, "cpu").map(|q| (Cpu::parse(&format!("{base}.{k}.cpu"), &q), q));
            let mem = |k: &str| get(k, "memory").map(|q| (Memory::parse(&format!("{base}.{k}.memory"), &q), q));
            let (cr, cl, mr, ml) = (cpu("requests"), cpu("limits"), mem("requests"), mem("limits"));
            for e in [&cr, &cl].into_iter().flatten().filter_map(|(r, _)| r.as_ref().err()) {
                problems.push(bad(t, &e.field, e.message.clone()));
            }
            for e in [&mr, &ml].into_iter().flatten().filter_map(|(r, _)| r.as_ref().err()) {
                problems.push(bad(t, &e.field, e.message.clone()));
            }
            if let (Some((Ok(r), _)), Some((Ok(l), _))) = (&cr, &cl) {
                if l < r {
                    problems.push(bad(
                        t,
                        &format!("{base}.limits.cpu"),
                        format!("limit {l} is below the request {r}"),
                    ));
                }
            }
            if let (Some((Ok(r), _)), Some((Ok(l), _))) = (&mr, &ml) {
                if l < r {
                    problems.push(bad(
                        t,
                        &format!("{base}.limits.memory"),
                        format!("limit {l} is below the request {r}"),
                    ));
                }
            }
        }
    }
}
