//! The one place where errors become HTTP responses. Every 4xx and 5xx body
//! has the same shape: `{"error": message, "code": kind, "field": field?}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use prism_domain::{TransitionError, ValidationError};
use prism_store::StoreError;
use serde::Serialize;

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

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::bad_request(&e.field.clone(), e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { record, key } => ApiError::not_found(record, key),
            StoreError::Duplicate { record, field, key } => {
                ApiError::conflict(format!("{record} {key:?} already exists")).field(field)
            }
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::InUse(m) => ApiError::conflict(m),
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::internal()
            }
        }
    }
}

impl From<TransitionError> for ApiError {
    fn from(e: TransitionError) -> Self {
        let message = e.to_string();
        match e {
            TransitionError::Forbidden { .. } => ApiError::forbidden(message),
            TransitionError::Invalid(v) => v.into(),
            TransitionError::UnknownEnv(_) => ApiError::bad_request("environment", message),
            TransitionError::Held { .. } => ApiError::new(StatusCode::CONFLICT, "held", message).field("environment"),
            TransitionError::Busy { .. } => ApiError::new(StatusCode::CONFLICT, "busy", message).field("environment"),
            TransitionError::OutOfOrder(_) => {
                ApiError::new(StatusCode::CONFLICT, "out_of_order", message).field("environment")
            }
            TransitionError::NotAllowed { .. } => {
                ApiError::new(StatusCode::CONFLICT, "invalid_transition", message).field("state")
            }
        }
    }
}

/// A record named in a request body: when it does not exist, the request is
/// at fault (422 naming the field), not the URL (which would be a 404).
pub fn referenced<T>(field: &str, result: Result<T, StoreError>) -> ApiResult<T> {
    result.map_err(|e| match e {
        StoreError::NotFound { record, key } => ApiError::bad_request(field, format!("no {record} named {key:?}")),
        other => other.into(),
    })
}
