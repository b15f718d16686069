//! The server's jobs on the job engine (`prism-jobs`): the registry of job
//! types this server runs (maintenance, selftest, deploy, build, base image,
//! notify) and the runner's settings. Each `prism serve`
//! runs one runner; on PostgreSQL several share the queue. Before the runner
//! claims anything, what the previous run of this instance left running
//! (build process groups) is ended (`leftovers`).

pub mod base_image;
pub mod build;
pub mod build_kube;
mod contained;
pub mod deploy;
mod leftovers;
pub mod maintenance;
pub mod notify;
mod rollout;
mod selftest;

use std::time::Duration;

pub use prism_jobs::{Cancel, JobError};
use prism_jobs::{Job, Registry, Runner, RunnerConfig};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AppState;

pub const MAINTENANCE: &str = maintenance::MaintenanceJob::KIND;
pub const SELFTEST: &str = selftest::SelftestJob::KIND;

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

/// A job abandoned this many times in a row (the server stopped while running
/// it) is quarantined instead of run again (PRISM_JOB_ABANDON_LIMIT, default 2).
fn abandon_limit() -> i64 {
    std::env::var("PRISM_JOB_ABANDON_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(prism_store::jobs::DEFAULT_ABANDON_LIMIT)
}

const MAINTENANCE_PERIOD: Duration = Duration::from_secs(60);

/// Every job type this server runs.
fn registry() -> Registry<AppState> {
    Registry::new()
        .register::<maintenance::MaintenanceJob>()
        .register::<selftest::SelftestJob>()
        .register::<deploy::DeployJob>()
        .register::<build::BuildJob>()
        .register::<base_image::BaseImageJob>()
        .register::<notify::NotifyJob>()
}

pub fn spawn_runner(state: AppState, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let sole_instance = state.store.backend() == prism_store::Backend::Sqlite;
        leftovers::end(&state, sole_instance).await;
        contained::sweep(&state).await;
        let config = RunnerConfig {
            instance: state.settings.instance_id.clone(),
            lease_ms: state.settings.job_lease_ms,
            poll: Duration::from_millis(state.settings.job_poll_ms),
            max_concurrent: max_concurrent(),
            max_cpu_bound: max_concurrent_builds(),
            abandon_limit: abandon_limit(),
            sole_instance,
        };
        Runner::new(state.store.clone(), state.clone(), registry(), config)
            .wakeup(state.job_wakeup.clone())
            .every(MAINTENANCE_PERIOD, maintenance::MaintenanceJob::for_period)
            .run(shutdown)
            .await
    })
}
