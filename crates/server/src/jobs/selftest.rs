//! A job that only takes time: proves the runner, leases and takeover work on
//! an installation (and is what the multi-instance tests run).

use std::time::Duration;

use prism_store::audit::{self, Origin};
use prism_store::jobs::Job;
use serde_json::json;

use super::{Cancel, JobError};
use crate::app::AppState;

pub async fn run(state: &AppState, job: &Job, mut cancel: Cancel) -> Result<(), JobError> {
    let payload: serde_json::Value =
        serde_json::from_str(&job.payload).map_err(|e| JobError::Payload(e.to_string()))?;
    let ms = payload
        .get("duration_ms")
        .and_then(|v| v.as_i64())
        .ok_or_else(|| JobError::Payload("duration_ms missing".into()))?;
    let mut left = ms.max(0) as u64;
    while left > 0 {
        let step = left.min(100);
        cancel.sleep(Duration::from_millis(step)).await?;
        left -= step;
    }
    let mut tx = state.store.begin().await?;
    let detail = json!({"instance": state.settings.instance_id, "attempt": job.attempts});
    audit::record(
        &mut tx,
        &Origin::system("selftest"),
        "job.selftest_done",
        "job",
        &job.id.to_string(),
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
