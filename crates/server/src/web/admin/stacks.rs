//! A stack preset's form (on the build setup page): its JSON, checked by the
//! same operation the API runs.

use axum::extract::State;
use axum::response::Response;
use minijinja::context;
use prism_api::stacks::PutStack;
use serde::Deserialize;

use super::after;
use crate::ops::stacks;
use crate::ops::OpError;
use crate::state::AppState;
use crate::web::error::WebResult;
use crate::web::session::Posted;

#[derive(Deserialize)]
pub struct StackForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    json: String,
}

pub async fn put_stack(State(state): State<AppState>, p: Posted<StackForm>) -> WebResult<Response> {
    let f = p.form;
    let again = context! { name => f.name, json => f.json };
    let r = match serde_json::from_str::<PutStack>(&f.json) {
        Ok(req) => stacks::put_stack(&state, &p.caller, f.name.trim(), req)
            .await
            .map(|_| ()),
        Err(e) => Err(OpError::invalid(
            "json",
            format!("the stack is not valid JSON for a stack: {e}"),
        )),
    };
    after(r, "/admin/build-setup".into(), |n| {
        super::build_setup::setup_page(&state, &p.caller, again, Some(n))
    })
    .await
}
