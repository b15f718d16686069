//! The runner: claims jobs from the store's queue, keeps their leases alive
//! while they run, and records how each attempt ended. Each `prism serve`
//! runs one; on PostgreSQL several share the queue.
//!
//! At start it takes back the leases its own previous run held (same
//! instance id; on SQLite every lease is its own), so an interrupted job
//! runs again at once instead of after its lease lapses. A job whose
//! attempts were abandoned `abandon_limit` times in a row is quarantined,
//! never run again by itself: whatever killed the server twice would kill
//! it again.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use prism_store::jobs::{self, Claim, ClaimRequest, Job as StoredJob, Outcome};
use prism_store::Store;
use tokio::sync::{watch, Notify, Semaphore};

use crate::enqueue::new_job;
use crate::{Cancel, Job, JobError, Quarantine, Registry, TaskGuard};

/// How a runner claims and leases.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Names this process in leases; stable across restarts.
    pub instance: String,
    pub lease_ms: i64,
    /// How often to look for work enqueued by other instances.
    pub poll: Duration,
    /// Jobs at once.
    pub max_concurrent: usize,
    /// CPU-bound jobs at once.
    pub max_cpu_bound: usize,
    /// Abandoned attempts in a row after which a job is quarantined.
    pub abandon_limit: i64,
    /// Every running lease is this instance's own (SQLite: one instance per store).
    pub sole_instance: bool,
}

type Periodic = Box<dyn Fn(i64) -> jobs::NewJob<'static> + Send + Sync>;

/// Runs registered jobs with context `C` until shut down.
pub struct Runner<C> {
    store: Store,
    ctx: C,
    registry: Arc<Registry<C>>,
    config: RunnerConfig,
    wakeup: Arc<Notify>,
    periodic: Vec<(i64, Periodic)>,
}

impl<C: Clone + Send + Sync + 'static> Runner<C> {
    pub fn new(store: Store, ctx: C, registry: Registry<C>, config: RunnerConfig) -> Self {
        Runner {
            store,
            ctx,
            registry: Arc::new(registry),
            config,
            wakeup: Arc::new(Notify::new()),
            periodic: Vec::new(),
        }
    }

    /// Wakes the runner at once when notified (a request enqueued work).
    pub fn wakeup(mut self, n: Arc<Notify>) -> Self {
        self.wakeup = n;
        self
    }

    /// Enqueues `make(period number)` once per period: the dedup key of the
    /// job must include the period number, so however many instances run,
    /// each period's job runs once.
    pub fn every<J: Job<Context = C>>(mut self, period: Duration, make: fn(i64) -> J) -> Self {
        let f: Periodic = Box::new(move |bucket| new_job(&make(bucket), None));
        self.periodic.push((period.as_millis().max(1) as i64, f));
        self
    }

    /// Runs until `shutdown` turns true; running jobs see it, stop, and hand
    /// their job back.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let me = Arc::new(self);
        match jobs::take_back_leases(&me.store, &me.config.instance, me.config.sole_instance).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "taking back the jobs this instance ran before it stopped"),
            Err(e) => tracing::warn!(error = %e, "could not take back this instance's leases"),
        }
        let slots = Arc::new(Semaphore::new(me.config.max_concurrent.max(1)));
        let cpu_slots = Arc::new(Semaphore::new(me.config.max_cpu_bound.max(1)));
        let mut in_flight = tokio::task::JoinSet::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            me.schedule_periodic().await;
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => p.expect("semaphore open"),
                _ = shutdown.changed() => break,
            };
            // While every CPU slot is taken, other instances (or later) take the CPU-bound jobs.
            let kinds = me.registry.kinds(cpu_slots.available_permits() > 0);
            let req = ClaimRequest {
                instance: &me.config.instance,
                kinds: &kinds,
                lease_ms: me.config.lease_ms,
                abandon_limit: me.config.abandon_limit,
            };
            match jobs::claim_next(&me.store, &req).await {
                Ok(Claim::Claimed(job)) => {
                    let cpu_permit = me
                        .registry
                        .get(&job.kind)
                        .is_some_and(|e| e.cpu_bound)
                        .then(|| cpu_slots.clone().try_acquire_owned().ok())
                        .flatten();
                    let (me, stop) = (me.clone(), shutdown.clone());
                    in_flight.spawn(async move {
                        // The CPU slot goes with the attempt (it may give it back early).
                        me.execute(job, stop, cpu_permit).await;
                        drop(permit);
                    });
                    continue;
                }
                Ok(Claim::Quarantined { job, abandoned }) => {
                    drop(permit);
                    me.quarantine(job, abandoned).await;
                    continue;
                }
                Ok(Claim::Empty) => drop(permit),
                Err(e) => {
                    drop(permit);
                    tracing::warn!(error = %e, "could not claim a job");
                }
            }
            while in_flight.try_join_next().is_some() {}
            // Woken at once when this instance enqueues work; the poll is the
            // fallback for work enqueued by other instances.
            tokio::select! {
                _ = tokio::time::sleep(me.config.poll) => {},
                _ = me.wakeup.notified() => {},
                _ = shutdown.changed() => break,
            }
        }
        while in_flight.join_next().await.is_some() {}
    }

    async fn schedule_periodic(&self) {
        for (period, make) in &self.periodic {
            let bucket = prism_store::now_ms() / period;
            let res = async {
                let mut tx = self.store.begin().await?;
                jobs::enqueue(&mut tx, make(bucket)).await?;
                tx.commit().await
            }
            .await;
            if let Err(e) = res {
                tracing::warn!(error = %e, "could not schedule a periodic job");
            }
        }
    }

    async fn quarantine(&self, job: StoredJob, abandoned: Vec<jobs::JobAttempt>) {
        let q = Quarantine {
            job_id: job.id,
            kind: job.kind.clone(),
            abandoned,
        };
        tracing::error!(job = job.id, kind = %job.kind, "job quarantined: {}", q.describe());
        let Some(entry) = self.registry.get(&job.kind) else {
            return;
        };
        let fut = (entry.quarantined)(self.ctx.clone(), job.payload.clone(), q);
        match AssertUnwindSafe(fut).catch_unwind().await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(job = job.id, error = %e, "could not record the quarantine"),
            Err(p) => tracing::error!(job = job.id, "recording the quarantine panicked: {}", panic_message(&p)),
        }
    }

    /// Runs one claimed job with a lease-renewing heartbeat beside it. The
    /// heartbeat is held by a guard: it ends with this function, however
    /// the job ended (a panic is caught and recorded as the attempt's failure).
    async fn execute(
        &self,
        job: StoredJob,
        shutdown: watch::Receiver<bool>,
        cpu_permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) {
        let instance = self.config.instance.clone();
        let (lost_tx, lost_rx) = watch::channel(false);
        let heartbeat = TaskGuard::spawn(heartbeat(
            self.store.clone(),
            job.id,
            instance.clone(),
            self.config.lease_ms,
            lost_tx,
        ));
        let cancel = Cancel::new(shutdown, lost_rx, job.id, job.attempts, instance.clone()).with_cpu_slot(cpu_permit);
        tracing::info!(job = job.id, kind = %job.kind, attempt = job.attempts, "job started");
        let result = match self.registry.get(&job.kind) {
            Some(entry) => {
                let fut = (entry.run)(self.ctx.clone(), job.payload.clone(), cancel.clone());
                match AssertUnwindSafe(fut).catch_unwind().await {
                    Ok(r) => r,
                    Err(p) => Err(JobError::Panicked(panic_message(&p))),
                }
            }
            None => Err(JobError::Payload(format!("unknown job kind {:?}", job.kind))),
        };
        drop(heartbeat);
        let outcome = match &result {
            Ok(()) => Outcome::Succeeded,
            Err(JobError::Interrupted) if cancel.is_lost() => return, // another instance owns it now
            Err(JobError::Interrupted) => {
                // Shutting down: hand the job back at once instead of waiting for the lease.
                if let Err(e) = jobs::release(&self.store, job.id, &instance).await {
                    tracing::warn!(job = job.id, error = %e, "could not hand the job back");
                }
                return;
            }
            Err(e) if e.is_transient() => Outcome::Failed {
                error: e.to_string(),
                retry_in_ms: backoff_ms(job.failures + 1),
            },
            Err(e) => Outcome::FailedFinal { error: e.to_string() },
        };
        if let Err(e) = &result {
            tracing::warn!(job = job.id, kind = %job.kind, error = %e, "job attempt failed");
        }
        match jobs::finish(&self.store, job.id, &instance, job.attempts, outcome).await {
            Ok(true) => tracing::info!(job = job.id, kind = %job.kind, ok = result.is_ok(), "job finished"),
            Ok(false) => tracing::warn!(job = job.id, "job finished after its lease was taken over"),
            Err(e) => tracing::error!(job = job.id, error = %e, "could not record the job's end"),
        }
    }
}

/// Renews the lease every third of it; tells the job when the lease is lost.
async fn heartbeat(store: Store, id: i64, instance: String, lease_ms: i64, lost: watch::Sender<bool>) {
    loop {
        tokio::time::sleep(Duration::from_millis((lease_ms / 3).max(100) as u64)).await;
        let ours = match store.conn().await {
            Ok(mut c) => jobs::heartbeat(&mut c, id, &instance, lease_ms).await.unwrap_or(true),
            Err(_) => true,
        };
        if !ours {
            let _ = lost.send(true);
            return;
        }
    }
}

fn backoff_ms(failures: i64) -> i64 {
    (1000i64 << failures.clamp(0, 10)).min(10 * 60_000)
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".into()
    }
}
