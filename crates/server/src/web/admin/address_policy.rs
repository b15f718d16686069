//! The address policy's form (on the build setup page): the admin's allowed
//! and denied ranges, comma- or line-separated.

use axum::extract::State;
use axum::response::Response;
use minijinja::Value;
use prism_domain::AddressRules;
use serde::Deserialize;

use super::after;
use crate::ops::address_policy;
use crate::state::AppState;
use crate::web::error::WebResult;
use crate::web::session::Posted;

#[derive(Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    allowed: String,
    #[serde(default)]
    denied: String,
}

fn ranges(s: &str) -> Vec<String> {
    super::list(&s.replace(['\n', '\r'], ","))
}

pub async fn put_address_policy(State(state): State<AppState>, p: Posted<PolicyForm>) -> WebResult<Response> {
    let rules = AddressRules {
        allowed: ranges(&p.form.allowed),
        denied: ranges(&p.form.denied),
    };
    let r = address_policy::put(&state, &p.caller, rules).await;
    after(r, "/admin/build-setup".into(), |n| {
        super::build_setup::setup_page(&state, &p.caller, Value::UNDEFINED, Some(n))
    })
    .await
}
