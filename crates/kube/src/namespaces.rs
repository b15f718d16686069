//! Namespaces Prism makes for projects, and the Ingresses of the whole
//! cluster (to refuse a host another application already serves).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, ListParams, ObjectMeta, PostParams};

use crate::cluster::Cluster;
use crate::error::{KubeError, Result};

/// What Prism found when it made sure a namespace exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceState {
    /// It was there, with these labels.
    Existing(BTreeMap<String, String>),
    /// Prism created it now, with the labels asked for.
    Created,
}

impl Cluster {
    /// The namespace's labels, or None when it does not exist.
    pub async fn namespace_labels(&self, name: &str) -> Result<Option<BTreeMap<String, String>>> {
        let api: Api<Namespace> = Api::all(self.client());
        let ns = api
            .get_opt(name)
            .await
            .map_err(|e| KubeError::from_kube(&format!("Namespace/{name}"), e))?;
        Ok(ns.map(|n| n.metadata.labels.unwrap_or_default()))
    }

    /// Makes sure the namespace exists, creating it with `labels` when it
    /// does not. A token that may not read or create namespaces gets
    /// `Forbidden` (the caller says which namespace to make by hand).
    pub async fn ensure_namespace(&self, name: &str, labels: &BTreeMap<String, String>) -> Result<NamespaceState> {
        if let Some(existing) = self.namespace_labels(name).await? {
            return Ok(NamespaceState::Existing(existing));
        }
        let api: Api<Namespace> = Api::all(self.client());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(labels.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => Ok(NamespaceState::Created),
            // Created meanwhile (another deploy of the project): read its labels.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(NamespaceState::Existing(
                self.namespace_labels(name).await?.unwrap_or_default(),
            )),
            Err(e) => Err(KubeError::from_kube(&format!("Namespace/{name}"), e)),
        }
    }

    /// Every Ingress of the cluster, in all namespaces, in the newest
    /// version the cluster serves (Kubernetes 1.20 serves networking.k8s.io/v1
    /// and v1beta1 for the same objects, so one list covers both).
    pub async fn list_ingresses(&self) -> Result<Vec<serde_json::Value>> {
        for api_version in [
            "networking.k8s.io/v1",
            "networking.k8s.io/v1beta1",
            "extensions/v1beta1",
        ] {
            if !self.serves(api_version).await? {
                continue;
            }
            let (ar, _) = self.resolve(api_version, "Ingress").await?;
            let api: Api<DynamicObject> = Api::all_with(self.client(), &ar);
            let list = api
                .list(&ListParams::default())
                .await
                .map_err(|e| KubeError::from_kube("Ingresses", e))?;
            return list
                .items
                .into_iter()
                .map(|o| serde_json::to_value(o).map_err(|e| KubeError::Config(e.to_string())))
                .collect();
        }
        Ok(vec![])
    }
}
