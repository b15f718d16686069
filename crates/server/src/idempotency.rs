//! Idempotency keys on the API (the `Idempotency-Key` header, as in the
//! IETF httpapi draft): a client that may send a mutating request twice (a
//! load balancer resending it after the instance behind it died, the CLI
//! after a dropped connection) names it with a key of its own choosing, and
//! the change is made at most once.
//!
//! ```text
//! request + key --> middleware: key known for this user?
//!     yes, same request      --> the stored response again (Idempotent-Replayed: true)
//!     yes, another request   --> 422 idempotency_key_reused
//!     no                     --> handler; the operation claims the key first
//!                                thing in its transaction and stores its
//!                                response before commit (one transaction:
//!                                the change and the key land together or
//!                                not at all)
//! handler failed, key now known (a twin request committed meanwhile)
//!                            --> the twin's stored response
//! ```
//!
//! Operations that take keys: release creation, release actions (promote,
//! pass ...), build and deploy start, approvals and rejections. Elsewhere a
//! key is accepted and has no effect. Keys are the caller's own (two users
//! never see each other's responses) and are kept for [`KEEP_MS`].

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prism_store::{idempotency as store, AnyConnection};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::ops::{OpError, OpResult};
use crate::state::{AppState, BODY_LIMIT};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The response header on a replayed response.
pub const REPLAYED: &str = "idempotent-replayed";
/// How long a key is remembered: retries come within minutes.
pub const KEEP_MS: i64 = 24 * 60 * 60 * 1000;
/// Longest key accepted (a UUID is 36 characters).
const MAX_LEN: usize = 255;

/// The caller's key for this request, put where the [`Caller`] extractor finds it.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    /// Method and path ("POST /api/v1/releases").
    pub request: String,
    /// SHA-256 of method, path, query and body.
    pub fingerprint: String,
}

/// A key is 1 to 255 visible ASCII characters (no spaces, no control characters).
fn parse_key(raw: &HeaderValue) -> Result<String, ApiError> {
    let bad = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "validation",
            format!("Idempotency-Key must be 1 to {MAX_LEN} visible ASCII characters (a UUID, say)"),
        )
        .field("Idempotency-Key")
    };
    let s = raw.to_str().map_err(|_| bad())?.trim();
    // RFC 8941 allows a key as a quoted string: accept both forms.
    let s = s.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(s);
    valid_key(s).ok_or_else(bad)
}

fn valid_key(s: &str) -> Option<String> {
    (!s.is_empty() && s.len() <= MAX_LEN && s.bytes().all(|b| b.is_ascii_graphic())).then(|| s.to_owned())
}

/// The key of a console form (its hidden `idem` field, a UUID made when the
/// page was drawn): a form sent twice (a double click, the browser's resend
/// after an instance died mid-request) is then applied once, like an API
/// request resent with its `Idempotency-Key`. `None` when the field is not
/// a valid key.
pub fn form_key(key: &str, method: &Method, path_and_query: &str, body: &[u8]) -> Option<IdempotencyKey> {
    Some(IdempotencyKey {
        key: valid_key(key)?,
        request: format!(
            "{method} {}",
            path_and_query.split('?').next().unwrap_or(path_and_query)
        ),
        fingerprint: fingerprint(method, path_and_query, body),
    })
}

/// What an earlier request with the caller's key answered, when one
/// committed: `Ok(None)` without a key or when none did; an error when the
/// key was used for another request.
pub async fn earlier_answer(c: &mut AnyConnection, caller: &Caller) -> OpResult<Option<String>> {
    let Some(key) = &caller.idempotency else {
        return Ok(None);
    };
    let Some(stored) = store::find(c, caller.user.id, &key.key).await? else {
        return Ok(None);
    };
    match judge(&stored, key) {
        Earlier::OtherRequest => Err(OpError::Invalid {
            field: Some("idem".into()),
            message: format!(
                "this form was already sent with other values ({}); reload the page to send it again",
                stored.request
            ),
            code: "idempotency_key_reused",
        }),
        Earlier::Unfinished => Err(OpError::conflict(
            "an identical request is still being processed; reload the page",
        )),
        Earlier::Answered => Ok(Some(stored.body.unwrap_or_default())),
    }
}

/// What a key already stored means for a request sent with it again.
enum Earlier {
    /// The same request, answered and committed: its answer again.
    Answered,
    /// The key was used for another request: a refusal.
    OtherRequest,
    /// Claimed but not answered (not reachable through the operations here,
    /// which store the answer in the claiming transaction): say so rather
    /// than run twice.
    Unfinished,
}

fn judge(stored: &store::StoredKey, key: &IdempotencyKey) -> Earlier {
    if stored.fingerprint != key.fingerprint {
        Earlier::OtherRequest
    } else if stored.status.is_none() || stored.body.is_none() {
        Earlier::Unfinished
    } else {
        Earlier::Answered
    }
}

fn fingerprint(method: &Method, path_and_query: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_str().as_bytes());
    h.update(b"\n");
    h.update(path_and_query.as_bytes());
    h.update(b"\n");
    h.update(body);
    hex::encode(h.finalize())
}

/// The stored response again, marked as a replay.
fn replay(stored: &store::StoredKey) -> Response {
    let status = stored
        .status
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut r = Response::new(Body::from(stored.body.clone().unwrap_or_default()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(REPLAYED, HeaderValue::from_static("true"));
    r
}

fn reused(stored: &store::StoredKey) -> Response {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        format!(
            "this Idempotency-Key was used for another request ({} with another body); use a new key for a new request",
            stored.request
        ),
    )
    .field("Idempotency-Key")
    .into_response()
}

/// What a known key answers: its response, or a refusal when the request differs.
fn answer(stored: &store::StoredKey, key: &IdempotencyKey) -> Response {
    match judge(stored, key) {
        Earlier::OtherRequest => reused(stored),
        Earlier::Unfinished => {
            ApiError::conflict("a request with this Idempotency-Key is still being processed; retry later")
                .field("Idempotency-Key")
                .into_response()
        }
        Earlier::Answered => replay(stored),
    }
}

async fn lookup(state: &AppState, user_id: i64, key: &str) -> Result<Option<store::StoredKey>, ApiError> {
    let mut c = state.store.conn().await?;
    Ok(store::find(&mut c, user_id, key).await?)
}

/// The middleware (on every route; it acts on mutating API requests that carry the header).
pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mutating = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if !mutating || !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let Some(raw) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let key = match parse_key(raw) {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let (mut parts, body) = req.into_parts();
    // A key is its caller's own; without a valid credential the handler
    // refuses the request as it would without a key.
    let Ok(caller) = Caller::from_request_parts(&mut parts, &state).await else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    let bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            // Over the limit, or cut off by the client: say which we know.
            let too_large = parts
                .headers
                .get(axum::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
                .is_none_or(|n| n > BODY_LIMIT);
            let (status, message) = if too_large {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the request body is over {BODY_LIMIT} bytes"),
                )
            } else {
                (StatusCode::BAD_REQUEST, "the request body was cut off".to_owned())
            };
            return ApiError::new(status, "bad_body", message).into_response();
        }
    };
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let key = IdempotencyKey {
        fingerprint: fingerprint(&parts.method, path, &bytes),
        request: format!("{} {}", parts.method, parts.uri.path()),
        key,
    };
    let user_id = caller.user.id;
    match lookup(&state, user_id, &key.key).await {
        Ok(Some(stored)) => return answer(&stored, &key),
        Ok(None) => {}
        Err(e) => return e.into_response(),
    }
    parts.extensions.insert(key.clone());
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    if response.status().is_success() {
        return response;
    }
    // Failed: if a twin request with this key committed while this one ran
    // (its claim made ours fail), the twin's response is this request's answer.
    match lookup(&state, user_id, &key.key).await {
        Ok(Some(stored)) => answer(&stored, &key),
        _ => response,
    }
}

/// Claims the caller's key (if the request has one) in the operation's
/// transaction, before it changes anything. A twin request holding the same
/// key makes this wait until the twin commits, then fail.
pub async fn claim(c: &mut AnyConnection, caller: &Caller) -> OpResult<()> {
    let Some(k) = &caller.idempotency else { return Ok(()) };
    store::claim(c, caller.user.id, &k.key, &k.request, &k.fingerprint)
        .await
        .map_err(|e| match e {
            prism_store::StoreError::Duplicate { .. } => OpError::conflict_as(
                "idempotency_key_in_use",
                "another request with this Idempotency-Key was made at the same time",
            )
            .field("Idempotency-Key"),
            e => e.into(),
        })
}

/// How an operation's route answers when it succeeds, said by the
/// operation without speaking HTTP (status codes are decided here, at the
/// edge); a resent request gets the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 200: something changed and is shown.
    Ok,
    /// 201: something new was made.
    Created,
}

impl Answer {
    fn status(self) -> StatusCode {
        match self {
            Answer::Ok => StatusCode::OK,
            Answer::Created => StatusCode::CREATED,
        }
    }
}

/// Stores the response the operation's route sends, in its transaction.
pub async fn complete<T: Serialize>(c: &mut AnyConnection, caller: &Caller, answer: Answer, body: &T) -> OpResult<()> {
    let Some(k) = &caller.idempotency else { return Ok(()) };
    let json = serde_json::to_string(body).map_err(|e| OpError::Internal(format!("idempotent response: {e}")))?;
    store::complete(c, caller.user.id, &k.key, answer.status().as_u16(), &json).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        let ok = |s: &str| parse_key(&HeaderValue::from_str(s).unwrap());
        assert_eq!(ok("3f2a-17").unwrap(), "3f2a-17");
        assert_eq!(ok("\"quoted-key\"").unwrap(), "quoted-key");
        for bad in ["", "two words", "\"\"", &"k".repeat(256)] {
            let e = ok(bad).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("Idempotency-Key"), "{bad:?}");
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
        assert!(ok(&"k".repeat(255)).is_ok());
    }

    #[test]
    fn the_fingerprint_covers_method_path_and_body() {
        let a = fingerprint(&Method::POST, "/api/v1/releases", b"{}");
        assert_eq!(a, fingerprint(&Method::POST, "/api/v1/releases", b"{}"));
        assert_ne!(a, fingerprint(&Method::PUT, "/api/v1/releases", b"{}"));
        assert_ne!(a, fingerprint(&Method::POST, "/api/v1/releases?x=1", b"{}"));
        assert_ne!(a, fingerprint(&Method::POST, "/api/v1/releases", b"{ }"));
    }
}
