use prism_api::environments as api;
use prism_store::environments as store;

use super::ToApi;

/// The cluster's row id stays behind (the cluster is named).
impl ToApi for store::Environment {
    type Api = api::Environment;
    fn to_api(self) -> api::Environment {
        api::Environment {
            id: self.id,
            name: self.name,
            position: self.position,
            cluster: self.cluster,
            namespace: self.namespace,
            policy: self.policy,
            rules: self.rules,
            created_at: self.created_at,
        }
    }
}

impl ToApi for store::NamespaceBinding {
    type Api = api::NamespaceBinding;
    fn to_api(self) -> api::NamespaceBinding {
        api::NamespaceBinding {
            environment: self.environment,
            project: self.project,
            namespace: self.namespace,
            created_at: self.created_at,
        }
    }
}
