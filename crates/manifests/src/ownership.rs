//! What rendered objects reach beyond themselves: the Secrets, ConfigMaps
//! and ServiceAccounts their pods use, and the Ingress hosts they claim.
//! Pure: the server decides with the cluster and its store whether the
//! application owns each of them (see `services/isolation.rs`).

use serde_json::Value;

use crate::objects::ObjectRef;

/// A Secret, ConfigMap or ServiceAccount named by a pod spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The object whose pod spec names it.
    pub from: ObjectRef,
    pub template: String,
    /// Where, e.g. `spec.template.spec.volumes[0].secret.secretName`.
    pub field: String,
    /// `Secret`, `ConfigMap` or `ServiceAccount`.
    pub kind: &'static str,
    pub name: String,
    /// The namespace it is looked up in: the pod's.
    pub namespace: Option<String>,
}

/// Where each workload kind keeps its pod spec.
pub fn pod_spec_pointer(kind: &str) -> Option<&'static str> {
    match kind {
        "Pod" => Some("/spec"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" | "ReplicationController" => {
            Some("/spec/template/spec")
        }
        "CronJob" => Some("/spec/jobTemplate/spec/template/spec"),
        "PodTemplate" => Some("/template/spec"),
        _ => None,
    }
}

fn dotted(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

fn items(v: Option<&Value>) -> impl Iterator<Item = (usize, &Value)> {
    v.and_then(Value::as_array).into_iter().flatten().enumerate()
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Every Secret, ConfigMap and ServiceAccount the object's pod spec names,
/// with the field path naming it.
pub fn references(from: &ObjectRef, template: &str, object: &Value) -> Vec<Reference> {
    let Some(pointer) = pod_spec_pointer(&from.kind) else {
        return vec![];
    };
    let Some(spec) = object.pointer(pointer) else {
        return vec![];
    };
    let base = dotted(pointer);
    let mut out = vec![];
    let mut push = |field: String, kind: &'static str, name: &str| {
        out.push(Reference {
            from: from.clone(),
            template: template.to_owned(),
            field,
            kind,
            name: name.to_owned(),
            namespace: from.namespace.clone(),
        })
    };
    for key in ["serviceAccountName", "serviceAccount"] {
        if let Some(n) = str_at(spec, key) {
            push(format!("{base}.{key}"), "ServiceAccount", n);
        }
    }
    for (i, s) in items(spec.get("imagePullSecrets")) {
        if let Some(n) = str_at(s, "name") {
            push(format!("{base}.imagePullSecrets[{i}].name"), "Secret", n);
        }
    }
    for (i, v) in items(spec.get("volumes")) {
        let at = format!("{base}.volumes[{i}]");
        if let Some(n) = v.pointer("/secret/secretName").and_then(Value::as_str) {
            push(format!("{at}.secret.secretName"), "Secret", n);
        }
        if let Some(n) = v.pointer("/configMap/name").and_then(Value::as_str) {
            push(format!("{at}.configMap.name"), "ConfigMap", n);
        }
        for (j, src) in items(v.pointer("/projected/sources")) {
            let at = format!("{at}.projected.sources[{j}]");
            if let Some(n) = src.pointer("/secret/name").and_then(Value::as_str) {
                push(format!("{at}.secret.name"), "Secret", n);
            }
            if let Some(n) = src.pointer("/configMap/name").and_then(Value::as_str) {
                push(format!("{at}.configMap.name"), "ConfigMap", n);
            }
        }
        // Volume plugins that read credentials from a Secret of the pod's namespace.
        for plugin in ["cephfs", "cinder", "flexVolume", "iscsi", "rbd", "scaleIO", "storageos"] {
            if let Some(n) = v
                .get(plugin)
                .and_then(|p| p.pointer("/secretRef/name"))
                .and_then(Value::as_str)
            {
                push(format!("{at}.{plugin}.secretRef.name"), "Secret", n);
            }
        }
        if let Some(n) = v.pointer("/azureFile/secretName").and_then(Value::as_str) {
            push(format!("{at}.azureFile.secretName"), "Secret", n);
        }
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for (i, c) in items(spec.get(list)) {
            let at = format!("{base}.{list}[{i}]");
            for (j, e) in items(c.get("envFrom")) {
                if let Some(n) = e.pointer("/secretRef/name").and_then(Value::as_str) {
                    push(format!("{at}.envFrom[{j}].secretRef.name"), "Secret", n);
                }
                if let Some(n) = e.pointer("/configMapRef/name").and_then(Value::as_str) {
                    push(format!("{at}.envFrom[{j}].configMapRef.name"), "ConfigMap", n);
                }
            }
            for (j, e) in items(c.get("env")) {
                if let Some(n) = e.pointer("/valueFrom/secretKeyRef/name").and_then(Value::as_str) {
                    push(format!("{at}.env[{j}].valueFrom.secretKeyRef.name"), "Secret", n);
                }
                if let Some(n) = e.pointer("/valueFrom/configMapKeyRef/name").and_then(Value::as_str) {
                    push(format!("{at}.env[{j}].valueFrom.configMapKeyRef.name"), "ConfigMap", n);
                }
            }
        }
    }
    out
}

/// The hosts an Ingress (networking.k8s.io/v1, v1beta1 or extensions/v1beta1)
/// claims: its rules' hosts and its TLS hosts, lowercased.
pub fn ingress_hosts(object: &Value) -> Vec<String> {
    if object.get("kind").and_then(Value::as_str) != Some("Ingress") {
        return vec![];
    }
    let mut hosts: Vec<String> = items(object.pointer("/spec/rules"))
        .filter_map(|(_, r)| str_at(r, "host"))
        .chain(
            items(object.pointer("/spec/tls")).flat_map(|(_, t)| items(t.get("hosts")).filter_map(|(_, h)| h.as_str())),
        )
        .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dep() -> ObjectRef {
        ObjectRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("shared".into()),
            name: "blog-web".into(),
        }
    }

    #[test]
    fn finds_every_reference_with_its_field_path() {
        let o = json!({"spec": {"template": {"spec": {
            "serviceAccountName": "robot",
            "imagePullSecrets": [{"name": "pull"}],
            "volumes": [
                {"name": "a", "secret": {"secretName": "shop-db"}},
                {"name": "b", "configMap": {"name": "cfg"}},
                {"name": "c", "projected": {"sources": [{"secret": {"name": "p1"}}, {"configMap": {"name": "p2"}}]}}
            ],
            "containers": [{
                "envFrom": [{"secretRef": {"name": "ef"}}, {"configMapRef": {"name": "efc"}}],
                "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "sk", "key": "k"}}},
                        {"name": "Y", "valueFrom": {"configMapKeyRef": {"name": "ck", "key": "k"}}},
                        {"name": "Z", "value": "plain"}]
            }]
        }}}});
        let got: Vec<(String, &str, String)> = references(&dep(), "t.yaml", &o)
            .into_iter()
            .map(|r| (r.field, r.kind, r.name))
            .collect();
        let want = [
            ("spec.template.spec.serviceAccountName", "ServiceAccount", "robot"),
            ("spec.template.spec.imagePullSecrets[0].name", "Secret", "pull"),
            ("spec.template.spec.volumes[0].secret.secretName", "Secret", "shop-db"),
            ("spec.template.spec.volumes[1].configMap.name", "ConfigMap", "cfg"),
            (
                "spec.template.spec.volumes[2].projected.sources[0].secret.name",
                "Secret",
                "p1",
            ),
            (
                "spec.template.spec.volumes[2].projected.sources[1].configMap.name",
                "ConfigMap",
                "p2",
            ),
            (
                "spec.template.spec.containers[0].envFrom[0].secretRef.name",
                "Secret",
                "ef",
            ),
            (
                "spec.template.spec.containers[0].envFrom[1].configMapRef.name",
                "ConfigMap",
                "efc",
            ),
            (
                "spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.name",
                "Secret",
                "sk",
            ),
            (
                "spec.template.spec.containers[0].env[1].valueFrom.configMapKeyRef.name",
                "ConfigMap",
                "ck",
            ),
        ];
        let want: Vec<(String, &str, String)> = want
            .iter()
            .map(|(f, k, n)| (f.to_string(), *k, n.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn cronjob_paths_and_other_kinds() {
        let mut r = dep();
        r.kind = "CronJob".into();
        let o = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"serviceAccountName": "x"}}}}}});
        assert_eq!(
            references(&r, "t", &o)[0].field,
            "spec.jobTemplate.spec.template.spec.serviceAccountName"
        );
        r.kind = "Service".into();
        assert!(references(&r, "t", &o).is_empty());
    }

    #[test]
    fn ingress_hosts_from_rules_and_tls() {
        let o = json!({"kind": "Ingress", "spec": {
            "rules": [{"host": "Shop.Example.com"}, {"http": {}}],
            "tls": [{"hosts": ["shop.example.com", "www.example.com."]}]
        }});
        assert_eq!(ingress_hosts(&o), ["shop.example.com", "www.example.com"]);
        assert!(ingress_hosts(&json!({"kind": "Service"})).is_empty());
    }
}
