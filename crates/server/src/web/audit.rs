//! The audit log with filters, newest first, one page at a time (admins only,
//! as in the API, whose operation this page calls).

use axum::extract::State;
use axum::response::Html;
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::error::WebResult;
use super::render::page as render;
use super::session::{PageQuery, Web};
use crate::ops::audit::AuditQuery;
use crate::state::AppState;

const PAGE: i64 = 50;

#[derive(Deserialize, Serialize, Default)]
pub struct Filters {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    record_type: String,
    #[serde(default)]
    record_id: String,
    before: Option<i64>,
}

fn opt(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

pub async fn page(
    State(state): State<AppState>,
    Web(caller): Web,
    PageQuery(f): PageQuery<Filters>,
) -> WebResult<Html<String>> {
    let q = AuditQuery {
        actor: opt(&f.actor),
        action: opt(&f.action),
        record_type: opt(&f.record_type),
        record_id: opt(&f.record_id),
        since: None,
        until: None,
        before: f.before,
        limit: Some(PAGE),
    };
    let events = crate::ops::audit::list(&state, &caller, q).await?;
    let next = (events.len() as i64 == PAGE)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    render(
        &state,
        &caller,
        "audit.html",
        context! { nav => "audit", events => events, filters => f, next => next },
    )
    .await
}
