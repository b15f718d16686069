//! The one place where errors become HTTP responses. Every 4xx and 5xx body
//! has the same shape: `{"error": message, "code": kind, "field": field?}`.
//! Operations fail with [`OpError`]; `From<OpError> for ApiError` is where
//! that becomes a status. The rest (`ApiError::bad_request` ...) is for what
//! the HTTP edge itself refuses: an unreadable body, query or path.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use prism_domain::ValidationError;
use prism_store::StoreError;

use crate::ops::OpError;

pub use prism_api::error::ErrorBody;

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
            code: self.code.to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind of operation error has one status and one code.
    #[test]
    fn operation_errors_map_to_one_status_each() {
        let cases = [
            (OpError::not_found("release", "r7"), 404, "not_found", Some("release")),
            (OpError::invalid("git_ref", "bad"), 422, "validation", Some("git_ref")),
            (OpError::forbidden("no"), 403, "forbidden", None),
            (
                OpError::conflict_as("held", "held").field("environment"),
                409,
                "held",
                Some("environment"),
            ),
            (OpError::conflict("taken"), 409, "conflict", None),
            (OpError::Unauthenticated("who".into()), 401, "unauthorized", None),
            (OpError::Throttled("later".into()), 429, "throttled", None),
            (OpError::Upstream("down".into()), 502, "cluster", None),
            (OpError::Internal("bug".into()), 500, "internal", None),
        ];
        for (op, status, code, field) in cases {
            let e = ApiError::from(op);
            assert_eq!((e.status.as_u16(), e.code, e.field.as_deref()), (status, code, field));
        }
        let e = ApiError::from(OpError::not_found("release", "r7"));
        assert_eq!(e.message, "release \"r7\" not found");
        // The detail of an internal fault is logged, never shown.
        assert_eq!(
            ApiError::from(OpError::Internal("secret".into())).message,
            "internal error; see the server log"
        );
    }
}
