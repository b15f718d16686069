//! Groundwork for Prism's build pipeline.
//!
//! * [`checkout`]: fetch one ref from a git server with the `git` command-line client and
//!   resolve the commit it points at.
//! * [`executor`]: the [`Executor`] interface that runs one build step, and
//!   [`LocalExecutor`], the embedded default (child process in its own process group).
//! * [`jenkins`]: [`JenkinsExecutor`], which runs a step as a build of a Jenkins job over
//!   Jenkins' REST API and downloads its archived artifacts into the workdir.
//! * [`logsink`]: where build output goes, line by line, with a stream tag and a sequence.
//! * [`mask`]: replaces registered secrets in log lines with `***`.
//! * [`workspace`]: per-build workspace directories and artifact path resolution that
//!   cannot escape the workspace.
//! * [`BuildFailure`]: what a failed build reports: where it failed and why.

pub mod checkout;
pub mod container;
pub mod executor;
pub mod jenkins;
pub mod logsink;
pub mod mask;
pub mod workspace;

pub use checkout::{checkout, checkout_guarded, CheckoutError, CommitSha, Credentials};
pub use container::{ContainerConfig, ContainerExecutor, Limits, Network};
pub use executor::{
    end_leftover_group, BuildStep, ExecError, ExecOutcome, Executor, GroupRecorder, LocalExecutor, OnGroupEnd,
};
pub use jenkins::{ApiToken, JenkinsConfig, JenkinsError, JenkinsExecutor};
pub use logsink::{LogLine, LogSink, MemoryLogSink, Stream, TailBuffer, TeeSink};
pub use mask::{MaskingSink, SecretMasker};
pub use tokio_util::sync::CancellationToken;
pub use workspace::{Workspace, WorkspaceError, WorkspaceRoot};

use serde::Serialize;

/// Why a build failed, phrased for the person reading the release page: the stage that
/// failed and the reason, with the tail of the log when a build command failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildFailure {
    #[error("checkout failed: {0}")]
    Checkout(#[from] CheckoutError),
    #[error("build step `{step}` failed: exit code {code}{}", format_tail(.tail))]
    Exited {
        step: String,
        code: i32,
        tail: Vec<LogLine>,
    },
    #[error("build step `{step}` was killed by signal {signal}{}", format_tail(.tail))]
    Signaled {
        step: String,
        signal: i32,
        tail: Vec<LogLine>,
    },
    #[error("build step `{step}` timed out after {seconds}s{}", format_tail(.tail))]
    TimedOut {
        step: String,
        seconds: u64,
        tail: Vec<LogLine>,
    },
    #[error("build step `{step}` was killed: OOMKilled, out of memory (limit {limit_mib} MiB){}", format_tail(.tail))]
    OutOfMemory {
        step: String,
        limit_mib: u64,
        tail: Vec<LogLine>,
    },
    #[error("build step `{step}` was cancelled")]
    Cancelled { step: String },
    #[error("build step `{step}` could not run: {source}")]
    Exec {
        step: String,
        #[source]
        source: ExecError,
    },
}

fn format_tail(tail: &[LogLine]) -> String {
    if tail.is_empty() {
        return String::new();
    }
    let mut s = String::from("\nlast log lines:");
    for l in tail {
        s.push_str("\n  ");
        s.push_str(&l.line);
    }
    s
}

impl BuildFailure {
    /// Turn a step outcome into a failure (None when the step succeeded with exit code 0).
    /// `tail` should come from a [`TailBuffer`] placed after the masking sink.
    pub fn from_outcome(step: &BuildStep, outcome: ExecOutcome, tail: Vec<LogLine>) -> Option<Self> {
        let name = step.name.clone();
        match outcome {
            ExecOutcome::Exited(0) => None,
            ExecOutcome::Exited(code) => Some(Self::Exited { step: name, code, tail }),
            ExecOutcome::Signaled(signal) => Some(Self::Signaled {
                step: name,
                signal,
                tail,
            }),
            ExecOutcome::TimedOut => Some(Self::TimedOut {
                step: name,
                seconds: step.timeout.as_secs(),
                tail,
            }),
            ExecOutcome::Cancelled => Some(Self::Cancelled { step: name }),
            ExecOutcome::OutOfMemory { limit_bytes } => Some(Self::OutOfMemory {
                step: name,
                limit_mib: limit_bytes >> 20,
                tail,
            }),
        }
    }

    /// A short machine-readable kind for storing on the build record.
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Checkout(CheckoutError::RefNotFound { .. }) => FailureKind::RefNotFound,
            Self::Checkout(CheckoutError::AuthRefused { .. }) => FailureKind::AuthRefused,
            Self::Checkout(_) => FailureKind::Checkout,
            Self::Exited { .. } | Self::Signaled { .. } | Self::Exec { .. } | Self::OutOfMemory { .. } => {
                FailureKind::Build
            }
            Self::TimedOut { .. } => FailureKind::Timeout,
            Self::Cancelled { .. } => FailureKind::Cancelled,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    RefNotFound,
    AuthRefused,
    Checkout,
    Build,
    Timeout,
    Cancelled,
}
