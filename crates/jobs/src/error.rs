//! One error type for every job. Whether another attempt may help is decided
//! by the variant, never by an HTTP status or a message.

/// How a job's attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The job's payload cannot be read; retrying will not help (permanent).
    #[error("bad payload: {0}")]
    Payload(String),
    /// The job was interrupted by shutdown or lost its lease: not a failure,
    /// the job is handed back (or already belongs to another instance).
    #[error("interrupted")]
    Interrupted,
    /// A passing fault (a cluster that did not answer): retried with backoff.
    #[error("{0}")]
    Transient(String),
    /// A fault another attempt cannot fix: the job fails at once.
    #[error("{0}")]
    Permanent(String),
    /// The store failed (connection lost, busy): retried with backoff.
    #[error(transparent)]
    Store(#[from] prism_store::StoreError),
    /// The job panicked; recorded as the attempt's failure and retried.
    #[error("panicked: {0}")]
    Panicked(String),
}

impl JobError {
    /// Whether another attempt may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            JobError::Transient(_) | JobError::Store(_) | JobError::Panicked(_) => true,
            JobError::Payload(_) | JobError::Permanent(_) | JobError::Interrupted => false,
        }
    }
}
