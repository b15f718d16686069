use axum::extract::State;
use axum::Json;
use prism_store::slots::{self, BoardCell};
use serde::Deserialize;

use super::ApiQuery;
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BoardQuery {
    pub application: Option<String>,
}

/// The applications x environments board: what runs where, what is on its
/// way in, and which environments are held, by whom.
#[utoipa::path(get, path = "/api/v1/board", tag = "releases", params(BoardQuery), responses((status = 200, body = [BoardCell])))]
pub async fn board(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<BoardQuery>,
) -> ApiResult<Json<Vec<BoardCell>>> {
    let mut c = state.store.conn().await?;
    let app = match &q.application {
        Some(a) => Some(super::applications::visible(&mut c, &caller, a).await?.0.id),
        None => None,
    };
    Ok(Json(slots::board(&mut c, caller.visibility(), app).await?))
}
