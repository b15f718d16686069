use prism_api::board as api;
use prism_store::slots as store;

use super::ToApi;

impl ToApi for store::BoardCell {
    type Api = api::BoardCell;
    fn to_api(self) -> api::BoardCell {
        api::BoardCell {
            application: self.application,
            environment: self.environment,
            current_release: self.current_release,
            incoming_release: self.incoming_release,
            incoming_state: self.incoming_state,
            held_by: self.held_by,
            hold_release: self.hold_release,
            hold_since: self.hold_since,
            hold_note: self.hold_note,
            hold_expires_at: self.hold_expires_at,
        }
    }
}
