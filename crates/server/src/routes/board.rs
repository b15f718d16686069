use axum::extract::State;
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
    Ok(Json(
        crate::ops::holds::board(&state, &caller, q.application.as_deref())
            .await?
            .to_api(),
    ))
}
