//! The `batch/v1` Job one build becomes on a build cluster.
//!
//! Steps run in order, each in its own container: all but the last as init
//! containers (which Kubernetes runs one after another, stopping at the
//! first failure), the last as the pod's container. They share the
//! workspace, an `emptyDir` with a size limit. The Job never retries
//! (`backoffLimit: 0`: Prism decides about retries), is ended by
//! `activeDeadlineSeconds` at the build's timeout, and is removed by the
//! cluster `ttlSecondsAfterFinished` after it ends. The pod gets no service
//! account token, no service links, no privilege escalation and no
//! capabilities. Credentials come from a per-build Secret, and each step
//! sees only the keys handed to it.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use serde_json::{json, Value};

use super::settings::CacheClaim;

/// Labels every build Job and Secret carries (the reaper finds them by these).
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "prism");
pub const COMPONENT: (&str, &str) = ("app.kubernetes.io/component", "build");
pub const BUILD_LABEL: &str = "prism.io/build";
pub const INSTANCE_LABEL: &str = "prism.io/instance";
pub const APPLICATION_LABEL: &str = "prism.io/application";
/// Where the workspace is mounted in every step.
pub const WORKSPACE: &str = "/workspace";
pub const CACHE: &str = "/cache";

/// Requests and limits of one step (Kubernetes quantities, already validated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepResources {
    pub cpu_request: Option<String>,
    pub cpu_limit: Option<String>,
    pub memory_request: Option<String>,
    pub memory_limit: Option<String>,
}

/// One step of the build, run as one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodStep {
    /// Container name: `checkout`, `build`, `push`.
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Environment variables read from the build's Secret: (variable, key).
    pub secret_env: Vec<(String, String)>,
    pub resources: StepResources,
    /// Working directory, inside the workspace.
    pub workdir: String,
    /// The dependency cache volume is mounted at `/cache` (the build step
    /// only: Prism's own steps have no use for it).
    pub mounts_cache: bool,
}

/// Everything a build Job is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildJobSpec {
    pub build_id: i64,
    /// The job attempt: a build retried after a crash gets a new Job, so it
    /// never waits for the old one's deletion.
    pub attempt: i64,
    pub namespace: String,
    /// Which Prism instance started it (for the reaper of a restarted instance).
    pub instance: String,
    pub steps: Vec<PodStep>,
    pub workspace_size: String,
    pub deadline_seconds: i64,
    pub ttl_seconds_after_finished: i32,
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations as the API writes them (`key`, `operator`, `value`, `effect`).
    pub tolerations: Vec<Value>,
    pub image_pull_secrets: Vec<String>,
    /// The application's dependency cache volume, mounted at `/cache` in
    /// the steps that ask for it.
    pub cache_claim: Option<CacheClaim>,
    /// The pod shares the node's network namespace (see
    /// [`super::settings::RunnerSettings::host_network`]).
    pub host_network: bool,
}

impl BuildJobSpec {
    /// The Job's name (and the Secret's): one per build attempt, so creating
    /// it twice fails instead of starting the same attempt twice.
    pub fn name(&self) -> String {
        job_name(self.build_id, self.attempt)
    }

    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
            (COMPONENT.0.to_string(), COMPONENT.1.to_string()),
            (BUILD_LABEL.to_string(), self.build_id.to_string()),
            (INSTANCE_LABEL.to_string(), label_value(&self.instance)),
        ])
    }
}

pub fn job_name(build_id: i64, attempt: i64) -> String {
    format!("prism-build-{build_id}-{attempt}")
}

/// A label value: at most 63 characters of `[A-Za-z0-9._-]`, alphanumeric at both ends.
fn label_value(s: &str) -> String {
    let v: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    v.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string()
}

fn container(step: &PodStep, secret: &str) -> Value {
    let mut env: Vec<Value> = step.env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
    env.extend(
        step.secret_env
            .iter()
            .map(|(var, key)| json!({"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})),
    );
    env.push(json!({"name": "HOME", "value": WORKSPACE}));
    let r = &step.resources;
    let mut requests = serde_json::Map::new();
    let mut limits = serde_json::Map::new();
    if let Some(v) = &r.cpu_request {
        requests.insert("cpu".into(), json!(v));
    }
    if let Some(v) = &r.memory_request {
        requests.insert("memory".into(), json!(v));
    }
    if let Some(v) = &r.cpu_limit {
        limits.insert("cpu".into(), json!(v));
    }
    if let Some(v) = &r.memory_limit {
        limits.insert("memory".into(), json!(v));
    }
    json!({
        "name": step.name,
        "image": step.image,
        "imagePullPolicy": "IfNotPresent",
        "command": step.command,
        "workingDir": step.workdir,
        "env": env,
        "resources": {"requests": requests, "limits": limits},
        "volumeMounts": [{"name": "workspace", "mountPath": WORKSPACE}],
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "privileged": false,
            "capabilities": {"drop": ["ALL"]},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
    })
}

/// The Job for `spec`; `secret` is the name of the build's Secret.
pub fn job(spec: &BuildJobSpec) -> Job {
    let name = spec.name();
    let labels = spec.labels();
    let mut containers: Vec<Value> = spec
        .steps
        .iter()
        .map(|s| {
            let mut c = container(s, &name);
            if s.mounts_cache && spec.cache_claim.is_some() {
                c["volumeMounts"]
                    .as_array_mut()
                    .expect("mounts")
                    .push(json!({"name": "cache", "mountPath": CACHE}));
            }
            c
        })
        .collect();
    let main = containers.pop().map(|c| vec![c]).unwrap_or_default();
    let mut volumes = vec![json!({"name": "workspace", "emptyDir": {"sizeLimit": spec.workspace_size}})];
    if let Some(claim) = &spec.cache_claim {
        volumes.push(json!({"name": "cache", "persistentVolumeClaim": {"claimName": claim.name}}));
    }
    let pull: Vec<Value> = spec.image_pull_secrets.iter().map(|s| json!({"name": s})).collect();
    let value = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": spec.namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": spec.deadline_seconds,
            "ttlSecondsAfterFinished": spec.ttl_seconds_after_finished,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": false,
                    "enableServiceLinks": false,
                    "initContainers": containers,
                    "containers": main,
                    "volumes": volumes,
                    "nodeSelector": spec.node_selector,
                    "tolerations": spec.tolerations,
                    "imagePullSecrets": pull,
                    "terminationGracePeriodSeconds": 10,
                    "hostNetwork": spec.host_network,
                },
            },
        },
    });
    serde_json::from_value(value).expect("a build Job is a valid Job")
}

/// The claim holding one application's dependency caches. It carries the
/// application's label (not a build's): the reaper leaves it, and it
/// outlives every build Job.
pub fn cache_claim(namespace: &str, claim: &CacheClaim) -> PersistentVolumeClaim {
    let mut spec = json!({
        "accessModes": [claim.access_mode],
        "resources": {"requests": {"storage": claim.size}},
    });
    if let Some(class) = &claim.storage_class {
        spec["storageClassName"] = json!(class);
    }
    let value = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim.name, "namespace": namespace, "labels": {
            MANAGED_BY.0: MANAGED_BY.1,
            "app.kubernetes.io/component": "build-cache",
            APPLICATION_LABEL: label_value(&claim.application),
        }},
        "spec": spec,
    });
    serde_json::from_value(value).expect("a cache claim is a valid PersistentVolumeClaim")
}

/// The build's Secret: the credentials its steps need, for this build only.
pub fn secret(spec: &BuildJobSpec, data: &BTreeMap<String, String>) -> Secret {
    let value = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": spec.name(), "namespace": spec.namespace, "labels": spec.labels()},
        "type": "Opaque",
        "stringData": data,
    });
    serde_json::from_value(value).expect("a build Secret is a valid Secret")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> BuildJobSpec {
        BuildJobSpec {
            build_id: 42,
            attempt: 1,
            namespace: "builds".into(),
            instance: "prism-0:abc".into(),
            steps: vec![
                PodStep {
                    name: "checkout".into(),
                    image: "127.0.0.1:5000/prism/executor:1".into(),
                    command: vec!["/prism".into(), "step".into(), "checkout".into()],
                    env: BTreeMap::from([("PRISM_REF".into(), "main".into())]),
                    secret_env: vec![("PRISM_GIT_PASSWORD".into(), "git-password".into())],
                    resources: StepResources::default(),
                    workdir: WORKSPACE.into(),
                    mounts_cache: false,
                },
                PodStep {
                    name: "build".into(),
                    image: "127.0.0.1:5000/builders/node@sha256:abc".into(),
                    command: vec!["/bin/sh".into(), "-c".into(), "npm ci".into()],
                    env: BTreeMap::new(),
                    secret_env: vec![],
                    resources: StepResources {
                        memory_limit: Some("512Mi".into()),
                        cpu_limit: Some("1".into()),
                        ..Default::default()
                    },
                    workdir: "/workspace/web".into(),
                    mounts_cache: true,
                },
                PodStep {
                    name: "push".into(),
                    image: "127.0.0.1:5000/prism/executor:1".into(),
                    command: vec!["/prism".into(), "step".into(), "push".into()],
                    env: BTreeMap::new(),
                    secret_env: vec![("PRISM_REGISTRY_PASSWORD".into(), "registry-password".into())],
                    resources: StepResources::default(),
                    workdir: WORKSPACE.into(),
                    mounts_cache: false,
                },
            ],
            workspace_size: "2Gi".into(),
            deadline_seconds: 600,
            ttl_seconds_after_finished: 300,
            node_selector: BTreeMap::from([("pool".into(), "builds".into())]),
            tolerations: vec![json!({"key": "builds", "operator": "Exists", "effect": "NoSchedule"})],
            image_pull_secrets: vec!["registry".into()],
            cache_claim: Some(CacheClaim {
                name: "prism-cache-web".into(),
                application: "web".into(),
                size: "5Gi".into(),
                storage_class: Some("fast".into()),
                access_mode: "ReadWriteOnce".into(),
            }),
            host_network: false,
        }
    }

    #[test]
    fn steps_run_in_order_and_the_job_never_retries() {
        let j = serde_json::to_value(job(&spec())).unwrap();
        let pod = &j["spec"]["template"]["spec"];
        assert_eq!(j["spec"]["backoffLimit"], 0);
        assert_eq!(j["spec"]["activeDeadlineSeconds"], 600);
        assert_eq!(j["spec"]["ttlSecondsAfterFinished"], 300);
        assert_eq!(pod["restartPolicy"], "Never");
        let init: Vec<&str> = pod["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(init, ["checkout", "build"]);
        assert_eq!(pod["containers"][0]["name"], "push");
        assert_eq!(j["metadata"]["name"], "prism-build-42-1");
        assert_eq!(j["metadata"]["labels"][BUILD_LABEL], "42");
        assert_eq!(j["metadata"]["labels"][INSTANCE_LABEL], "prism-0-abc");
    }

    #[test]
    fn the_pod_gets_no_token_no_privileges_and_a_bounded_workspace() {
        let j = serde_json::to_value(job(&spec())).unwrap();
        let pod = &j["spec"]["template"]["spec"];
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["enableServiceLinks"], false);
        assert_eq!(pod["volumes"][0]["emptyDir"]["sizeLimit"], "2Gi");
        assert_eq!(
            pod["volumes"][1]["persistentVolumeClaim"]["claimName"],
            "prism-cache-web"
        );
        assert_eq!(pod["nodeSelector"]["pool"], "builds");
        assert_eq!(pod["tolerations"][0]["key"], "builds");
        assert_eq!(pod["imagePullSecrets"][0]["name"], "registry");
        for c in pod["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .chain(pod["containers"].as_array().unwrap())
        {
            assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false, "{}", c["name"]);
            assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
            let mounts: Vec<&str> = c["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["mountPath"].as_str().unwrap())
                .collect();
            if c["name"] == "build" {
                assert_eq!(mounts, [WORKSPACE, CACHE], "the build step has the cache");
            } else {
                assert_eq!(mounts, [WORKSPACE], "{} has no use for the cache", c["name"]);
            }
        }
        let build = &pod["initContainers"][1];
        assert_eq!(build["resources"]["limits"]["memory"], "512Mi");
        assert_eq!(build["workingDir"], "/workspace/web");
    }

    #[test]
    fn each_step_sees_only_its_own_credentials() {
        let j = serde_json::to_value(job(&spec())).unwrap();
        let pod = &j["spec"]["template"]["spec"];
        let secret_keys = |c: &Value| -> Vec<String> {
            c["env"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| e["valueFrom"]["secretKeyRef"]["key"].as_str().map(String::from))
                .collect()
        };
        assert_eq!(secret_keys(&pod["initContainers"][0]), ["git-password"]);
        assert!(
            secret_keys(&pod["initContainers"][1]).is_empty(),
            "the build step sees no credential"
        );
        assert_eq!(secret_keys(&pod["containers"][0]), ["registry-password"]);
        assert_eq!(
            pod["initContainers"][0]["env"][1]["valueFrom"]["secretKeyRef"]["name"],
            "prism-build-42-1"
        );
        let s = serde_json::to_value(secret(&spec(), &BTreeMap::from([("git-password".into(), "pw".into())]))).unwrap();
        assert_eq!(s["metadata"]["name"], "prism-build-42-1");
        assert_eq!(s["metadata"]["labels"][MANAGED_BY.0], "prism");
    }

    #[test]
    fn the_cache_claim_belongs_to_the_application_not_a_build() {
        let claim = spec().cache_claim.unwrap();
        let c = serde_json::to_value(cache_claim("builds", &claim)).unwrap();
        assert_eq!(c["metadata"]["name"], "prism-cache-web");
        assert_eq!(c["metadata"]["labels"][APPLICATION_LABEL], "web");
        assert!(
            c["metadata"]["labels"].get(BUILD_LABEL).is_none(),
            "the reaper must not take it"
        );
        assert_eq!(c["spec"]["accessModes"][0], "ReadWriteOnce");
        assert_eq!(c["spec"]["resources"]["requests"]["storage"], "5Gi");
        assert_eq!(c["spec"]["storageClassName"], "fast");
        let default_class = CacheClaim {
            storage_class: None,
            ..claim
        };
        let c = serde_json::to_value(cache_claim("builds", &default_class)).unwrap();
        assert!(c["spec"].get("storageClassName").is_none());
    }

    #[test]
    fn label_values_are_valid() {
        assert_eq!(label_value("host:1234/x"), "host-1234-x");
        assert_eq!(label_value("-a-"), "a");
        assert_eq!(label_value(&"x".repeat(100)).len(), 63);
    }
}
