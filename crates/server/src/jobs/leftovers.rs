//! Nothing of a killed build is left running. The local executor records
//! each step's process group with the job's attempt before the command runs
//! (see `prism_builder::GroupRecorder`); at start, before the runner claims
//! any job, the groups this instance's previous run left (on SQLite: every
//! group recorded, one instance being the only one) are killed and the
//! build's log says so. The retried build then runs alone.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prism_builder::{GroupRecorder, OnGroupEnd, SecretMasker};
use prism_store::jobs;

use crate::services::build_log::BuildLog;
use crate::state::AppState;

/// The job attempt a build's steps belong to.
#[derive(Clone, Copy)]
struct Owner {
    job_id: i64,
    attempt: i64,
    build_id: i64,
}

tokio::task_local! {
    static OWNER: Owner;
}

/// Runs `f` (a build's pipeline) with its steps' process groups recorded as
/// belonging to this job attempt.
pub async fn owned_by<F: Future>(job_id: i64, attempt: i64, build_id: i64, f: F) -> F::Output {
    OWNER
        .scope(
            Owner {
                job_id,
                attempt,
                build_id,
            },
            f,
        )
        .await
}

/// Records process groups in the store, for the attempt in scope.
pub fn recorder(state: &AppState) -> GroupRecorder {
    let store = state.store.clone();
    let instance = state.settings.instance_id.clone();
    GroupRecorder(Arc::new(move |pgid: i32, marker: String| {
        let owner = OWNER.try_with(|o| *o).ok();
        let (store, instance) = (store.clone(), instance.clone());
        Box::pin(async move {
            let noop: OnGroupEnd = Box::new(|| Box::pin(async {}));
            let Some(o) = owner else {
                return noop;
            };
            let subject = format!("build:{}", o.build_id);
            match jobs::process_started(&store, o.job_id, o.attempt, &instance, pgid.into(), &subject, &marker).await {
                Ok(id) => Box::new(move || {
                    Box::pin(async move {
                        if let Err(e) = jobs::process_ended(&store, id).await {
                            tracing::warn!(error = %e, "could not record a build step's end");
                        }
                    })
                }),
                Err(e) => {
                    tracing::warn!(error = %e, pgid, "could not record a build step's process group");
                    noop
                }
            }
        })
    }))
}

/// Ends the process groups the previous run of this instance left.
pub async fn end(state: &AppState, sole_instance: bool) {
    let open = match state.store.conn().await {
        Ok(mut c) => jobs::open_processes(&mut c, &state.settings.instance_id, sole_instance).await,
        Err(e) => Err(e),
    };
    let open = match open {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the process groups left by the last run");
            return;
        }
    };
    for p in open {
        let pgid = p.pgid as i32;
        let was_alive = prism_builder::end_leftover_group(pgid, &p.marker, Duration::from_secs(5)).await;
        if let Some(build_id) = p.subject.strip_prefix("build:").and_then(|s| s.parse::<i64>().ok()) {
            let line = if was_alive {
                format!(
                    "[prism] the server stopped during attempt {} of this build; on restart it killed the processes that attempt left running (process group {pgid})",
                    p.attempt
                )
            } else {
                format!(
                    "[prism] the server stopped during attempt {} of this build; none of its processes (process group {pgid}) were left running",
                    p.attempt
                )
            };
            if let Ok((log, writer)) =
                BuildLog::start(state.store.clone(), build_id, Arc::new(SecretMasker::new())).await
            {
                log.system(&line);
                writer.finish().await;
            }
        }
        tracing::info!(pgid, subject = %p.subject, killed = was_alive, "ended a process group left by the last run");
        if let Err(e) = jobs::process_ended(&state.store, p.id).await {
            tracing::warn!(error = %e, "could not record a leftover process group as ended");
        }
    }
}
