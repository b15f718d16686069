use prism_api::webhooks as api;
use prism_domain::ReleaseId;
use prism_store::webhooks as store;

use super::ToApi;

/// The row ids, the sealed secret and the stored rules stay behind (the
/// views carry the rules, read).
impl ToApi for store::Webhook {
    type Api = api::Webhook;
    fn to_api(self) -> api::Webhook {
        api::Webhook {
            application: self.application,
            public_id: self.public_id,
            forge: self.forge,
            enabled: self.enabled != 0,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            secret_set_at: self.secret_set_at,
        }
    }
}

impl ToApi for store::ProjectWebhook {
    type Api = api::ProjectWebhook;
    fn to_api(self) -> api::ProjectWebhook {
        api::ProjectWebhook {
            project: self.project,
            public_id: self.public_id,
            forge: self.forge,
            enabled: self.enabled != 0,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            secret_set_at: self.secret_set_at,
        }
    }
}

/// The release as its id is written (`r7`).
impl ToApi for store::Delivery {
    type Api = api::Delivery;
    fn to_api(self) -> api::Delivery {
        api::Delivery {
            delivery_id: self.delivery_id,
            event: self.event,
            git_ref: self.git_ref,
            commit_sha: self.commit_sha,
            outcome: self.outcome,
            detail: self.detail,
            release_id: self.release_id.map(|id| ReleaseId::from_seq(id).to_string()),
            received_at: self.received_at,
        }
    }
}
