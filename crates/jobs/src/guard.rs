//! Tasks that live beside a job (its lease heartbeat, a cancel watcher) must
//! end however the job ends: by returning, by an error, by a panic, or by
//! its future being dropped. A [`TaskGuard`] aborts its task on drop.

use std::future::Future;

use tokio::task::JoinHandle;

/// Aborts the task it holds when dropped.
#[must_use = "the task is aborted when the guard is dropped"]
pub struct TaskGuard(JoinHandle<()>);

impl TaskGuard {
    pub fn spawn(f: impl Future<Output = ()> + Send + 'static) -> Self {
        TaskGuard(tokio::spawn(f))
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}
