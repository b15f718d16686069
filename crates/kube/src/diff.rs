//! What a deploy changes: the live object against the server-side-apply dry
//! run of the new one, field by field, with the fields operators care about
//! (image, replicas, resources) called out.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// JSON path, e.g. `spec.template.spec.containers[0].image`.
    pub path: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    /// image, replicas, resources or other.
    pub category: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ObjectDiff {
    Create,
    Update { changes: Vec<Change> },
    Unchanged,
    Prune,
}

/// Fields the server owns; they differ between any two reads and mean nothing.
const IGNORED: &[&str] = &[
    "metadata.managedFields",
    "metadata.resourceVersion",
    "metadata.generation",
    "metadata.uid",
    "metadata.creationTimestamp",
    "metadata.selfLink",
    "status",
    "metadata.annotations.deployment.kubernetes.io/revision",
];

pub const REDACTED: &str = "<redacted>";

/// Replaces the values of every Secret's `data` and `stringData` in a list of
/// planned objects (`[{"object": {...}}, ...]`) or bare objects, for showing
/// manifests to people: the stored copy keeps them for applying and rollback.
pub fn redact_secrets(objects: &mut serde_json::Value) {
    let Some(list) = objects.as_array_mut() else { return };
    for entry in list {
        let obj = if entry.get("object").is_some() {
            &mut entry["object"]
        } else {
            entry
        };
        if obj.get("kind").and_then(|k| k.as_str()) != Some("Secret") {
            continue;
        }
        for field in ["data", "stringData"] {
            if let Some(map) = obj.get_mut(field).and_then(|m| m.as_object_mut()) {
                for v in map.values_mut() {
                    *v = serde_json::Value::String(REDACTED.into());
                }
            }
        }
    }
}

pub fn diff_objects(live: Option<&serde_json::Value>, desired: &serde_json::Value) -> ObjectDiff {
    let Some(live) = live else { return ObjectDiff::Create };
    let mut changes = vec![];
    walk("", Some(live), Some(desired), &mut changes);
    if desired.get("kind").and_then(|k| k.as_str()) == Some("Secret") {
        // Say that a secret value changed, never what it was or becomes.
        for c in changes
            .iter_mut()
            .filter(|c| c.path.starts_with("data") || c.path.starts_with("stringData"))
        {
            c.before = c.before.as_ref().map(|_| serde_json::Value::String(REDACTED.into()));
            c.after = c.after.as_ref().map(|_| serde_json::Value::String(REDACTED.into()));
        }
    }
    if changes.is_empty() {
        ObjectDiff::Unchanged
    } else {
        ObjectDiff::Update { changes }
    }
}

fn category(path: &str) -> &'static str {
    if path.ends_with(".image") {
        "image"
    } else if path == "spec.replicas" {
        "replicas"
    } else if path.contains(".resources") {
        "resources"
    } else {
        "other"
    }
}

fn ignored(path: &str) -> bool {
    IGNORED.iter().any(|i| path == *i || path.starts_with(&format!("{i}.")))
}

fn walk(path: &str, a: Option<&serde_json::Value>, b: Option<&serde_json::Value>, out: &mut Vec<Change>) {
    if ignored(path) {
        return;
    }
    match (a, b) {
        (Some(serde_json::Value::Object(x)), Some(serde_json::Value::Object(y))) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(&p, x.get(k), y.get(k), out);
            }
        }
        (Some(serde_json::Value::Array(x)), Some(serde_json::Value::Array(y))) if x.len() == y.len() => {
            for (i, (xa, yb)) in x.iter().zip(y).enumerate() {
                walk(&format!("{path}[{i}]"), Some(xa), Some(yb), out);
            }
        }
        (x, y) if x != y => out.push(Change {
            path: path.to_owned(),
            before: x.cloned(),
            after: y.cloned(),
            category: category(path),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_values_never_show() {
        let live = json!({"kind": "Secret", "data": {"password": "b2xk"}});
        let new = json!({"kind": "Secret", "data": {"password": "bmV3"}});
        let ObjectDiff::Update { changes } = diff_objects(Some(&live), &new) else {
            panic!()
        };
        assert_eq!(changes[0].path, "data.password");
        assert_eq!(
            (changes[0].before.clone(), changes[0].after.clone()),
            (Some(json!(REDACTED)), Some(json!(REDACTED)))
        );
        let mut planned = json!([{"object": {"kind": "Secret", "stringData": {"k": "v"}}}, {"object": {"kind": "ConfigMap", "data": {"k": "v"}}}]);
        redact_secrets(&mut planned);
        assert_eq!(planned[0]["object"]["stringData"]["k"], REDACTED);
        assert_eq!(planned[1]["object"]["data"]["k"], "v");
    }

    #[test]
    fn categorises_and_ignores_server_fields() {
        let live = json!({"metadata": {"resourceVersion": "1", "generation": 1}, "spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": "a:1", "resources": {"limits": {"cpu": "1"}}}]}}}, "status": {"replicas": 2}});
        let new = json!({"metadata": {"resourceVersion": "2", "generation": 2}, "spec": {"replicas": 3, "template": {"spec": {"containers": [{"image": "a:2", "resources": {"limits": {"cpu": "2"}}}]}}}, "status": {}});
        let ObjectDiff::Update { changes } = diff_objects(Some(&live), &new) else {
            panic!()
        };
        let cats: Vec<(&str, &str)> = changes.iter().map(|c| (c.path.as_str(), c.category)).collect();
        assert_eq!(
            cats,
            [
                ("spec.replicas", "replicas"),
                ("spec.template.spec.containers[0].image", "image"),
                ("spec.template.spec.containers[0].resources.limits.cpu", "resources")
            ]
        );
        assert_eq!(diff_objects(Some(&live), &live), ObjectDiff::Unchanged);
        assert_eq!(diff_objects(None, &new), ObjectDiff::Create);
    }
}
