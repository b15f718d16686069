//! An optional bearer token in front of `/metrics`.
//!
//! Setting: `PRISM_METRICS_TOKEN`. Unset or empty, `/metrics` stays open (a
//! scraper inside a trusted network); set, a request needs
//! `Authorization: Bearer <token>` and anything else gets a 401 that says
//! what is missing. The token is compared in constant time (by digest).

use std::sync::OnceLock;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The configured token's digest, read once from `PRISM_METRICS_TOKEN`.
fn expected() -> Option<&'static [u8; 32]> {
    static TOKEN: OnceLock<Option<[u8; 32]>> = OnceLock::new();
    TOKEN
        .get_or_init(|| {
            let t = std::env::var("PRISM_METRICS_TOKEN").ok()?;
            let t = t.trim();
            (!t.is_empty()).then(|| Sha256::digest(t.as_bytes()).into())
        })
        .as_ref()
}

/// Whether `authorization` (the header's value) carries the token.
fn allowed(authorization: Option<&HeaderValue>, expected: &[u8; 32]) -> bool {
    let Some(given) = authorization
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let given: [u8; 32] = Sha256::digest(given.trim().as_bytes()).into();
    given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Middleware for the `/metrics` route.
pub async fn guard(req: Request, next: Next) -> Response {
    if let Some(expected) = expected() {
        if !allowed(req.headers().get(header::AUTHORIZATION), expected) {
            let mut resp = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "/metrics needs the metrics token: Authorization: Bearer <PRISM_METRICS_TOKEN>",
            )
            .into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"metrics\""),
            );
            return resp;
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_passes() {
        let expected: [u8; 32] = Sha256::digest(b"s3cret").into();
        let h = |v: &'static str| HeaderValue::from_static(v);
        assert!(allowed(Some(&h("Bearer s3cret")), &expected));
        assert!(!allowed(Some(&h("Bearer s3cre")), &expected));
        assert!(!allowed(Some(&h("Basic s3cret")), &expected));
        assert!(!allowed(None, &expected));
    }
}
