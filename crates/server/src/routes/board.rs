use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use prism_api::board::BoardCell;
use serde::Deserialize;

use super::ApiQuery;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::wire::ToApi;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BoardQuery {
    /// One application's row.
    pub application: Option<String>,
    /// Applications whose name sorts after this one (the previous page's last).
    pub after: Option<String>,
    /// Applications per page (1 to 500, default 100).
    pub limit: Option<i64>,
}

/// The applications x environments board: what runs where, what is on its
/// way in, and which environments are held, by whom. A page of applications
/// by name (keyset paging: `after` the last one of the previous page); when
/// more may follow, the `Link` header names the next page (`rel="next"`).
#[utoipa::path(get, path = "/api/v1/board", tag = "releases", params(BoardQuery),
    responses((status = 200, body = [BoardCell], headers(("Link" = String, description = "the next page, when there may be one")))))]
pub async fn board(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<BoardQuery>,
) -> ApiResult<Response> {
    let query = crate::ops::holds::BoardQuery {
        application: q.application,
        after: q.after,
        limit: q.limit,
    };
    let cells = crate::ops::holds::board(&state, &caller, &query).await?;
    let limit = query.limit.unwrap_or(crate::ops::holds::BOARD_PAGE_DEFAULT);
    let mut apps: Vec<&str> = cells.iter().map(|c| c.application.as_str()).collect();
    apps.dedup();
    let next = (query.application.is_none() && apps.len() as i64 == limit)
        .then(|| apps.last().map(|last| next_link(last, limit)))
        .flatten();
    let mut response = Json(cells.to_api()).into_response();
    if let Some(link) = next.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

/// `</api/v1/board?after=web&limit=100>; rel="next"` (names are URL-safe
/// already: lowercase letters, digits and dashes; encoded anyway).
fn next_link(after: &str, limit: i64) -> String {
    let after: String = form_urlencoded::byte_serialize(after.as_bytes()).collect();
    format!("</api/v1/board?after={after}&limit={limit}>; rel=\"next\"")
}
