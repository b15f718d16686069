//! Imports the server, CA and bearer token of one context from a kubeconfig.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;

use crate::ops::{OpError, OpResult};

#[derive(Deserialize)]
struct Kubeconfig {
    #[serde(rename = "current-context", default)]
    current_context: Option<String>,
    #[serde(default)]
    clusters: Vec<Named<ClusterEntry>>,
    #[serde(default)]
    users: Vec<Named<UserEntry>>,
    #[serde(default)]
    contexts: Vec<Named<ContextEntry>>,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    value: T,
}

#[derive(Deserialize)]
struct ClusterEntry {
    server: String,
    #[serde(rename = "certificate-authority-data")]
    ca_data: Option<String>,
}

#[derive(Deserialize)]
struct UserEntry {
    token: Option<String>,
}

#[derive(Deserialize)]
struct ContextEntry {
    cluster: String,
    user: String,
}

#[derive(Debug)]
pub struct Imported {
    pub server: String,
    pub ca_cert: Option<String>,
    pub token: Option<String>,
}

pub fn import(text: &str, context: Option<&str>) -> OpResult<Imported> {
    let bad = |m: String| OpError::invalid("kubeconfig", m);
    let kc: Kubeconfig = serde_yaml_ng::from_str(text).map_err(|e| bad(format!("not a readable kubeconfig: {e}")))?;
    let ctx_name = context
        .map(str::to_owned)
        .or(kc.current_context.clone())
        .ok_or_else(|| OpError::invalid("context", "the kubeconfig has no current-context; name one"))?;
    let ctx = kc
        .contexts
        .iter()
        .find(|c| c.name == ctx_name)
        .ok_or_else(|| OpError::invalid("context", format!("no context {ctx_name:?} in the kubeconfig")))?;
    let cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == ctx.value.cluster)
        .ok_or_else(|| {
            bad(format!(
                "context {ctx_name:?} names cluster {:?}, which is not in the file",
                ctx.value.cluster
            ))
        })?;
    let user = kc.users.iter().find(|u| u.name == ctx.value.user).ok_or_else(|| {
        bad(format!(
            "context {ctx_name:?} names user {:?}, which is not in the file",
            ctx.value.user
        ))
    })?;
    let token = user.value.token.clone().ok_or_else(|| {
        bad(format!(
            "user {:?} has no bearer token; Prism authenticates with a token",
            user.name
        ))
    })?;
    let ca_cert = match &cluster.value.ca_data {
        Some(d) => Some(
            String::from_utf8(
                B64.decode(d.trim())
                    .map_err(|_| bad("certificate-authority-data is not base64".into()))?,
            )
            .map_err(|_| bad("certificate-authority-data is not PEM text".into()))?,
        ),
        None => None,
    };
    Ok(Imported {
        server: cluster.value.server.clone(),
        ca_cert,
        token: Some(token),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KC: &str = r#"
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: c1
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCnh4Ci0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K
users:
- name: u1
  user:
    token: abc123
- name: u2
  user:
    client-certificate-data: eHg=
contexts:
- name: dev
  context: {cluster: c1, user: u1}
- name: certs
  context: {cluster: c1, user: u2}
"#;

    #[test]
    fn imports_current_context() {
        let i = import(KC, None).unwrap();
        assert_eq!(i.server, "https://127.0.0.1:6443");
        assert_eq!(i.token.as_deref(), Some("abc123"));
        assert!(i.ca_cert.unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn explains_what_is_missing() {
        assert_eq!(import(KC, Some("nope")).unwrap_err().field_name(), Some("context"));
        assert!(import(KC, Some("certs"))
            .unwrap_err()
            .to_string()
            .contains("no bearer token"));
        assert_eq!(import("{{{", None).unwrap_err().field_name(), Some("kubeconfig"));
    }
}
