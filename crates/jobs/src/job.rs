//! The [`Job`] trait: one implementation per job type.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Cancel, JobError, Quarantine};

/// A job type. The struct is the payload: it is stored as JSON when the job
/// is enqueued and read back when an attempt runs.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The stored kind; unique per registry.
    const KIND: &'static str;
    /// Ordinary failures the job may have before it fails for good.
    /// Abandoned attempts (the server died under it) do not count.
    const MAX_ATTEMPTS: i64 = 3;
    /// Uses the CPU (compilers, compression): limited per instance to the
    /// runner's CPU-bound concurrency.
    const CPU_BOUND: bool = false;

    /// What the job runs with (the server's state).
    type Context: Clone + Send + Sync + 'static;

    /// A job with the same key is not enqueued twice.
    fn dedup_key(&self) -> Option<String> {
        None
    }

    /// One attempt. Must be idempotent.
    fn run(&self, ctx: &Self::Context, cancel: Cancel) -> impl Future<Output = Result<(), JobError>> + Send;

    /// Called once when the job is quarantined (abandoned too often in a
    /// row), so what it works on can be failed with the reason.
    fn quarantined(&self, ctx: &Self::Context, q: &Quarantine) -> impl Future<Output = Result<(), JobError>> + Send {
        let _ = (ctx, q);
        async { Ok(()) }
    }
}
