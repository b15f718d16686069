//! What a running job is told about its surroundings: whether to stop (the
//! server is shutting down, or the lease was lost to another instance), and
//! which job and attempt it is (for records such as the process groups a
//! build starts).

use std::time::Duration;

use tokio::sync::watch;

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
        }
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
