//! The kubelet stand-in: binds unscheduled pods to the node, reports bound pods running
//! (or failing, when asked to), and finishes graceful deletions.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Event, Pod, PodSpec, Secret};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::{Api, Client};
use serde_json::{json, Map, Value};

use crate::image::{self, ImageRef, PullCheck};
use crate::ipam::Ipam;
use crate::{is_status, now_time, SimError};

/// Pod annotation that makes every container of the pod fail: `crashloop` or `never-ready`.
pub const FAIL_ANNOTATION: &str = "prism.test/fail";

pub struct Sim {
    pub client: Client,
    pub node: String,
    pub node_ip: String,
    /// The Node's labels, for pods' nodeSelectors.
    pub node_labels: BTreeMap<String, String>,
    /// Registry hosts (`HOST:PORT`) whose images are checked before a pod may start.
    pub registries: Vec<String>,
    pub crashloop_interval: Duration,
    pub ipam: Mutex<Ipam>,
    /// Recent registry answers, by image and credentials.
    pulls: Mutex<HashMap<PullKey, (PullCheck, Instant)>>,
    /// Crash-looping pods: restarts so far and when the last one was counted.
    crashes: Mutex<HashMap<String, (i32, Instant)>>,
    /// resourceVersion our last status patch produced, per pod: an older copy in the
    /// watch cache is not compared (it is our own change still on its way).
    patched: Mutex<HashMap<String, u64>>,
    /// Warning events already sent, per pod UID, container and reason.
    events: Mutex<HashSet<(String, String, String)>>,
}

/// A registry answer is remembered per image reference and pull credentials.
type PullKey = (String, Option<String>);

/// How long a registry answer is reused: a missing image is asked again soon (it may be
/// pushed meanwhile), a present one much later.
const MISSING_TTL: Duration = Duration::from_secs(2);
const FOUND_TTL: Duration = Duration::from_secs(60);
/// How often a pod whose image is missing is looked at again.
const PULL_RETRY: Duration = Duration::from_secs(5);

impl Sim {
    pub fn new(
        client: Client,
        node: String,
        node_ip: String,
        node_labels: BTreeMap<String, String>,
        registries: Vec<String>,
        crashloop_interval: Duration,
        ipam: Ipam,
    ) -> Sim {
        Sim {
            client,
            node,
            node_ip,
            node_labels,
            registries,
            crashloop_interval,
            ipam: Mutex::new(ipam),
            pulls: Mutex::default(),
            crashes: Mutex::default(),
            patched: Mutex::default(),
            events: Mutex::default(),
        }
    }

    /// Forgets everything about pods that no longer exist.
    pub fn forget_except(&self, live: &HashSet<String>) {
        self.ipam.lock().unwrap().retain(live);
        self.crashes.lock().unwrap().retain(|uid, _| live.contains(uid));
        self.patched.lock().unwrap().retain(|uid, _| live.contains(uid));
        self.events.lock().unwrap().retain(|(uid, _, _)| live.contains(uid));
        let now = Instant::now();
        self.pulls
            .lock()
            .unwrap()
            .retain(|_, (_, at)| now.duration_since(*at) < FOUND_TTL);
    }
}

pub fn error_policy(pod: Arc<Pod>, error: &SimError, _sim: Arc<Sim>) -> Action {
    tracing::debug!(pod = %key(&pod), %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_millis(500))
}

fn key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

pub async fn reconcile(pod: Arc<Pod>, sim: Arc<Sim>) -> Result<Action, SimError> {
    let (Some(ns), Some(name), Some(uid)) = (
        pod.metadata.namespace.as_deref(),
        pod.metadata.name.as_deref(),
        pod.metadata.uid.as_deref(),
    ) else {
        return Ok(Action::await_change());
    };
    let spec = match &pod.spec {
        Some(s) => s,
        None => return Ok(Action::await_change()),
    };
    let bound_to = spec.node_name.as_deref().filter(|n| !n.is_empty());
    if bound_to.is_some_and(|n| n != sim.node) {
        return Ok(Action::await_change());
    }
    let pods: Api<Pod> = Api::namespaced(sim.client.clone(), ns);

    if pod.metadata.deletion_timestamp.is_some() {
        // A kubelet stops the containers, then deletes the pod for good: with nothing to
        // stop, the graceful deletion ends at once (ReplicaSets can scale down).
        if bound_to.is_some() {
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(uid.to_string()),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match pods.delete(name, &dp).await {
                Ok(_) => tracing::debug!(pod = %key(&pod), "deleted"),
                Err(e) if is_status(&e, 404) || is_status(&e, 409) => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(Action::await_change());
    }

    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return Ok(Action::await_change());
    }

    let mut just_bound = false;
    if bound_to.is_none() {
        let scheduler = spec.scheduler_name.as_deref().unwrap_or("default-scheduler");
        if scheduler != "default-scheduler" || !fits(spec, &sim.node, &sim.node_labels) {
            return Ok(Action::await_change());
        }
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": ns, "uid": uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": sim.node},
        });
        match pods
            .create_subresource::<_, Value>("binding", name, &PostParams::default(), &binding)
            .await
        {
            Ok(_) => just_bound = true,
            // Bound meanwhile (by another simulated node) or gone: the watch brings the news.
            Err(e) if is_status(&e, 409) || is_status(&e, 404) => return Ok(Action::await_change()),
            Err(e) => return Err(e.into()),
        }
        tracing::debug!(pod = %key(&pod), node = %sim.node, "bound");
    }

    let existing = pod
        .status
        .as_ref()
        .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    let (status, retry) = desired_status(&pod, &existing, &sim).await;

    if !just_bound {
        if contains(&existing, &status) {
            return Ok(retry.map(Action::requeue).unwrap_or_else(Action::await_change));
        }
        let seen_rv = resource_version(pod.metadata.resource_version.as_deref());
        if let (Some(seen), Some(ours)) = (seen_rv, sim.patched.lock().unwrap().get(uid).copied()) {
            if seen < ours {
                // The copy we were given predates our own patch.
                return Ok(retry.map(Action::requeue).unwrap_or_else(Action::await_change));
            }
        }
    }

    let patch = json!({"status": status});
    match pods
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(updated) => {
            if let Some(rv) = resource_version(updated.metadata.resource_version.as_deref()) {
                sim.patched.lock().unwrap().insert(uid.to_string(), rv);
            }
            tracing::debug!(pod = %key(&pod), phase = %status["phase"], "status reported");
        }
        Err(e) if is_status(&e, 404) => return Ok(Action::await_change()),
        Err(e) => return Err(e.into()),
    }
    Ok(retry.map(Action::requeue).unwrap_or_else(Action::await_change))
}

/// Whether a pod may go to this node: its nodeSelector matches the node's labels, and a
/// required node affinity on `metadata.name` (how DaemonSets pick a node) names it.
/// Everything else a scheduler weighs is taken as fitting.
fn fits(spec: &PodSpec, node: &str, labels: &BTreeMap<String, String>) -> bool {
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let terms = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| na.required_during_scheduling_ignored_during_execution.as_ref())
        .map(|r| r.node_selector_terms.as_slice())
        .unwrap_or_default();
    let name_ok = |term: &k8s_openapi::api::core::v1::NodeSelectorTerm| {
        term.match_fields.iter().flatten().all(|f| {
            f.key != "metadata.name"
                || match f.operator.as_str() {
                    "In" => f.values.iter().flatten().any(|v| v == node),
                    "NotIn" => !f.values.iter().flatten().any(|v| v == node),
                    _ => true,
                }
        })
    };
    selector_ok && (terms.is_empty() || terms.iter().any(name_ok))
}

fn resource_version(rv: Option<&str>) -> Option<u64> {
    rv.and_then(|s| s.parse().ok())
}

/// True when every field of `want` is in `have` with the same value (arrays element-wise).
fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w.iter().all(|(k, v)| h.get(k).is_some_and(|hv| contains(hv, v))),
        (Value::Array(h), Value::Array(w)) => h.len() == w.len() && h.iter().zip(w).all(|(a, b)| contains(a, b)),
        _ => have == want,
    }
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn get_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path).and_then(Value::as_str)
}

/// The existing status entry of a container, by name.
fn container_status<'a>(existing: &'a Value, list: &str, name: &str) -> Option<&'a Value> {
    existing
        .get(list)?
        .as_array()?
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
}

fn hex_digest(parts: &[&str]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p.as_bytes());
        ctx.update(b"\0");
    }
    ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

enum Outcome {
    Running { ready: bool },
    PullFailed(String),
    CrashLoop,
}

/// The status a kubelet would report now, and when to look at the pod again.
async fn desired_status(pod: &Pod, existing: &Value, sim: &Sim) -> (Value, Option<Duration>) {
    let spec = pod.spec.as_ref().expect("checked by the caller");
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let now = now_time();
    let fail = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(FAIL_ANNOTATION))
        .map(String::as_str);
    let start_time = get_str(existing, &["startTime"]).unwrap_or(&now).to_string();
    let pod_ip = if spec.host_network == Some(true) {
        Some(sim.node_ip.clone())
    } else {
        sim.ipam
            .lock()
            .unwrap()
            .assign(uid, get_str(existing, &["podIP"]))
            .map(|ip| ip.to_string())
    };

    let mut retry: Option<Duration> = None;
    let mut soonest = |d: Duration| retry = Some(retry.map_or(d, |r| r.min(d)));

    let mut init_statuses = Vec::new();
    for c in spec.init_containers.iter().flatten() {
        let old = container_status(existing, "initContainerStatuses", &c.name);
        let started = old
            .and_then(|o| get_str(o, &["state", "terminated", "startedAt"]))
            .unwrap_or(&now)
            .to_string();
        let image_id = image_id(c, None);
        init_statuses.push(json!({
            "name": c.name,
            "image": c.image.clone().unwrap_or_default(),
            "imageID": image_id,
            "containerID": format!("containerd://{}", hex_digest(&[uid, &c.name, "0"])),
            "ready": true,
            "restartCount": 0,
            "state": {"terminated": {
                "exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": started,
                "containerID": format!("containerd://{}", hex_digest(&[uid, &c.name, "0"])),
            }},
            "lastState": {},
        }));
    }

    let mut statuses = Vec::new();
    let mut unready = Vec::new();
    let mut pending = false;
    let restarts = if fail == Some("crashloop") {
        let old_max = existing
            .get("containerStatuses")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0) as i32;
        let mut crashes = sim.crashes.lock().unwrap();
        let entry = crashes
            .entry(uid.to_string())
            .or_insert((old_max.max(1), Instant::now()));
        let since = entry.1.elapsed();
        if since >= sim.crashloop_interval {
            entry.0 += 1;
            entry.1 = Instant::now();
            soonest(sim.crashloop_interval);
        } else {
            soonest(sim.crashloop_interval - since);
        }
        entry.0
    } else {
        0
    };

    for c in spec.containers.iter() {
        let old = container_status(existing, "containerStatuses", &c.name);
        let already_started = old
            .is_some_and(|o| get(o, &["state", "running"]).is_some() || get(o, &["lastState", "terminated"]).is_some());
        let mut digest = old
            .and_then(|o| get_str(o, &["imageID"]))
            .and_then(|id| id.rsplit_once('@'))
            .map(|(_, d)| d.to_string());
        let outcome = if already_started {
            match fail {
                Some("crashloop") => Outcome::CrashLoop,
                Some("never-ready") => Outcome::Running { ready: false },
                _ => Outcome::Running { ready: true },
            }
        } else {
            match pull(sim, pod, c).await {
                Err(message) => {
                    soonest(PULL_RETRY);
                    Outcome::PullFailed(message)
                }
                Ok(d) => {
                    if d.is_some() {
                        digest = d;
                    }
                    match fail {
                        Some("crashloop") => Outcome::CrashLoop,
                        Some("never-ready") => Outcome::Running { ready: false },
                        _ => Outcome::Running { ready: true },
                    }
                }
            }
        };
        let image = c.image.clone().unwrap_or_default();
        let image_id = image_id(c, digest.as_deref());
        let container_id = format!("containerd://{}", hex_digest(&[uid, &c.name, &restarts.to_string()]));
        let status = match outcome {
            Outcome::Running { ready } => {
                let started = old
                    .and_then(|o| get_str(o, &["state", "running", "startedAt"]))
                    .unwrap_or(&now)
                    .to_string();
                if !ready {
                    unready.push(c.name.clone());
                }
                json!({
                    "name": c.name, "image": image, "imageID": image_id, "containerID": container_id,
                    "ready": ready, "started": true, "restartCount": 0,
                    "state": {"running": {"startedAt": started}},
                    "lastState": {},
                })
            }
            Outcome::PullFailed(message) => {
                pending = true;
                unready.push(c.name.clone());
                sim.event_once(
                    pod,
                    &c.name,
                    "Failed",
                    &format!("Failed to pull image \"{image}\": {message}"),
                )
                .await;
                json!({
                    "name": c.name, "image": image, "imageID": "",
                    "ready": false, "started": false, "restartCount": 0,
                    "state": {"waiting": {"reason": "ErrImagePull", "message": message}},
                    "lastState": {},
                })
            }
            Outcome::CrashLoop => {
                unready.push(c.name.clone());
                let (last_started, last_finished) = match old.and_then(|o| get(o, &["lastState", "terminated"])) {
                    Some(t)
                        if old.and_then(|o| o.get("restartCount")).and_then(Value::as_i64) == Some(restarts as i64) =>
                    {
                        (
                            get_str(t, &["startedAt"]).unwrap_or(&now).to_string(),
                            get_str(t, &["finishedAt"]).unwrap_or(&now).to_string(),
                        )
                    }
                    _ => (now.clone(), now.clone()),
                };
                sim.event_once(pod, &c.name, "BackOff", "Back-off restarting failed container")
                    .await;
                json!({
                    "name": c.name, "image": image, "imageID": image_id, "containerID": container_id,
                    "ready": false, "started": false, "restartCount": restarts,
                    "state": {"waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": format!("back-off 10s restarting failed container={} pod={name}_{ns}({uid})", c.name),
                    }},
                    "lastState": {"terminated": {
                        "exitCode": 1, "reason": "Error", "startedAt": last_started, "finishedAt": last_finished,
                        "containerID": container_id,
                    }},
                })
            }
        };
        statuses.push(status);
    }

    let all_ready = unready.is_empty();
    let not_ready_msg = format!("containers with unready status: [{}]", unready.join(" "));
    let condition = |ty: &str, ok: bool, reason: &str, message: &str| {
        let status = if ok { "True" } else { "False" };
        let old = existing
            .get("conditions")
            .and_then(Value::as_array)
            .and_then(|l| l.iter().find(|c| c.get("type").and_then(Value::as_str) == Some(ty)));
        let transition = old
            .filter(|o| o.get("status").and_then(Value::as_str) == Some(status))
            .and_then(|o| get_str(o, &["lastTransitionTime"]))
            .unwrap_or(&now)
            .to_string();
        let mut c = Map::new();
        c.insert("type".into(), ty.into());
        c.insert("status".into(), status.into());
        c.insert("lastTransitionTime".into(), transition.into());
        if !ok {
            c.insert("reason".into(), reason.into());
            c.insert("message".into(), message.into());
        }
        Value::Object(c)
    };
    let mut conditions = vec![
        condition("Initialized", true, "", ""),
        condition("Ready", all_ready, "ContainersNotReady", &not_ready_msg),
        condition("ContainersReady", all_ready, "ContainersNotReady", &not_ready_msg),
        condition("PodScheduled", true, "", ""),
    ];
    // Conditions set by others (readiness gates) are kept as they are.
    const OURS: [&str; 4] = ["Initialized", "Ready", "ContainersReady", "PodScheduled"];
    for c in existing
        .get("conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if !c.get("type").and_then(Value::as_str).is_some_and(|t| OURS.contains(&t)) {
            conditions.push(c.clone());
        }
    }

    let mut status = json!({
        "phase": if pending { "Pending" } else { "Running" },
        "hostIP": sim.node_ip,
        "startTime": start_time,
        "conditions": conditions,
        "containerStatuses": statuses,
    });
    if let Some(ip) = pod_ip {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
    }
    if !init_statuses.is_empty() {
        status["initContainerStatuses"] = json!(init_statuses);
    }
    (status, retry)
}

/// `imageID` as containerd reports it: `host/repo@sha256:...` (a made-up but stable digest
/// when no registry was asked).
fn image_id(c: &Container, digest: Option<&str>) -> String {
    let image = c.image.as_deref().unwrap_or_default();
    let parsed = ImageRef::parse(image);
    let name = parsed.as_ref().map(ImageRef::name).unwrap_or_else(|| image.to_string());
    let digest = match (digest, &parsed) {
        (Some(d), _) => d.to_string(),
        (None, Some(p)) if p.is_digest => p.reference.clone(),
        _ => format!("sha256:{}", hex_digest(&[image])),
    };
    format!("{name}@{digest}")
}

/// Checks the container's image in its registry when that registry is one of ours.
/// Ok(digest) when it may start, Err(message) for `ErrImagePull`.
async fn pull(sim: &Sim, pod: &Pod, c: &Container) -> Result<Option<String>, String> {
    let image = c.image.as_deref().unwrap_or_default();
    let Some(parsed) = ImageRef::parse(image) else {
        return Err(format!(
            "rpc error: code = Unknown desc = failed to pull and unpack image \"{image}\": \
             failed to resolve reference \"{image}\": invalid reference format"
        ));
    };
    if !sim.registries.iter().any(|r| r == &parsed.host) {
        return Ok(None);
    }
    let auth = sim.pull_secret_auth(pod, &parsed.host).await;
    let cache_key = (parsed.full(), auth.clone());
    if let Some((check, at)) = sim.pulls.lock().unwrap().get(&cache_key) {
        let ttl = if matches!(check, PullCheck::Found { .. }) {
            FOUND_TTL
        } else {
            MISSING_TTL
        };
        if at.elapsed() < ttl {
            return match check {
                PullCheck::Found { digest } => Ok(digest.clone()),
                PullCheck::Failed { message } => Err(message.clone()),
            };
        }
    }
    let check = image::check(&parsed, auth.as_deref(), Duration::from_secs(5)).await;
    sim.pulls
        .lock()
        .unwrap()
        .insert(cache_key, (check.clone(), Instant::now()));
    match check {
        PullCheck::Found { digest } => Ok(digest),
        PullCheck::Failed { message } => Err(message),
    }
}

impl Sim {
    /// Basic credentials for `host` from the pod's image pull secrets
    /// (`kubernetes.io/dockerconfigjson` or `kubernetes.io/dockercfg`), as base64 `user:password`.
    async fn pull_secret_auth(&self, pod: &Pod, host: &str) -> Option<String> {
        use base64::Engine as _;
        let ns = pod.metadata.namespace.as_deref()?;
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        for r in pod.spec.as_ref()?.image_pull_secrets.iter().flatten() {
            let Ok(Some(secret)) = secrets.get_opt(&r.name).await else {
                continue;
            };
            let data = secret.data.unwrap_or_default();
            let auths = if let Some(b) = data.get(".dockerconfigjson") {
                serde_json::from_slice::<Value>(&b.0)
                    .ok()
                    .and_then(|v| v.get("auths").cloned())
            } else if let Some(b) = data.get(".dockercfg") {
                serde_json::from_slice::<Value>(&b.0).ok()
            } else {
                None
            };
            let Some(Value::Object(auths)) = auths else { continue };
            for (server, entry) in auths {
                let server = server.trim_start_matches("https://").trim_start_matches("http://");
                let server = server.split('/').next().unwrap_or_default();
                if server != host {
                    continue;
                }
                if let Some(a) = entry.get("auth").and_then(Value::as_str) {
                    return Some(a.to_string());
                }
                if let (Some(u), Some(p)) = (
                    entry.get("username").and_then(Value::as_str),
                    entry.get("password").and_then(Value::as_str),
                ) {
                    return Some(base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")));
                }
            }
        }
        None
    }

    /// A Warning event like the kubelet's, once per pod, container and reason.
    async fn event_once(&self, pod: &Pod, container: &str, reason: &str, message: &str) {
        let (Some(ns), Some(name), Some(uid)) = (
            pod.metadata.namespace.as_deref(),
            pod.metadata.name.as_deref(),
            pod.metadata.uid.as_deref(),
        ) else {
            return;
        };
        if !self
            .events
            .lock()
            .unwrap()
            .insert((uid.to_string(), container.to_string(), reason.to_string()))
        {
            return;
        }
        let now = now_time();
        let event: Result<Event, _> = serde_json::from_value(json!({
            "metadata": {"generateName": format!("{name}."), "namespace": ns},
            "involvedObject": {
                "apiVersion": "v1", "kind": "Pod", "namespace": ns, "name": name, "uid": uid,
                "fieldPath": format!("spec.containers{{{container}}}"),
            },
            "reason": reason,
            "message": message,
            "type": "Warning",
            "source": {"component": "kubelet", "host": self.node},
            "reportingComponent": "kubelet",
            "reportingInstance": self.node,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }));
        let Ok(event) = event else { return };
        let events: Api<Event> = Api::namespaced(self.client.clone(), ns);
        if let Err(e) = events.create(&PostParams::default(), &event).await {
            tracing::debug!(pod = %format!("{ns}/{name}"), error = %e, "could not record event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_by_node_selector_and_daemonset_affinity() {
        let labels = BTreeMap::from([("kubernetes.io/os".to_string(), "linux".to_string())]);
        let spec = |v: Value| -> PodSpec { serde_json::from_value(v).unwrap() };
        assert!(fits(&spec(json!({"containers": []})), "n1", &labels));
        assert!(fits(
            &spec(json!({"containers": [], "nodeSelector": {"kubernetes.io/os": "linux"}})),
            "n1",
            &labels
        ));
        assert!(!fits(
            &spec(json!({"containers": [], "nodeSelector": {"disk": "ssd"}})),
            "n1",
            &labels
        ));
        let ds = |node: &str| {
            spec(
                json!({"containers": [], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}],
                }}}}),
            )
        };
        assert!(fits(&ds("n1"), "n1", &labels));
        assert!(!fits(&ds("n2"), "n1", &labels));
    }

    #[test]
    fn contains_compares_only_wanted_fields() {
        let have = json!({"phase": "Running", "qosClass": "BestEffort", "conditions": [{"type": "Ready", "x": 1}]});
        assert!(contains(
            &have,
            &json!({"phase": "Running", "conditions": [{"type": "Ready"}]})
        ));
        assert!(!contains(&have, &json!({"phase": "Pending"})));
        assert!(!contains(
            &have,
            &json!({"conditions": [{"type": "Ready"}, {"type": "PodScheduled"}]})
        ));
        assert!(!contains(&Value::Null, &json!({"phase": "Running"})));
    }
}
