use prism_api::jobs as api;
use prism_store::jobs as store;

use super::ToApi;

/// The payload column is JSON; an unreadable one shows as null.
impl ToApi for store::Job {
    type Api = api::Job;
    fn to_api(self) -> api::Job {
        api::Job {
            id: self.id,
            kind: self.kind,
            payload: serde_json::from_str(&self.payload).unwrap_or(serde_json::Value::Null),
            state: self.state,
            dedup_key: self.dedup_key,
            attempts: self.attempts,
            max_attempts: self.max_attempts,
            run_at: self.run_at,
            lease_owner: self.lease_owner,
            lease_expires_at: self.lease_expires_at,
            last_error: self.last_error,
            created_at: self.created_at,
            updated_at: self.updated_at,
            finished_at: self.finished_at,
            failures: self.failures,
            abandoned_in_a_row: self.abandoned_in_a_row,
            failure_kind: self.failure_kind,
        }
    }
}

impl ToApi for store::JobAttempt {
    type Api = api::JobAttempt;
    fn to_api(self) -> api::JobAttempt {
        api::JobAttempt {
            job_id: self.job_id,
            attempt: self.attempt,
            instance: self.instance,
            started_at: self.started_at,
            finished_at: self.finished_at,
            outcome: self.outcome,
            error: self.error,
        }
    }
}
