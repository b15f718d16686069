//! Console forms sent twice: a double click, or the browser sending a form
//! again after the instance behind the load balancer died mid-request. Forms
//! that make or move something (a release, a build, a deploy, a review, a
//! release's promotion) carry a key made when the page was drawn (the hidden
//! `idem` field, see `session::Posted`); the operation claims it in its
//! transaction like an API request's `Idempotency-Key`. A form whose key
//! already did its work is not applied again: the person is sent to the page
//! of what the first sending made, read from its stored answer.
//!
//! ```text
//! form + key --> earlier answer stored? -- yes --> 303 to its page
//!                     | no
//!                operation (claims the key) -- ok --> 303 to its page
//!                     | failed
//!                a twin sent at the same moment committed? -- yes --> 303 to its page
//!                     | no --> the error page
//! ```

use std::future::Future;

use axum::response::{IntoResponse, Redirect, Response};

use super::error::WebResult;
use crate::auth::Caller;
use crate::ops::OpError;
use crate::state::AppState;

/// Where the console shows what a form's operation made or changed: a page
/// prefix and the JSON pointer of the id in the operation's stored answer
/// (the API's representation of it).
#[derive(Clone, Copy)]
pub struct Shown {
    prefix: &'static str,
    pointer: &'static str,
}

/// The release a "new release" form made, or a release after one of its actions.
pub const RELEASE: Shown = Shown {
    prefix: "/releases/",
    pointer: "/id",
};
/// The release of a build just started.
pub const BUILD_RELEASE: Shown = Shown {
    prefix: "/releases/",
    pointer: "/release",
};
pub const BUILD: Shown = Shown {
    prefix: "/builds/",
    pointer: "/id",
};
pub const DEPLOY: Shown = Shown {
    prefix: "/deploys/",
    pointer: "/id",
};

impl Shown {
    fn page(self, answer: &str) -> WebResult<Response> {
        let json: serde_json::Value = serde_json::from_str(answer)
            .map_err(|e| OpError::internal(format!("stored answer of a form is not JSON: {e}")))?;
        let id = match json.pointer(self.pointer) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => return Err(OpError::internal(format!("stored answer of a form has no {}", self.pointer)).into()),
        };
        let id: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
        Ok(Redirect::to(&format!("{}{id}", self.prefix)).into_response())
    }
}

/// Before a form's operation: the page of what this form made when it was
/// sent (and committed) before.
pub async fn earlier(state: &AppState, caller: &Caller, shown: Shown) -> WebResult<Option<Response>> {
    if caller.idempotency.is_none() {
        return Ok(None);
    }
    let mut c = state.store.conn().await.map_err(OpError::from)?;
    match crate::idempotency::earlier_answer(&mut c, caller).await? {
        Some(answer) => Ok(Some(shown.page(&answer)?)),
        None => Ok(None),
    }
}

/// After a form's operation failed: when the same form sent at the same
/// moment committed first (its claim of the key is what made this one
/// fail), that one's page; otherwise the error.
pub async fn or_twin(state: &AppState, caller: &Caller, shown: Shown, error: OpError) -> WebResult<Response> {
    match earlier(state, caller, shown).await {
        Ok(Some(page)) => Ok(page),
        _ => Err(error.into()),
    }
}

/// A form's operation applied once: the page of what an earlier sending
/// made when there is one; else the operation, then the page of what it
/// made (`page_of`), or of what a twin sent at the same moment made, or the
/// error. The operation is a future, so nothing of it runs when an earlier
/// sending already did its work.
pub async fn once<T>(
    state: &AppState,
    caller: &Caller,
    shown: Shown,
    operation: impl Future<Output = Result<T, OpError>>,
    page_of: impl FnOnce(T) -> String,
) -> WebResult<Response> {
    if let Some(page) = earlier(state, caller, shown).await? {
        return Ok(page);
    }
    match operation.await {
        Ok(made) => Ok(Redirect::to(&page_of(made)).into_response()),
        Err(e) => or_twin(state, caller, shown, e).await,
    }
}
