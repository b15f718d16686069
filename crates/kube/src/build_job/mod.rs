//! Builds as Kubernetes Jobs on a build cluster: the Job a build becomes
//! ([`spec`]), what its pod says about the build ([`status`]), and the
//! runner that creates it, follows its steps' logs and ends it ([`runner`]).

pub mod runner;
pub mod settings;
pub mod spec;
pub mod status;

pub use runner::{build_ids, reap, step_messages, BuildJobRunner, BuildLog, JobOutcome, RunnerOptions};
pub use settings::{RunnerSettings, Toleration};
pub use spec::{job, job_name, secret, BuildJobSpec, PodStep, StepResources};
pub use status::{judge, PodState};
