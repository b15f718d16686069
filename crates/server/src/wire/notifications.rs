use prism_api::notifications as api;
use prism_store::notifications as store;

use super::ToApi;

/// The row ids stay behind; the events go as a list.
impl ToApi for store::Subscription {
    type Api = api::Subscription;
    fn to_api(self) -> api::Subscription {
        api::Subscription {
            events: self.events().into_iter().map(str::to_owned).collect(),
            project: self.project,
            channel: self.channel,
            channel_kind: self.channel_kind,
            language: self.lang,
            updated_by: self.updated_by,
            updated_at: self.updated_at,
        }
    }
}

/// The channel's row id and the notice as sent stay behind.
impl ToApi for store::Delivery {
    type Api = api::Delivery;
    fn to_api(self) -> api::Delivery {
        api::Delivery {
            id: self.id,
            delivery: self.uid,
            channel: self.channel,
            project: self.project,
            event: self.event,
            language: self.language,
            status: self.status,
            response_code: self.response_code,
            attempts: self.attempts,
            next_retry_at: self.next_retry_at,
            error: self.error,
            created_at: self.created_at,
            updated_at: self.updated_at,
            attempt_log: self.attempt_log.to_api(),
        }
    }
}

impl ToApi for store::Attempt {
    type Api = api::Attempt;
    fn to_api(self) -> api::Attempt {
        api::Attempt {
            attempt: self.attempt,
            at: self.at,
            duration_ms: self.duration_ms,
            delivered: self.delivered != 0,
            response_code: self.response_code,
            error: self.error,
        }
    }
}
