//! The one place where errors become HTTP responses. Every 4xx and 5xx body
//! has the same shape: `{"error": message, "code": kind, "field": field?}`.
//! Operations fail with [`OpError`]; `From<OpError> for ApiError` is where
//! that becomes a status. The rest (`ApiError::bad_request` ...) is for what
//! the HTTP edge itself refuses: an unreadable body, query or path.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use prism_domain::ValidationError;
use prism_store::StoreError;
use serde::Serialize;

use crate::ops::OpError;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    pub error: String,
    /// A stable machine-readable kind: validation, not_found, conflict, ...
    pub code: &'static str,
    /// The input field or record at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    pub fn bad_request(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", message).field(field)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(record: &str, key: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{record} \"{key}\" not found"),
        )
        .field(record)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
            code: self.code,
            field: self.field,
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// The one mapping of an operation's error to HTTP: its status, its stable
/// code and the field at fault.
impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        let message = e.to_string();
        match e {
            OpError::NotFound { record, key } => ApiError::not_found(&record, key),
            OpError::Invalid { field, code, .. } => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code,
                message,
                field,
            },
            OpError::Forbidden(_) => ApiError::forbidden(message),
            OpError::Conflict { code, field, .. } => ApiError {
                status: StatusCode::CONFLICT,
                code,
                message,
                field,
            },
            OpError::Unauthenticated(_) => ApiError::unauthorized(message),
            OpError::Throttled(_) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "throttled", message),
            OpError::Upstream(_) => ApiError::new(StatusCode::BAD_GATEWAY, "cluster", message),
            OpError::Internal(_) => ApiError::internal(),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        OpError::from(e).into()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        OpError::from(e).into()
    }
}
