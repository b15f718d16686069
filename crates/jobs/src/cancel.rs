//! What a running job is told about its surroundings: whether to stop (the
//! server is shutting down, or the lease was lost to another instance), and
//! which job and attempt it is (for records such as the process groups a
//! build starts).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, OwnedSemaphorePermit};

use crate::JobError;

/// Tells a running job to stop: the server is shutting down, or the job's
/// lease was lost to another instance.
#[derive(Clone)]
pub struct Cancel {
    shutdown: watch::Receiver<bool>,
    lost: watch::Receiver<bool>,
    job_id: i64,
    attempt: i64,
    instance: String,
    /// The instance's CPU-bound slot this attempt holds, if any.
    cpu_slot: Arc<Mutex<Option<OwnedSemaphorePermit>>>,
}

impl Cancel {
    pub(crate) fn new(
        shutdown: watch::Receiver<bool>,
        lost: watch::Receiver<bool>,
        job_id: i64,
        attempt: i64,
        instance: String,
    ) -> Self {
        Cancel {
            shutdown,
            lost,
            job_id,
            attempt,
            instance,
            cpu_slot: Arc::default(),
        }
    }

    /// Hands the attempt the CPU-bound slot the runner took for it.
    pub(crate) fn with_cpu_slot(self, permit: Option<OwnedSemaphorePermit>) -> Self {
        *self.cpu_slot.lock().expect("cpu slot lock") = permit;
        self
    }

    /// Gives back this instance's CPU-bound slot early: for an attempt of a
    /// CPU-bound kind that turns out to run elsewhere (a build on a
    /// Kubernetes runner), so it neither waits for nor blocks local work.
    pub fn release_cpu_slot(&self) {
        self.cpu_slot.lock().expect("cpu slot lock").take();
    }

    /// Whether the attempt still holds a CPU-bound slot.
    pub fn holds_cpu_slot(&self) -> bool {
        self.cpu_slot.lock().expect("cpu slot lock").is_some()
    }

    /// A handle that never fires, for running a job's body outside the runner.
    pub fn never() -> Self {
        let (_, shutdown) = watch::channel(false);
        let (_, lost) = watch::channel(false);
        Cancel::new(shutdown, lost, 0, 0, String::new())
    }

    pub fn job_id(&self) -> i64 {
        self.job_id
    }
    pub fn attempt(&self) -> i64 {
        self.attempt
    }
    /// The instance running this attempt.
    pub fn instance(&self) -> &str {
        &self.instance
    }
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }
    pub fn is_cancelled(&self) -> bool {
        *self.shutdown.borrow() || self.is_lost()
    }
    /// Runs `work` (a wait on something outside: a watch) until it ends, or
    /// until the job is told to stop.
    pub async fn until<F: std::future::Future>(&mut self, work: F) -> Result<F::Output, JobError> {
        let out = tokio::select! {
            out = work => Some(out),
            _ = self.shutdown.wait_for(|s| *s) => None,
            _ = self.lost.wait_for(|s| *s) => None,
        };
        match out {
            Some(out) if !self.is_cancelled() => Ok(out),
            _ => Err(JobError::Interrupted),
        }
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
