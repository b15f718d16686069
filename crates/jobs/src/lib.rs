//! Prism's job engine, shaped like the Rust crates registry's worker crate.
//!
//! Why a crate of its own: the server's jobs (deploy, build, base image,
//! maintenance, selftest) share one queue, one lease protocol and one crash
//! policy, and that machinery is easier to read and test without the server
//! around it. The crate knows nothing of the server: the runner is generic
//! over the context a job runs with.
//!
//! - [`Job`]: one trait per job type: its kind, retry budget, whether it is
//!   CPU-bound, its deduplication key, and `run`. The job struct is its
//!   payload (serde).
//! - [`Registry`]: the job types an instance runs, built at start-up.
//! - [`Runner`]: claims jobs with a lease, keeps the lease alive while the
//!   job runs, records how each attempt ended, and quarantines a job whose
//!   attempts were abandoned (the server died under it) too often in a row.
//!
//! ```text
//! queued --claim--> running --ok--> succeeded
//!    ^                 |  \--error (budget left)--> queued (backoff)
//!    |                 |  \--error (budget spent) / permanent--> failed (error)
//!    |                 \--instance died, lease lapsed--> abandoned attempt
//!    +-----------------------(n-th abandoned in a row: failed (crashed))
//! ```
//!
//! Jobs must be idempotent: an instance that died after the work but before
//! recording its end leaves the job to run again.

mod cancel;
mod enqueue;
mod error;
mod guard;
mod job;
mod quarantine;
mod registry;
mod runner;

pub use cancel::Cancel;
pub use enqueue::{enqueue, enqueue_at};
pub use error::JobError;
pub use guard::TaskGuard;
pub use job::Job;
pub use quarantine::Quarantine;
pub use registry::Registry;
pub use runner::{Runner, RunnerConfig};
