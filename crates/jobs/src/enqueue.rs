//! Enqueueing a typed job inside the caller's transaction, so a state
//! change and the job that advances it are written together.

use prism_store::jobs::{self, NewJob};
use prism_store::AnyConnection;

use crate::Job;

/// Enqueues `job` to run now; returns its id, or None when a job with its
/// deduplication key exists already.
pub async fn enqueue<J: Job>(c: &mut AnyConnection, job: &J) -> prism_store::Result<Option<i64>> {
    enqueue_at(c, job, None).await
}

/// Enqueues `job` to run at `run_at` (ms since the epoch) or now.
pub async fn enqueue_at<J: Job>(
    c: &mut AnyConnection,
    job: &J,
    run_at: Option<i64>,
) -> prism_store::Result<Option<i64>> {
    jobs::enqueue(c, new_job(job, run_at)).await
}

pub(crate) fn new_job<J: Job>(job: &J, run_at: Option<i64>) -> NewJob<'static> {
    NewJob {
        kind: J::KIND,
        payload: serde_json::to_value(job).expect("job payloads serialise"),
        dedup_key: job.dedup_key(),
        run_at,
        max_attempts: J::MAX_ATTEMPTS,
    }
}
