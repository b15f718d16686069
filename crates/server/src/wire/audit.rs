use prism_api::audit as api;
use prism_store::audit as store;

use super::raw_json::raw_json;
use super::ToApi;

impl ToApi for store::AuditEvent {
    type Api = api::AuditEvent;
    fn to_api(self) -> api::AuditEvent {
        api::AuditEvent {
            id: self.id,
            at: self.at,
            actor: self.actor,
            address: self.address,
            action: self.action,
            record_type: self.record_type,
            record_id: self.record_id,
            detail: raw_json(self.detail),
        }
    }
}
