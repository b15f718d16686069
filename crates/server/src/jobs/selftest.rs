//! A job that only takes time: proves the runner, leases and takeover work on
//! an installation (and is what the multi-instance tests run).

use std::time::Duration;

use prism_jobs::Job;
use prism_store::audit::{self, Origin};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Cancel, JobError};
use crate::state::AppState;

#[derive(Debug, Serialize, Deserialize)]
pub struct SelftestJob {
    pub duration_ms: i64,
}

impl Job for SelftestJob {
    const KIND: &'static str = "selftest";
    type Context = AppState;

    async fn run(&self, state: &AppState, mut cancel: Cancel) -> Result<(), JobError> {
        let mut left = self.duration_ms.max(0) as u64;
        while left > 0 {
            let step = left.min(100);
            cancel.sleep(Duration::from_millis(step)).await?;
            left -= step;
        }
        let mut tx = state.store.begin().await?;
        let detail = json!({"instance": state.settings.instance_id, "attempt": cancel.attempt()});
        audit::record(
            &mut tx,
            &Origin::system("selftest"),
            "job.selftest_done",
            "job",
            &cancel.job_id().to_string(),
            detail,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
