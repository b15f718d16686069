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

pub fn diff_objects(live: Option<&serde_json::Value>, desired: &serde_json::Value) -> ObjectDiff {
    let Some(live) = live else { return ObjectDiff::Create };
    let mut changes = vec![];
    walk("", Some(live), Some(desired), &mut changes);
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
