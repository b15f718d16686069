use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// API versions the target cluster serves, for kinds whose version moved
/// (Prism asks the cluster; the defaults suit Kubernetes 1.20).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiVersions {
    pub hpa: String,
}

impl Default for ApiVersions {
    fn default() -> Self {
        Self {
            hpa: "autoscaling/v2beta2".into(),
        }
    }
}

/// Everything a template may use. Serialised into the template context.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenderVars {
    pub project: String,
    pub application: String,
    pub environment: String,
    pub namespace: String,
    pub release: String,
    pub git_ref: String,
    pub commit_sha: Option<String>,
    /// The image to run: `repository@sha256:...` whenever the digest is known.
    pub image: String,
    pub image_digest: Option<String>,
    pub replicas: i64,
    pub cpu_request: String,
    pub cpu_limit: String,
    pub memory_request: String,
    pub memory_limit: String,
    pub env_vars: BTreeMap<String, String>,
    /// The application's template settings (port, health_path, ingress_host, config, autoscale ...).
    pub settings: serde_json::Value,
    pub api: ApiVersions,
    /// Where each secret's value is (a Secret and key), never the value.
    #[serde(default)]
    pub secrets: Vec<SecretRef>,
}

/// A secret as templates see it: the Kubernetes Secret and key holding its
/// value, and how the container receives it. Prism renders the Secret itself
/// (or it exists already); templates only ever reference it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRef {
    /// The variable or file name the container sees.
    pub name: String,
    /// The Secret's name in the namespace.
    pub secret: String,
    /// Its key.
    pub key: String,
    /// `env` or `file`.
    pub delivery: String,
}

/// Where file secrets are mounted unless the application's settings say
/// otherwise (`secret_files_path`).
pub const DEFAULT_SECRET_FILES_PATH: &str = "/etc/prism/secrets";

impl RenderVars {
    /// Labels Prism puts on every object it applies; pruning only ever touches
    /// objects carrying Prism's labels for this application and environment.
    pub fn ownership_labels(&self) -> BTreeMap<String, String> {
        let mut l = self.selector_labels();
        l.insert("app.kubernetes.io/name".into(), self.application.clone());
        l.insert("app.kubernetes.io/managed-by".into(), "prism".into());
        l.insert("prism.io/release".into(), self.release.clone());
        l
    }

    /// Labels that stay the same from release to release (selectors).
    pub fn selector_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("prism.io/application".to_owned(), self.application.clone()),
            ("prism.io/environment".to_owned(), self.environment.clone()),
        ])
    }

    pub(crate) fn context(&self) -> serde_json::Value {
        let port = self.settings.get("port").cloned().unwrap_or(serde_json::json!(8080));
        serde_json::json!({
            "app": {"name": self.application, "project": self.project},
            "env": {"name": self.environment, "namespace": self.namespace},
            "release": {"id": self.release, "git_ref": self.git_ref, "commit_sha": self.commit_sha},
            "image": {"ref": self.image, "digest": self.image_digest},
            "replicas": self.replicas,
            "port": port,
            "resources": {
                "cpu_request": self.cpu_request, "cpu_limit": self.cpu_limit,
                "memory_request": self.memory_request, "memory_limit": self.memory_limit,
            },
            "env_vars": self.env_vars,
            "labels": self.ownership_labels(),
            "selector_labels": self.selector_labels(),
            "settings": self.settings,
            "api": self.api,
            "secrets": self.secrets,
            "secret_env": self.secrets.iter().filter(|s| s.delivery == "env").collect::<Vec<_>>(),
            "secret_files": self.secrets.iter().filter(|s| s.delivery == "file").collect::<Vec<_>>(),
            "secret_files_path": self.settings.get("secret_files_path").and_then(|p| p.as_str()).unwrap_or(DEFAULT_SECRET_FILES_PATH),
        })
    }
}
