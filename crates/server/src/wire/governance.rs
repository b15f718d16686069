use prism_api::governance as api;
use prism_store::governance as store;

use super::ToApi;

impl ToApi for store::PolicySource {
    type Api = api::PolicySource;
    fn to_api(self) -> api::PolicySource {
        match self {
            store::PolicySource::Project => api::PolicySource::Project,
            store::PolicySource::Environment => api::PolicySource::Environment,
            store::PolicySource::Implicit => api::PolicySource::Implicit,
        }
    }
}

/// Whether it approves is told by the list it is in (approvals or rejections).
impl ToApi for store::VoteRecord {
    type Api = api::VoteRecord;
    fn to_api(self) -> api::VoteRecord {
        api::VoteRecord {
            username: self.username,
            comment: self.comment,
            at: self.at,
        }
    }
}
