//! The one error type of the use cases. It says what went wrong in the
//! terms of the operation (not found, invalid input, forbidden, conflict,
//! upstream, internal); the transports decide what that is in HTTP
//! (`crate::error` for the API's JSON, `crate::web::error` for the console's
//! pages).

use prism_domain::{TransitionError, ValidationError};
use prism_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The record does not exist, or the caller may not see it.
    #[error("{record} \"{key}\" not found")]
    NotFound { record: String, key: String },
    /// The input is refused; `field` names the part at fault. `code` is
    /// `validation` unless the input is a document with its own kind
    /// (`invalid_manifests`, `invalid_template`).
    #[error("{message}")]
    Invalid {
        field: Option<String>,
        message: String,
        code: &'static str,
    },
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The records' state does not allow it now (`code` says why: held,
    /// busy, invalid_transition, ...).
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    /// The credentials are missing or wrong.
    #[error("{0}")]
    Unauthenticated(String),
    /// Too many failed attempts; try again later.
    #[error("{0}")]
    Throttled(String),
    /// A system Prism talks to (a cluster) failed.
    #[error("{0}")]
    Upstream(String),
    /// A fault of Prism itself; the detail is logged, not shown.
    #[error("internal error; see the server log")]
    Internal(String),
}

pub type OpResult<T> = Result<T, OpError>;

impl OpError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        OpError::Invalid {
            field: Some(field.to_owned()),
            message: message.into(),
            code: "validation",
        }
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        OpError::Forbidden(message.into())
    }
    pub fn not_found(record: &str, key: impl std::fmt::Display) -> Self {
        OpError::NotFound {
            record: record.to_owned(),
            key: key.to_string(),
        }
    }
    /// A conflict of the plain kind (`conflict`).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::conflict_as("conflict", message)
    }
    pub fn conflict_as(code: &'static str, message: impl Into<String>) -> Self {
        OpError::Conflict {
            code,
            message: message.into(),
            field: None,
        }
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        tracing::error!(error = %detail, "internal error");
        OpError::Internal(detail)
    }
    /// Names the field at fault (of an invalid input or a conflict).
    pub fn field(mut self, f: impl Into<String>) -> Self {
        match &mut self {
            OpError::Invalid { field, .. } | OpError::Conflict { field, .. } => *field = Some(f.into()),
            _ => {}
        }
        self
    }
    /// The field at fault, when there is one.
    pub fn field_name(&self) -> Option<&str> {
        match self {
            OpError::Invalid { field, .. } | OpError::Conflict { field, .. } => field.as_deref(),
            OpError::NotFound { record, .. } => Some(record),
            _ => None,
        }
    }
    /// The request was refused for what it asked (the caller's input, role
    /// or the records' state), not because something failed.
    pub fn is_refusal(&self) -> bool {
        !matches!(self, OpError::Upstream(_) | OpError::Internal(_))
    }
    /// Something the person can fix in the form they sent (bad input, or a
    /// state that conflicts with it).
    pub fn is_correctable(&self) -> bool {
        matches!(
            self,
            OpError::Invalid { .. } | OpError::Conflict { .. } | OpError::Unauthenticated(_) | OpError::Throttled(_)
        )
    }
}

impl From<ValidationError> for OpError {
    fn from(e: ValidationError) -> Self {
        OpError::invalid(&e.field.clone(), e.to_string())
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { record, key } => OpError::not_found(record, key),
            StoreError::Duplicate { record, field, key } => {
                OpError::conflict(format!("{record} {key:?} already exists")).field(field)
            }
            StoreError::Conflict(m) => OpError::conflict(m),
            StoreError::InUse(m) => OpError::conflict(m),
            other => {
                tracing::error!(error = %other, "store error");
                OpError::Internal(other.to_string())
            }
        }
    }
}

impl From<TransitionError> for OpError {
    fn from(e: TransitionError) -> Self {
        let message = e.to_string();
        match e {
            TransitionError::Forbidden { .. } => OpError::forbidden(message),
            TransitionError::Invalid(v) => v.into(),
            TransitionError::UnknownEnv(_) => OpError::invalid("environment", message),
            TransitionError::Held { .. } => OpError::conflict_as("held", message).field("environment"),
            TransitionError::Busy { .. } => OpError::conflict_as("busy", message).field("environment"),
            TransitionError::OutOfOrder(_) => OpError::conflict_as("out_of_order", message).field("environment"),
            TransitionError::NotAllowed { .. } => OpError::conflict_as("invalid_transition", message).field("state"),
        }
    }
}

/// A record named in the input: when it does not exist, the input is at
/// fault (invalid, naming the field), not the address (not found).
pub fn referenced<T>(field: &str, result: Result<T, StoreError>) -> OpResult<T> {
    result.map_err(|e| match e {
        StoreError::NotFound { record, key } => OpError::invalid(field, format!("no {record} named {key:?}")),
        other => other.into(),
    })
}
