use prism_api::tokens as api;
use prism_store::tokens as store;

use super::ToApi;

impl ToApi for store::ApiToken {
    type Api = api::ApiToken;
    fn to_api(self) -> api::ApiToken {
        api::ApiToken {
            id: self.id,
            user_id: self.user_id,
            name: self.name,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            last_used_at: self.last_used_at,
        }
    }
}
