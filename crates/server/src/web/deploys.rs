//! One deploy: the review (everything the operator must see before
//! confirming: commit, change note, who built and tested it, image digest,
//! rendered manifests, the diff against the live objects) with approve and
//! reject, and the live view (steps stream over the API's SSE endpoint; the
//! page shows every stored step without script too), the result and a
//! rollback button.

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::context;
use prism_api::deploys::{Review, Rollback};
use prism_store::{deploys, environments};

use crate::ops::deploys as op;
use crate::ops::OpError;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::error::WebResult;
use super::render::page as render;
use super::resend;
use super::session::{Posted, Web};
use crate::state::AppState;

/// One object of the diff, ready to show.
#[derive(Serialize)]
struct DiffItem {
    object: String,
    action: String,
    changes: Vec<ChangeView>,
}

#[derive(Serialize)]
struct ChangeView {
    path: String,
    before: String,
    after: String,
    category: String,
}

fn short(v: &Json) -> String {
    match v {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `Kind namespace/name` from an object reference, whatever its shape.
fn label(r: &Json) -> String {
    let get = |k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let (kind, name, ns) = (get("kind"), get("name"), get("namespace"));
    if kind.is_empty() && name.is_empty() {
        return short(r);
    }
    if ns.is_empty() {
        format!("{kind} {name}")
    } else {
        format!("{kind} {ns}/{name}")
    }
}

fn diff_items(diff: Option<&Json>) -> Vec<DiffItem> {
    diff.and_then(|d| d.as_array())
        .into_iter()
        .flatten()
        .map(|e| DiffItem {
            object: label(&e["object"]),
            action: e["diff"]["action"].as_str().unwrap_or("unknown").to_owned(),
            changes: e["diff"]["changes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| ChangeView {
                    path: short(&c["path"]),
                    before: short(&c["before"]),
                    after: short(&c["after"]),
                    category: short(&c["category"]),
                })
                .collect(),
        })
        .collect()
}

/// The rendered objects as YAML documents, one per object.
fn manifests_yaml(m: Option<&Json>) -> Vec<(String, String)> {
    m.and_then(|m| m.as_array())
        .into_iter()
        .flatten()
        .map(|e| {
            let obj = e.get("object").unwrap_or(e);
            let yaml = serde_yaml_ng::to_string(obj).unwrap_or_else(|_| obj.to_string());
            (label(obj), yaml)
        })
        .collect()
}

/// What the page says about the deploy's state, decided here from the
/// typed state rather than by comparing its words in the template.
#[derive(Serialize)]
struct StateFacts {
    rollback: bool,
    waiting_window: bool,
    awaiting_review: bool,
    succeeded: bool,
    /// Its objects are being applied or rolled out now.
    running: bool,
    /// Anything was applied (not only planned or waiting).
    applied: bool,
}

impl StateFacts {
    fn of(d: &prism_store::deploys::Deploy) -> Self {
        use prism_domain::{DeployKind, DeployState as S};
        StateFacts {
            rollback: d.kind == DeployKind::Rollback,
            waiting_window: d.state == S::WaitingWindow,
            awaiting_review: d.state == S::AwaitingReview,
            succeeded: d.state == S::Succeeded,
            running: matches!(d.state, S::Applying | S::Watching),
            applied: d.state.has_applied() || matches!(d.state, S::Succeeded | S::Failed),
        }
    }
}

/// A canary or blue-green rollout as the live page shows it.
#[derive(Serialize)]
struct RolloutView {
    strategy: String,
    phase: String,
    /// Canary: the step running (1-based) and how many there are.
    step: usize,
    steps: usize,
    weights: Vec<u8>,
    stable: i32,
    new: i32,
    paused: bool,
    waits_for_person: bool,
    /// Seconds left of a timed pause.
    pause_left: Option<i64>,
    gates: Vec<GateView>,
    previous_release: Option<String>,
    outcome: Option<String>,
    over: bool,
}

#[derive(Serialize)]
struct GateView {
    name: String,
    condition: String,
    taken: u32,
    count: u32,
    last: String,
}

fn rollout_view(d: &prism_store::deploys::Deploy) -> Option<RolloutView> {
    use prism_kube::progressive::gate::Measurement;
    use prism_kube::progressive::progress::{Phase, Progress};
    use prism_kube::progressive::strategy::Strategy;
    let p: Progress = serde_json::from_value(d.rollout.clone()?).ok()?;
    let weights = match &p.strategy {
        Strategy::Canary { steps } => steps.iter().map(|s| s.weight).collect(),
        _ => vec![],
    };
    let gates = p
        .gates()
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let t = p.tallies.get(i).cloned().unwrap_or_default();
            GateView {
                name: g.name.clone(),
                condition: g.condition.clone(),
                taken: t.taken,
                count: g.count,
                last: match t.last {
                    Some(Measurement::Value(v)) => v.to_string(),
                    Some(Measurement::Inconclusive(why)) => format!("? ({why})"),
                    None => "—".into(),
                },
            }
        })
        .collect();
    let now = prism_store::now_ms();
    Some(RolloutView {
        strategy: p.strategy.name().into(),
        phase: serde_json::to_value(p.phase)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        step: p.step + 1,
        steps: weights.len(),
        weights,
        stable: p.stable_replicas,
        new: p.new_replicas,
        paused: p.paused,
        waits_for_person: p.phase == Phase::Checking && p.waits_for_person() && !p.resumed,
        pause_left: p.pause_until.filter(|u| *u > now).map(|u| (u - now + 999) / 1000),
        gates,
        previous_release: p.previous_release.clone(),
        outcome: p.outcome.clone(),
        over: matches!(p.phase, Phase::Done | Phase::Aborted) || d.state.is_final(),
    })
}

pub async fn page(State(state): State<AppState>, Web(caller): Web, Path(id): Path<String>) -> WebResult<Html<String>> {
    deploy_page(&state, &caller, id, None).await
}

/// A refused review: the field at fault, why, and what the reviewer typed.
#[derive(Serialize)]
struct ReviewError {
    field: String,
    message: String,
    comment: String,
}

/// The deploy's page; `review_error` is shown at the review form.
async fn deploy_page(
    state: &AppState,
    caller: &crate::auth::Caller,
    id: String,
    review_error: Option<ReviewError>,
) -> WebResult<Html<String>> {
    let (deploy, info, roles) = op::get(state, caller, &id).await?;
    let d = &deploy;
    let mut c = state.store.conn().await?;
    let env = environments::get(&mut c, d.env_id).await?;
    let events = deploys::events(&mut c, d.id, 0).await?;
    // A rollback returns to the success before the current one (as the
    // operation picks it): offer it only when there is one.
    let successes = op::successes(&mut c, d.app_id, d.env_id).await?;
    drop(c);
    let may_deploy = crate::ops::access::may_deploy(roles, &env);
    // Who approved, who still may, and whether this caller may vote (the
    // approval policy decides, in ops::approvals).
    let approvals = crate::ops::approvals::list(state, caller, &id).await?;
    let diff = diff_items(d.diff.as_ref());
    let rollout = rollout_view(d);
    let manifests = manifests_yaml(d.manifests.as_ref());
    render(
        state,
        caller,
        "deploy.html",
        context! {
            nav => "releases",
            review_error => review_error,
            d => d,
            info => info,
            events => events,
            diff => diff,
            manifests => manifests,
            finished => d.state.is_final(),
            can_review => approvals.you_may_vote,
            approvals => approvals,
            can_rollback => may_deploy && d.state.is_final() && successes >= 2,
            can_retry => d.state == prism_domain::DeployState::Failed && crate::ops::retry::may_retry_for(caller, &d.requested_by),
            policy => env.policy,
            rollout => rollout,
            can_steer => may_deploy,
            is => StateFacts::of(d),
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct ReviewForm {
    decision: String,
    #[serde(default)]
    comment: String,
}

pub async fn review(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<ReviewForm>,
) -> WebResult<Response> {
    if let Some(page) = resend::earlier(&state, &p.caller, resend::DEPLOY).await? {
        return Ok(page);
    }
    let req = Review {
        decision: p.form.decision,
        comment: p.form.comment.clone(),
    };
    match op::review(&state, &p.caller, &id, req).await {
        Ok(d) => Ok(Redirect::to(&format!("/deploys/{}", d.id)).into_response()),
        // A reason missing or too long: the page again, the error at the comment.
        Err(OpError::Invalid { field, message, .. }) => {
            let error = ReviewError {
                field: field.unwrap_or_default(),
                message,
                comment: p.form.comment,
            };
            let html = deploy_page(&state, &p.caller, id, Some(error)).await?;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => resend::or_twin(&state, &p.caller, resend::DEPLOY, e).await,
    }
}

#[derive(Deserialize)]
pub struct SteerForm {
    #[serde(default)]
    reason: String,
}

/// Promote, pause, resume or abort the deploy's running rollout.
pub async fn steer(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    p: Posted<SteerForm>,
) -> WebResult<Response> {
    let req = prism_api::rollouts::RolloutCommandRequest { reason: p.form.reason };
    let d = crate::ops::rollouts::command(&state, &p.caller, &id, &action, req).await?;
    Ok(Redirect::to(&format!("/deploys/{}#rollout", d.id)).into_response())
}

#[derive(Deserialize)]
pub struct RollbackForm {
    #[serde(default)]
    note: String,
}

/// Retry of a failed deploy: a new deploy of the same release into the same
/// environment, with the checks of starting one.
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<super::admin::NoFields>,
) -> WebResult<Response> {
    let operation = crate::ops::retry::retry_deploy(&state, &p.caller, &id);
    resend::once(&state, &p.caller, resend::DEPLOY, operation, |d| {
        format!("/deploys/{}", d.id)
    })
    .await
}

pub async fn rollback(
    State(state): State<AppState>,
    Path((name, env)): Path<(String, String)>,
    p: Posted<RollbackForm>,
) -> WebResult<Response> {
    let req = Rollback {
        to_deploy: None,
        note: p.form.note,
    };
    let operation = op::rollback(&state, &p.caller, &name, &env, req);
    resend::once(&state, &p.caller, resend::DEPLOY, operation, |d| {
        format!("/deploys/{}", d.id)
    })
    .await
}

/// An environment where deploying is closed now, for the board and the release page.
#[derive(Serialize)]
pub struct ClosedEnv {
    pub environment: String,
    pub closed_by: String,
    pub opens_local: Option<String>,
}

/// The environments closed now and when each opens (from `ops::windows`).
pub async fn closed_environments(state: &AppState) -> WebResult<Vec<ClosedEnv>> {
    Ok(crate::ops::windows::closed_environments(state)
        .await?
        .into_iter()
        .map(|(environment, o)| ClosedEnv {
            environment,
            closed_by: o.closed_by.unwrap_or_default(),
            opens_local: o.opens_local,
        })
        .collect())
}
