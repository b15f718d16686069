use serde::{Deserialize, Serialize};

/// Identifies one object: what kubectl would print as `kind/name -n ns`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{} -n {ns}", self.kind, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// The result of rendering: each object with the template it came from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rendered {
    pub objects: Vec<RenderedObject>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenderedObject {
    pub template: String,
    pub object: serde_json::Value,
}

impl RenderedObject {
    pub fn reference(&self) -> Option<ObjectRef> {
        let o = &self.object;
        Some(ObjectRef {
            api_version: o.get("apiVersion")?.as_str()?.to_owned(),
            kind: o.get("kind")?.as_str()?.to_owned(),
            namespace: o
                .pointer("/metadata/namespace")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            name: o.pointer("/metadata/name")?.as_str()?.to_owned(),
        })
    }
}

impl Rendered {
    /// All objects as one multi-document YAML text (for review and preview).
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        for o in &self.objects {
            out.push_str(&format!("---\n# Source: {}\n", o.template));
            // JSON is valid YAML; pretty-printed it reads well in a review.
            out.push_str(&serde_json::to_string_pretty(&o.object).unwrap_or_default());
            out.push('\n');
        }
        out
    }
}
