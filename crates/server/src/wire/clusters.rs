use prism_api::clusters as api;
use prism_store::clusters as store;

use super::ToApi;

/// The sealed token stays behind.
impl ToApi for store::Cluster {
    type Api = api::Cluster;
    fn to_api(self) -> api::Cluster {
        api::Cluster {
            id: self.id,
            name: self.name,
            api_url: self.api_url,
            ca_cert: self.ca_cert,
            insecure_skip_tls_verify: self.insecure_skip_tls_verify != 0,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}
