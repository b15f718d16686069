use prism_api::ops_tools as api;
use prism_store::ops_tools as store;

use super::ToApi;

/// The roles column stays behind (a tool's view lists them as words).
impl ToApi for store::OpsTool {
    type Api = api::OpsTool;
    fn to_api(self) -> api::OpsTool {
        api::OpsTool {
            cluster: self.cluster,
            name: self.name,
            kind: self.kind,
            upstream: self.upstream,
            strip_prefix: self.strip_prefix != 0,
            description: self.description,
            updated_by: self.updated_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}
