//! The admin environment page's governance forms: an environment's approval
//! policy (how many approvals, from which roles, whether the release's
//! creator may approve) and its deploy schedule (windows, freezes, what
//! happens while closed, break-glass roles) as the JSON the API takes.

use axum::extract::{Path, State};
use axum::response::Response;
use prism_api::governance::SetPolicy;
use prism_domain::approval::ApprovalPolicy;
use prism_domain::window::Schedule;
use prism_domain::Role;
use serde::{Deserialize, Serialize};

use super::{after, checked};
use crate::auth::Caller;
use crate::ops::approvals;
use crate::ops::{windows, OpError, OpResult};
use crate::state::AppState;
use crate::web::error::WebResult;
use crate::web::session::Posted;

/// What the environments page shows of each environment's governance.
#[derive(Serialize)]
pub struct EnvGovernance {
    pub environment: String,
    pub policy: ApprovalPolicy,
    pub policy_source: prism_api::governance::PolicySource,
    /// The schedule as pretty JSON, for the editor.
    pub schedule_json: String,
    pub now: prism_api::governance::Openness,
}

pub(crate) async fn of(state: &AppState, caller: &Caller, env: &str) -> OpResult<EnvGovernance> {
    let p = approvals::get_policy(state, caller, env, None).await?;
    let s = windows::get_schedule(state, caller, env).await?;
    Ok(EnvGovernance {
        environment: p.environment,
        policy: p.policy,
        policy_source: p.source,
        schedule_json: serde_json::to_string_pretty(&s.schedule).expect("schedules serialise"),
        now: s.now,
    })
}

#[derive(Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    required: String,
    approve_developer: Option<String>,
    approve_tester: Option<String>,
    approve_operator: Option<String>,
    allow_creator: Option<String>,
    /// "clear" removes the policy.
    #[serde(default)]
    clear: String,
}

pub async fn put_policy(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<PolicyForm>,
) -> WebResult<Response> {
    let f = &p.form;
    let r = async {
        let policy = if f.clear == "clear" {
            None
        } else {
            let required: u8 = f
                .required
                .trim()
                .parse()
                .map_err(|_| OpError::invalid("policy.required", "a number from 0 to 10"))?;
            let mut roles = vec![];
            for (on, role) in [
                (&f.approve_developer, Role::Developer),
                (&f.approve_tester, Role::Tester),
                (&f.approve_operator, Role::Operator),
            ] {
                if checked(on) {
                    roles.push(role);
                }
            }
            Some(ApprovalPolicy {
                required,
                roles,
                exclude_creator: !checked(&f.allow_creator),
                exclude_requester: true,
            })
        };
        approvals::set_policy(&state, &p.caller, &name, SetPolicy { project: None, policy }).await
    }
    .await;
    after(r, "/admin/environments".into(), |n| {
        super::environments::environments_page(&state, &p.caller, Some(n))
    })
    .await
}

#[derive(Deserialize)]
pub struct ScheduleForm {
    #[serde(default)]
    schedule: String,
}

pub async fn put_schedule(
    State(state): State<AppState>,
    Path(name): Path<String>,
    p: Posted<ScheduleForm>,
) -> WebResult<Response> {
    let r = async {
        let text = p.form.schedule.trim();
        let schedule: Schedule = if text.is_empty() {
            Schedule::default()
        } else {
            serde_json::from_str(text).map_err(|e| OpError::invalid("schedule", e.to_string()))?
        };
        windows::put_schedule(&state, &p.caller, &name, schedule).await
    }
    .await;
    after(r, "/admin/environments".into(), |n| {
        super::environments::environments_page(&state, &p.caller, Some(n))
    })
    .await
}
