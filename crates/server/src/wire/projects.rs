use prism_api::projects as api;
use prism_store::projects as store;

use super::ToApi;

impl ToApi for store::Project {
    type Api = api::Project;
    fn to_api(self) -> api::Project {
        api::Project {
            id: self.id,
            name: self.name,
            description: self.description,
            created_at: self.created_at,
        }
    }
}

impl ToApi for store::Membership {
    type Api = api::Membership;
    fn to_api(self) -> api::Membership {
        api::Membership {
            project: self.project,
            username: self.username,
            role: self.role,
            created_at: self.created_at,
        }
    }
}
