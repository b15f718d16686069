//! The simulated Node: registered once, then its status and its Lease in
//! `kube-node-lease` are renewed like a kubelet's heartbeat.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};

use crate::{is_status, now_micro, now_time};

#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub ip: String,
    pub pod_cidr: String,
    pub cpu: String,
    pub memory: String,
    pub pods: String,
    pub kubelet_version: String,
}

impl NodeSpec {
    /// The Node's labels (pods' nodeSelectors are matched against them).
    pub fn labels(&self) -> BTreeMap<String, String> {
        [
            ("kubernetes.io/hostname", self.name.as_str()),
            ("kubernetes.io/os", "linux"),
            ("kubernetes.io/arch", "amd64"),
            ("beta.kubernetes.io/os", "linux"),
            ("beta.kubernetes.io/arch", "amd64"),
            ("type", "prism-kube-sim"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn status(&self, transition: &str) -> Value {
        let now = now_time();
        let resources = json!({
            "cpu": self.cpu,
            "memory": self.memory,
            "pods": self.pods,
            "ephemeral-storage": "100Gi",
        });
        let cond = |ty: &str, status: &str, reason: &str, message: &str| {
            json!({
                "type": ty, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": now, "lastTransitionTime": transition,
            })
        };
        json!({
            "capacity": resources,
            "allocatable": resources,
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status (simulated by prism-kube-sim)"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": self.ip},
                {"type": "Hostname", "address": self.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": "prism-kube-sim",
                "systemUUID": "prism-kube-sim",
                "bootID": "prism-kube-sim",
                "kernelVersion": "simulated",
                "osImage": "prism-kube-sim",
                "containerRuntimeVersion": "containerd://simulated",
                "kubeletVersion": self.kubelet_version,
                "kubeProxyVersion": self.kubelet_version,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        })
    }
}

/// Creates the Node (or takes over an existing one of that name) and reports it Ready.
pub async fn register(client: &Client, spec: &NodeSpec) -> kube::Result<String> {
    let nodes: Api<Node> = Api::all(client.clone());
    let labels = json!(spec.labels());
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": spec.name,
            "labels": labels,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"podCIDR": spec.pod_cidr, "podCIDRs": [spec.pod_cidr]},
    }))
    .expect("a valid Node");
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(e) if is_status(&e, 409) => {
            let patch = json!({"metadata": {"labels": labels}});
            nodes
                .patch(&spec.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        Err(e) => return Err(e),
    }
    let transition = now_time();
    nodes
        .patch_status(
            &spec.name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": spec.status(&transition)})),
        )
        .await?;
    renew_lease(client, &spec.name).await?;
    Ok(transition)
}

async fn renew_lease(client: &Client, node: &str) -> kube::Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let patch = json!({"spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": now_micro()}});
    match leases.patch(node, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        Err(e) if is_status(&e, 404) => {
            let nodes: Api<Node> = Api::all(client.clone());
            let uid = nodes.get(node).await?.metadata.uid.unwrap_or_default();
            let lease: Lease = serde_json::from_value(json!({
                "metadata": {
                    "name": node,
                    "namespace": "kube-node-lease",
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": uid}],
                },
                "spec": patch["spec"],
            }))
            .expect("a valid Lease");
            match leases.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(()),
                Err(e) if is_status(&e, 409) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Renews the node status and Lease every `every` until the process ends; re-registers the
/// Node when somebody deleted it.
pub async fn heartbeat(client: Client, spec: NodeSpec, mut transition: String, every: Duration) {
    let nodes: Api<Node> = Api::all(client.clone());
    loop {
        tokio::time::sleep(every).await;
        let status = json!({"status": spec.status(&transition)});
        let result = match nodes
            .patch_status(&spec.name, &PatchParams::default(), &Patch::Merge(&status))
            .await
        {
            Ok(_) => renew_lease(&client, &spec.name).await,
            Err(e) if is_status(&e, 404) => {
                tracing::warn!(node = %spec.name, "node was deleted: registering it again");
                register(&client, &spec).await.map(|t| transition = t)
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(node = %spec.name, error = %e, "node heartbeat failed");
        }
    }
}
