use prism_api::app_secrets as api;
use prism_store::app_secrets as store;

use super::ToApi;

/// The row ids stay behind (the project, application and environment are named).
impl ToApi for store::AppSecret {
    type Api = api::AppSecret;
    fn to_api(self) -> api::AppSecret {
        api::AppSecret {
            project: self.project,
            application: self.application,
            environment: self.environment,
            name: self.name,
            source: self.source,
            delivery: self.delivery,
            ref_secret: self.ref_secret,
            ref_key: self.ref_key,
            version: self.version,
            updated_by: self.updated_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}
