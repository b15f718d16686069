//! The job runner: claims jobs from the store's durable queue, keeps their
//! leases alive while they run, and records how each attempt ended. Each
//! `prism serve` runs one; on PostgreSQL several share the queue. A periodic
//! scheduler enqueues the maintenance sweep (deduplicated per period, so
//! however many instances run, each sweep happens once).

pub mod base_image;
pub mod build;
pub mod deploy;
mod maintenance;
mod selftest;

use std::sync::Arc;
use std::time::Duration;

use prism_store::jobs::{self, Job, NewJob, Outcome};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::app::AppState;

pub const MAINTENANCE: &str = "maintenance";
pub const SELFTEST: &str = "selftest";
const KINDS: &[&str] = &[
    MAINTENANCE,
    SELFTEST,
    deploy::DEPLOY,
    build::BUILD,
    base_image::BASE_IMAGE,
];
/// Jobs run at once per instance; deploys mostly wait on the cluster, so
/// many can run side by side (PRISM_JOB_CONCURRENCY).
fn max_concurrent() -> usize {
    std::env::var("PRISM_JOB_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(32)
}
/// Builds use the CPU (compilers, compression): at most this many at once per
/// instance (PRISM_BUILD_CONCURRENCY, default: the number of cores).
fn max_concurrent_builds() -> usize {
    std::env::var("PRISM_BUILD_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2))
}
const NON_BUILD_KINDS: &[&str] = &[MAINTENANCE, SELFTEST, deploy::DEPLOY, base_image::BASE_IMAGE];
const MAINTENANCE_PERIOD_MS: i64 = 60_000;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The job's payload cannot be read; retrying will not help.
    #[error("bad payload: {0}")]
    Payload(String),
    /// The job was interrupted by shutdown or lost its lease.
    #[error("interrupted")]
    Interrupted,
    /// A passing fault (a cluster that did not answer): retried with backoff.
    #[error("{0}")]
    Transient(String),
    #[error(transparent)]
    Store(#[from] prism_store::StoreError),
}

pub fn spawn_runner(state: AppState, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(run(state, shutdown))
}

async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(max_concurrent()));
    let build_slots = Arc::new(Semaphore::new(max_concurrent_builds()));
    let poll = Duration::from_millis(state.settings.job_poll_ms);
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        if let Err(e) = schedule_maintenance(&state).await {
            tracing::warn!(error = %e, "could not schedule maintenance");
        }
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("semaphore open"),
            _ = shutdown.changed() => break,
        };
        // While every build slot is taken, other instances (or later) take the builds.
        let kinds = if build_slots.available_permits() > 0 {
            KINDS
        } else {
            NON_BUILD_KINDS
        };
        match jobs::claim(
            &state.store,
            &state.settings.instance_id,
            kinds,
            state.settings.job_lease_ms,
        )
        .await
        {
            Ok(Some(job)) => {
                let build_permit = (job.kind == build::BUILD)
                    .then(|| build_slots.clone().try_acquire_owned().ok())
                    .flatten();
                let state = state.clone();
                let stop = shutdown.clone();
                in_flight.spawn(async move {
                    execute(&state, job, stop).await;
                    drop(build_permit);
                    drop(permit);
                });
                continue;
            }
            Ok(None) => drop(permit),
            Err(e) => {
                drop(permit);
                tracing::warn!(error = %e, "could not claim a job");
            }
        }
        while in_flight.try_join_next().is_some() {}
        // Woken at once when this instance enqueues work; the poll is the
        // fallback for work enqueued by other instances.
        tokio::select! {
            _ = tokio::time::sleep(poll) => {},
            _ = state.job_wakeup.notified() => {},
            _ = shutdown.changed() => break,
        }
    }
    // Running jobs see the shutdown, stop, and hand their job back.
    while in_flight.join_next().await.is_some() {}
}

async fn schedule_maintenance(state: &AppState) -> prism_store::Result<()> {
    let bucket = prism_store::now_ms() / MAINTENANCE_PERIOD_MS;
    let mut tx = state.store.begin().await?;
    jobs::enqueue(
        &mut tx,
        NewJob {
            kind: MAINTENANCE,
            payload: serde_json::json!({}),
            dedup_key: Some(format!("{MAINTENANCE}:{bucket}")),
            run_at: None,
            max_attempts: 3,
        },
    )
    .await?;
    tx.commit().await
}

/// Runs one claimed job with a lease-renewing heartbeat beside it.
async fn execute(state: &AppState, job: Job, shutdown: watch::Receiver<bool>) {
    let instance = state.settings.instance_id.clone();
    let lease = state.settings.job_lease_ms;
    let (lost_tx, lost_rx) = watch::channel(false);
    let heartbeat = {
        let store = state.store.clone();
        let instance = instance.clone();
        let id = job.id;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis((lease / 3).max(100) as u64)).await;
                let ours = match store.conn().await {
                    Ok(mut c) => jobs::heartbeat(&mut c, id, &instance, lease).await.unwrap_or(true),
                    Err(_) => true,
                };
                if !ours {
                    let _ = lost_tx.send(true);
                    return;
                }
            }
        })
    };
    let cancel = Cancel {
        shutdown,
        lost: lost_rx,
    };
    tracing::info!(job = job.id, kind = %job.kind, attempt = job.attempts, "job started");
    let result = match job.kind.as_str() {
        MAINTENANCE => maintenance::run(state).await,
        SELFTEST => selftest::run(state, &job, cancel.clone()).await,
        deploy::DEPLOY => deploy::run(state, &job.payload, cancel.clone()).await,
        build::BUILD => build::run(state, &job.payload, cancel.clone()).await,
        base_image::BASE_IMAGE => base_image::run(state, &job.payload).await,
        other => Err(JobError::Payload(format!("unknown job kind {other:?}"))),
    };
    heartbeat.abort();
    let outcome = match &result {
        Ok(()) => Outcome::Succeeded,
        Err(JobError::Interrupted) if cancel.is_lost() => return, // another instance owns it now
        Err(JobError::Interrupted) => {
            // Shutting down: hand the job back at once instead of waiting for the lease.
            if let Err(e) = jobs::release(&state.store, job.id, &instance).await {
                tracing::warn!(job = job.id, error = %e, "could not hand the job back");
            }
            return;
        }
        Err(JobError::Payload(m)) => Outcome::Failed {
            error: m.clone(),
            retry_in_ms: 0,
        },
        Err(e) => Outcome::Failed {
            error: e.to_string(),
            retry_in_ms: backoff_ms(job.attempts),
        },
    };
    match jobs::finish(&state.store, job.id, &instance, job.attempts, outcome).await {
        Ok(true) => tracing::info!(job = job.id, kind = %job.kind, ok = result.is_ok(), "job finished"),
        Ok(false) => tracing::warn!(job = job.id, "job finished after its lease was taken over"),
        Err(e) => tracing::error!(job = job.id, error = %e, "could not record the job's end"),
    }
}

fn backoff_ms(attempt: i64) -> i64 {
    (1000i64 << attempt.clamp(0, 10)).min(10 * 60_000)
}

/// Tells a running job to stop: the server is shutting down, or the job's
/// lease was lost to another instance.
#[derive(Clone)]
pub struct Cancel {
    shutdown: watch::Receiver<bool>,
    lost: watch::Receiver<bool>,
}

impl Cancel {
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }
    pub fn is_cancelled(&self) -> bool {
        *self.shutdown.borrow() || self.is_lost()
    }
    /// Sleeps for `d` unless cancelled first; Err when cancelled.
    pub async fn sleep(&mut self, d: Duration) -> Result<(), JobError> {
        let interrupted = tokio::select! {
            _ = tokio::time::sleep(d) => false,
            _ = self.shutdown.wait_for(|s| *s) => true,
            _ = self.lost.wait_for(|s| *s) => true,
        };
        if interrupted || self.is_cancelled() {
            Err(JobError::Interrupted)
        } else {
            Ok(())
        }
    }
}
