//! The one place errors become pages for the browser: the status the API
//! would answer with, and an HTML page saying what went wrong (the API keeps
//! its JSON bodies). A request without a session goes to the login page.

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::context;

use crate::error::ApiError;
use crate::ops::OpError;

#[derive(Debug)]
pub enum WebError {
    /// No session, or it expired: log in first (then back to this page, for a GET).
    LoginFirst(Option<String>),
    /// What the API would have answered.
    Api(ApiError),
}

pub type WebResult<T> = Result<T, WebError>;

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        WebError::Api(e)
    }
}

/// An operation's refusal or failure: the status the API would answer with
/// (the one mapping, `From<OpError> for ApiError`), shown as a page.
impl From<OpError> for WebError {
    fn from(e: OpError) -> Self {
        WebError::Api(e.into())
    }
}

impl From<prism_store::StoreError> for WebError {
    fn from(e: prism_store::StoreError) -> Self {
        WebError::Api(e.into())
    }
}

impl From<minijinja::Error> for WebError {
    fn from(e: minijinja::Error) -> Self {
        tracing::error!(error = %e, detail = %e.display_debug_info(), "page template failed");
        WebError::Api(ApiError::internal())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let e = match self {
            WebError::LoginFirst(back) => {
                let to = match back {
                    Some(path) if path != "/" => format!("/login?next={}", encode_path(&path)),
                    _ => "/login".to_owned(),
                };
                return Redirect::to(&to).into_response();
            }
            WebError::Api(e) => e,
        };
        let title_id = match e.status {
            StatusCode::FORBIDDEN => "error.forbidden",
            StatusCode::NOT_FOUND => "error.not_found",
            StatusCode::CONFLICT => "error.conflict",
            s if s.is_client_error() => "error.bad_request",
            _ => "error.internal",
        };
        let html = super::render::standalone(
            "error.html",
            context! {
                status => e.status.as_u16(),
                title_id => title_id,
                message => e.message,
                code => e.code,
                field => e.field,
            },
        );
        match html {
            Ok(body) => (e.status, Html(body)).into_response(),
            Err(_) => (
                e.status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                e.message,
            )
                .into_response(),
        }
    }
}

/// A path and query as one query parameter's value (every byte but
/// unreserved ones encoded, `/` included, so the login page decodes it whole).
pub fn encode_path(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
