//! The directory's group rules on the users page: add one (a role in a
//! project, or admin), remove one. Both go through the same operation as
//! `PUT /api/v1/directory/group-rules` (admin check, validation, audit).

use axum::extract::{Path, State};
use axum::response::Response;
use prism_domain::Role;
use prism_identity::GroupRule;
use serde::Deserialize;

use super::{after, checked, opt};
use crate::ops::{directory, OpError};
use crate::state::AppState;
use crate::web::error::WebResult;
use crate::web::session::Posted;

#[derive(Deserialize)]
pub struct RuleForm {
    #[serde(default)]
    group: String,
    #[serde(default)]
    project: String,
    #[serde(default)]
    role: String,
    admin: Option<String>,
}

pub async fn add_rule(State(state): State<AppState>, p: Posted<RuleForm>) -> WebResult<Response> {
    let f = &p.form;
    let r = async {
        let mut rules = directory::rules(&state, &p.caller).await?;
        let admin = checked(&f.admin);
        let role = match (admin, opt(&f.role)) {
            (false, Some(r)) => Some(Role::parse(&format!("rules[{}].role", rules.len()), &r)?),
            _ => None,
        };
        rules.push(GroupRule {
            group: f.group.trim().to_owned(),
            project: if admin { None } else { opt(&f.project) },
            role,
            admin,
        });
        directory::put_rules(&state, &p.caller, rules).await
    }
    .await;
    after(r, "/admin/users#directory".into(), |n| {
        super::users::users_page(&state, &p.caller, Some(n))
    })
    .await
}

pub async fn delete_rule(
    State(state): State<AppState>,
    Path(index): Path<usize>,
    p: Posted<super::NoFields>,
) -> WebResult<Response> {
    let r = async {
        let mut rules = directory::rules(&state, &p.caller).await?;
        if index >= rules.len() {
            return Err(OpError::not_found("group rule", index));
        }
        rules.remove(index);
        directory::put_rules(&state, &p.caller, rules).await
    }
    .await;
    after(r, "/admin/users#directory".into(), |n| {
        super::users::users_page(&state, &p.caller, Some(n))
    })
    .await
}
