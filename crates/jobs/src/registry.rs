//! The job types an instance runs, registered once at start-up. The runner
//! claims only registered kinds and dispatches by kind through here; each
//! entry reads its typed payload back from the stored JSON.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::{Cancel, Job, JobError, Quarantine};

type RunFn<C> = Arc<dyn Fn(C, String, Cancel) -> BoxFuture<'static, Result<(), JobError>> + Send + Sync>;
type QuarantineFn<C> = Arc<dyn Fn(C, String, Quarantine) -> BoxFuture<'static, Result<(), JobError>> + Send + Sync>;

pub(crate) struct Entry<C> {
    pub cpu_bound: bool,
    pub run: RunFn<C>,
    pub quarantined: QuarantineFn<C>,
}

/// Job types by kind, for context `C`.
pub struct Registry<C> {
    entries: BTreeMap<&'static str, Entry<C>>,
}

impl<C> Default for Registry<C> {
    fn default() -> Self {
        Registry {
            entries: BTreeMap::new(),
        }
    }
}

fn payload<J: Job>(raw: &str) -> Result<J, JobError> {
    serde_json::from_str(raw).map_err(|e| JobError::Payload(format!("{} payload: {e}", J::KIND)))
}

impl<C: Clone + Send + Sync + 'static> Registry<C> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds job type `J`. Panics if its kind is registered already (a
    /// programming error found at start-up).
    pub fn register<J: Job<Context = C>>(mut self) -> Self {
        let run: RunFn<C> = Arc::new(|ctx: C, raw: String, cancel: Cancel| {
            Box::pin(async move {
                let job: J = payload(&raw)?;
                job.run(&ctx, cancel).await
            })
        });
        let quarantined: QuarantineFn<C> = Arc::new(|ctx: C, raw: String, q: Quarantine| {
            Box::pin(async move {
                let job: J = payload(&raw)?;
                job.quarantined(&ctx, &q).await
            })
        });
        let old = self.entries.insert(
            J::KIND,
            Entry {
                cpu_bound: J::CPU_BOUND,
                run,
                quarantined,
            },
        );
        assert!(old.is_none(), "job kind {} registered twice", J::KIND);
        self
    }

    pub(crate) fn get(&self, kind: &str) -> Option<&Entry<C>> {
        self.entries.get(kind)
    }

    /// Every registered kind, or only those that are not CPU-bound.
    pub(crate) fn kinds(&self, with_cpu_bound: bool) -> Vec<&'static str> {
        self.entries
            .iter()
            .filter(|(_, e)| with_cpu_bound || !e.cpu_bound)
            .map(|(k, _)| *k)
            .collect()
    }
}
