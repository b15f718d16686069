use prism_api::users as api;
use prism_store::users as store;

use super::ToApi;

/// The password hash stays behind.
impl ToApi for store::User {
    type Api = api::User;
    fn to_api(self) -> api::User {
        api::User {
            id: self.id,
            username: self.username,
            display_name: self.display_name,
            is_admin: self.is_admin != 0,
            disabled: self.disabled != 0,
            created_at: self.created_at,
            source: self.source,
        }
    }
}
