//! JSON request bodies, parsed so that a bad body names the field at fault
//! (`serde_path_to_error`), with the size limit enforced by the router.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        require_json(&req)?;
        let bytes = read_body(req, state).await?;
        parse(&bytes).map(ApiJson)
    }
}

fn require_json(req: &Request) -> Result<(), ApiError> {
    let mime = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = mime.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: application/json",
        ))
    }
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("request body larger than {} bytes", crate::state::BODY_LIMIT),
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.body_text())
        }
    })
}

/// A JSON body that may be left out entirely (then `None`).
pub struct OptionalJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let has_type = req.headers().contains_key(header::CONTENT_TYPE);
        if has_type {
            require_json(&req)?;
        }
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(OptionalJson(None));
        }
        if !has_type {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ));
        }
        parse(&bytes).map(|v| OptionalJson(Some(v)))
    }
}

/// Parses a request body: a single JSON object, no trailing data, no NUL
/// characters in any string (PostgreSQL cannot store them), into `T`, with
/// the path of the field at fault in every error.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // One untyped read, kept for the shape and text checks below, in which
    // integral floats are rewritten first. A body that is not JSON gets the
    // typed parse's error, which says where.
    let mut value = serde_json::from_slice::<serde_json::Value>(bytes);
    let rewritten = value.as_mut().ok().and_then(integral_floats_as_integers);
    let bytes = rewritten.as_deref().unwrap_or(bytes);
    // Into the typed request first: its errors carry the path of the field.
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let parsed: T = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = if path == "." || path == "?" || path.is_empty() {
            field_in_message(&inner.to_string())
        } else {
            Some(path)
        };
        let syntax = inner.is_syntax() || inner.is_eof();
        let mut err = ApiError::new(
            if syntax {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            },
            if syntax { "malformed_json" } else { "validation" },
            format!("invalid request body: {inner}"),
        );
        err.field = field;
        err
    })?;
    de.end().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("invalid request body: {e}"),
        )
    })?;
    // Then its shape and text: serde would also fill a struct from an array,
    // and PostgreSQL cannot store NUL characters.
    let value = value.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("invalid request body: {e}"),
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "the request body must be a JSON object",
        ));
    }
    if let Some(path) = find_nul(&value, String::new()) {
        return Err(ApiError::bad_request(&path, "text must not contain NUL characters"));
    }
    Ok(parsed)
}

/// JSON Schema counts `36.0` as an integer, and the OpenAPI document says
/// "integer": a body written by a client that keeps numbers as floats must
/// not be refused for it. Returns the body with every such number written as
/// an integer (rewriting `value` too), or `None` when there is none.
fn integral_floats_as_integers(value: &mut serde_json::Value) -> Option<Vec<u8>> {
    fn walk(v: &mut serde_json::Value) -> bool {
        match v {
            serde_json::Value::Number(n) if n.is_f64() => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                // Exactly representable as i64: |f| below 2^63.
                if f.fract() == 0.0 && f.abs() < 9.223_372_036_854_775e18 {
                    *v = serde_json::Value::from(f as i64);
                    return true;
                }
                false
            }
            // Every element is visited (no short cut): all of them are rewritten.
            serde_json::Value::Array(a) => {
                let mut changed = false;
                for v in a {
                    changed |= walk(v);
                }
                changed
            }
            serde_json::Value::Object(m) => {
                let mut changed = false;
                for v in m.values_mut() {
                    changed |= walk(v);
                }
                changed
            }
            _ => false,
        }
    }
    walk(value).then(|| serde_json::to_vec(value).expect("a JSON value serializes"))
}

fn find_nul(v: &serde_json::Value, path: String) -> Option<String> {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    match v {
        serde_json::Value::String(s) if s.contains('\0') => Some(if path.is_empty() { "body".into() } else { path }),
        serde_json::Value::Object(m) => m.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                Some(join("key"))
            } else {
                find_nul(v, join(k))
            }
        }),
        serde_json::Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_nul(v, format!("{path}[{i}]"))),
        _ => None,
    }
}

/// serde reports a missing or duplicate field at the parent's path; pull
/// the name out of the message.
pub fn field_in_message(msg: &str) -> Option<String> {
    let rest = msg
        .strip_prefix("missing field `")
        .or_else(|| msg.strip_prefix("duplicate field `"))?;
    Some(rest.split('`').next()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        days: i64,
        weight: f64,
    }

    /// An integer written as `36.0` is the integer 36 (as JSON Schema reads
    /// it); `36.5` is still refused, naming the field.
    #[test]
    fn integral_floats_are_integers() {
        let b: Body = parse(br#"{"days": 36.0, "weight": 2.0}"#).unwrap();
        assert_eq!((b.days, b.weight), (36, 2.0));
        let e = parse::<Body>(br#"{"days": 36.5, "weight": 1}"#).unwrap_err();
        assert_eq!((e.status.as_u16(), e.field.as_deref()), (422, Some("days")));
        let e = parse::<Body>(br#"{"days": 1e300, "weight": 1}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("days"), "beyond i64 stays a float");
    }
}
