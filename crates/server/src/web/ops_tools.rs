//! The ops tools a person may open (each cluster's Prometheus, Grafana,
//! Dashboard...), reached through the nginx front Prism configures; the
//! same listing as the API's (`ops::ops_tools::list`).

use axum::extract::State;
use axum::response::Html;
use minijinja::context;

use super::error::WebResult;
use super::render::page as render;
use super::session::Web;
use crate::state::AppState;

pub async fn page(State(state): State<AppState>, Web(caller): Web) -> WebResult<Html<String>> {
    let tools = crate::ops::ops_tools::list(&state, &caller).await?;
    render(
        &state,
        &caller,
        "ops_tools.html",
        context! { nav => "ops_tools", tools => tools, is_admin => caller.is_admin() },
    )
    .await
}
