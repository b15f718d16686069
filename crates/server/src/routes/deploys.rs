use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures::Stream;
use prism_domain::release::Action;
use prism_domain::ReleaseId;
use prism_store::deploys::{self, Deploy, DeployEvent};
use prism_store::{audit, environments, AnyConnection};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ApiQuery;
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{referenced, ApiError, ApiResult};
use crate::jobs::deploy::enqueue;
use crate::json::ApiJson;
use crate::services::transitions::{transition_in, Move, Who};

async fn visible_deploy(
    c: &mut AnyConnection,
    caller: &Caller,
    id: &str,
) -> ApiResult<(Deploy, prism_domain::RoleSet)> {
    let n: i64 = id.parse().map_err(|_| ApiError::not_found("deploy", id))?;
    let d = deploys::get(c, n).await?;
    let roles = caller.roles_in(c, d.project_id).await?;
    if !roles.is_member() {
        return Err(ApiError::not_found("deploy", id));
    }
    Ok((d, roles))
}

/// A deploy as people see it: Secret values in its manifests are redacted
/// (the stored copy keeps them for apply and rollback).
fn shown(mut d: Deploy) -> Deploy {
    if let Some(m) = d.manifests.as_mut() {
        prism_kube::redact_secrets(m);
    }
    d
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartDeploy {
    pub environment: String,
    #[serde(default)]
    pub note: String,
}

/// Starts deploying a release into an environment: checks the caller's role
/// and the environment's hold, moves the release to `deploying`, and queues
/// the deploy (plan, review where required, apply, watch).
#[utoipa::path(post, path = "/api/v1/releases/{id}/deploys", tag = "deploys", params(("id" = String, Path)), request_body = StartDeploy,
    responses((status = 201, body = Deploy), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<StartDeploy>,
) -> ApiResult<(StatusCode, Json<Deploy>)> {
    let rid = ReleaseId::parse("id", &id).map_err(|_| ApiError::not_found("release", &id))?;
    let mut tx = state.store.begin().await?;
    let env = referenced("environment", environments::by_name(&mut tx, &req.environment).await)?;
    if env.cluster_id.is_none() {
        return Err(ApiError::bad_request(
            "environment",
            format!("environment {} is not bound to a cluster yet", env.name),
        ));
    }
    let rel = transition_in(
        &mut tx,
        &Who::User(&caller),
        rid,
        Move {
            action: Action::StartDeploy { env: env.id },
            note: &req.note,
            build_info: None,
        },
    )
    .await?;
    let d = deploys::create(
        &mut tx,
        deploys::NewDeploy {
            release: rel.id,
            app_id: rel.app_id,
            env_id: env.id,
            kind: "deploy",
            requested_by: &caller.user.username,
            rollback_of: None,
            manifests: None,
        },
    )
    .await?;
    deploys::event(
        &mut tx,
        d.id,
        "queued",
        &format!("{} asked to deploy {} to {}", caller.user.username, rel.id, env.name),
        json!({}),
    )
    .await?;
    enqueue(&mut tx, d.id, "planning").await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "deploy.create",
        "deploy",
        &d.id.to_string(),
        json!({"release": rel.id, "environment": env.name}),
    )
    .await?;
    tx.commit().await?;
    state.job_wakeup.notify_one();
    Ok((StatusCode::CREATED, Json(d)))
}

/// A deploy with everything its reviewer must see: the release (commit,
/// change note, image digest, who created it), who built it and who passed
/// it in the environments before, next to the rendered objects and the diff.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeployDetail {
    #[serde(flatten)]
    pub deploy: Deploy,
    pub release_info: ReleaseSummary,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReleaseSummary {
    pub git_ref: String,
    pub commit_sha: Option<String>,
    pub change_note: String,
    pub image_ref: Option<String>,
    pub image_digest: Option<String>,
    pub created_by: String,
    /// Who reported the build result.
    pub built_by: Option<String>,
    /// Who passed it, per environment, in order.
    pub passed_by: Vec<PassedBy>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PassedBy {
    pub environment: Option<String>,
    pub tester: String,
    pub note: String,
    pub at: i64,
}

#[utoipa::path(get, path = "/api/v1/deploys/{id}", tag = "deploys", params(("id" = i64, Path)), responses((status = 200, body = DeployDetail)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<DeployDetail>> {
    let mut c = state.store.conn().await?;
    let deploy = shown(visible_deploy(&mut c, &caller, &id).await?.0);
    let rel = prism_store::releases::get(&mut c, deploy.release).await?;
    let history = prism_store::releases::history(&mut c, deploy.release).await?;
    let built_by = history
        .iter()
        .rev()
        .find(|t| t.action == "build_succeeded")
        .map(|t| t.actor.clone());
    let passed_by = history
        .iter()
        .filter(|t| t.action == "pass")
        .map(|t| PassedBy {
            environment: t.from_environment.clone(),
            tester: t.actor.clone(),
            note: t.note.clone(),
            at: t.at,
        })
        .collect();
    let release_info = ReleaseSummary {
        git_ref: rel.git_ref,
        commit_sha: rel.commit_sha,
        change_note: rel.change_note,
        image_ref: rel.image_ref,
        image_digest: rel.image_digest,
        created_by: rel.creator,
        built_by,
        passed_by,
    };
    Ok(Json(DeployDetail { deploy, release_info }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeployQuery {
    pub application: Option<String>,
    pub environment: Option<String>,
    pub release: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/deploys", tag = "deploys", params(DeployQuery), responses((status = 200, body = [Deploy])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DeployQuery>,
) -> ApiResult<Json<Vec<Deploy>>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit", "must be between 1 and 500"));
    }
    let mut c = state.store.conn().await?;
    let app = match &q.application {
        Some(a) => Some(super::applications::visible(&mut c, &caller, a).await?.0.id),
        None => None,
    };
    let env = match &q.environment {
        Some(e) => Some(environments::by_name(&mut c, e).await?.id),
        None => None,
    };
    let release = q
        .release
        .as_deref()
        .map(|r| ReleaseId::parse("release", r))
        .transpose()?;
    let mut out = vec![];
    for d in deploys::list(&mut c, app, env, release, limit).await? {
        if caller.roles_in(&mut c, d.project_id).await?.is_member() {
            out.push(shown(d));
        }
    }
    Ok(Json(out))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Only events after this event id.
    pub after: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/deploys/{id}/events", tag = "deploys", params(("id" = i64, Path), EventQuery), responses((status = 200, body = [DeployEvent])))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> ApiResult<Json<Vec<DeployEvent>>> {
    let mut c = state.store.conn().await?;
    let (d, _) = visible_deploy(&mut c, &caller, &id).await?;
    Ok(Json(deploys::events(&mut c, d.id, q.after.unwrap_or(0)).await?))
}

/// Server-sent events: every stored event from the start (so a finished
/// deploy replays), then new ones as they happen, then `end` with the result.
#[utoipa::path(get, path = "/api/v1/deploys/{id}/stream", tag = "deploys", params(("id" = i64, Path)), responses((status = 200, content_type = "text/event-stream")))]
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let (d, _) = visible_deploy(&mut *state.store.conn().await?, &caller, &id).await?;
    let permit = crate::live_events::admit(&caller)?;
    let store = state.store.clone();
    let s = futures::stream::unfold((store, d.id, 0i64, false), |(store, id, after, done)| async move {
        if done {
            return None;
        }
        loop {
            let mut c = store.conn().await.ok()?;
            let evs = deploys::events(&mut c, id, after).await.ok()?;
            if let Some(last) = evs.last().map(|e| e.id) {
                // Everything new in one batch: each event is read once.
                let batch = evs
                    .iter()
                    .filter_map(|e| Event::default().event("step").id(e.id.to_string()).json_data(e).ok())
                    .map(Ok)
                    .collect::<Vec<_>>();
                return Some((batch, (store, id, last, false)));
            }
            let d = deploys::get(&mut c, id).await.ok()?;
            drop(c);
            if deploys::is_final(&d.state) {
                let ev = Event::default()
                    .event("end")
                    .json_data(json!({"state": d.state, "error": d.error}))
                    .ok()?;
                return Some((vec![Ok(ev)], (store, id, after, true)));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    use futures::StreamExt;
    let flat = crate::live_events::hold(s.flat_map(futures::stream::iter), permit);
    Ok(Sse::new(flat).keep_alive(KeepAlive::default()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    /// approve or reject
    pub decision: String,
    #[serde(default)]
    pub comment: String,
}

/// An operator's confirmation (or rejection) of a planned deploy, after
/// seeing the release, the rendered manifests and the diff.
#[utoipa::path(post, path = "/api/v1/deploys/{id}/review", tag = "deploys", params(("id" = i64, Path)), request_body = Review, responses((status = 200, body = Deploy)))]
pub async fn review(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Review>,
) -> ApiResult<Json<Deploy>> {
    let approve = match req.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(ApiError::bad_request("decision", "must be approve or reject")),
    };
    if req.comment.len() > 5000 {
        return Err(ApiError::bad_request("comment", "must be at most 5000 characters"));
    }
    if !approve && req.comment.trim().is_empty() {
        return Err(ApiError::bad_request("comment", "say why the deploy is rejected"));
    }
    let mut tx = state.store.begin().await?;
    let (d, roles) = visible_deploy(&mut tx, &caller, &id).await?;
    let env = environments::get(&mut tx, d.env_id).await?;
    if !roles.has_any(&env.policy.deploy_roles) {
        return Err(ApiError::forbidden(format!(
            "reviewing a deploy to {} needs the role {}",
            env.name,
            env.policy.roles_csv()
        )));
    }
    if d.state != "awaiting_review" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_transition",
            format!("deploy {} is {}, not awaiting review", d.id, d.state),
        )
        .field("state"));
    }
    if approve {
        // Approving applies this release: it must still be the one deploying here.
        let rel = prism_store::releases::get(&mut tx, d.release).await?;
        if rel.parsed_state != prism_domain::ReleaseState::Deploying(d.env_id) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "invalid_transition",
                format!("release {} is {} now; reject this deploy instead", rel.id, rel.state),
            )
            .field("release"));
        }
    }
    let next = if approve { "applying" } else { "rejected" };
    if !deploys::advance(&mut tx, d.id, "awaiting_review", next).await? {
        return Err(ApiError::conflict("the deploy was reviewed meanwhile"));
    }
    deploys::set_review(&mut tx, d.id, &caller.user.username, &req.comment).await?;
    let verb = if approve { "approved" } else { "rejected" };
    deploys::event(
        &mut tx,
        d.id,
        "review",
        &format!("{verb} by {}: {}", caller.user.username, req.comment),
        json!({"decision": req.decision}),
    )
    .await?;
    if approve {
        enqueue(&mut tx, d.id, "applying").await?;
    } else {
        transition_in(
            &mut tx,
            &Who::Engine("review"),
            d.release,
            Move {
                action: Action::DeployFailed,
                note: &format!("rejected by {}: {}", caller.user.username, req.comment),
                build_info: None,
            },
        )
        .await?;
    }
    audit::record(
        &mut tx,
        &caller.origin(),
        &format!("deploy.{verb}"),
        "deploy",
        &d.id.to_string(),
        json!({"comment": req.comment}),
    )
    .await?;
    let d = deploys::get(&mut tx, d.id).await?;
    tx.commit().await?;
    state.job_wakeup.notify_one();
    Ok(Json(shown(d)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// The successful deploy to return to (default: the last one before the current).
    pub to_deploy: Option<i64>,
    #[serde(default)]
    pub note: String,
}

/// Rolls an application's environment back to an earlier successful deploy,
/// applying exactly the objects that deploy applied. Recorded as its own deploy.
#[utoipa::path(post, path = "/api/v1/applications/{name}/environments/{env}/rollback", tag = "deploys",
    params(("name" = String, Path), ("env" = String, Path)), request_body = Rollback, responses((status = 201, body = Deploy)))]
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, env)): Path<(String, String)>,
    ApiJson(req): ApiJson<Rollback>,
) -> ApiResult<(StatusCode, Json<Deploy>)> {
    let mut tx = state.store.begin().await?;
    let (app, roles) = super::applications::visible(&mut tx, &caller, &name).await?;
    let environment = environments::by_name(&mut tx, &env).await?;
    if !roles.has_any(&environment.policy.deploy_roles) {
        return Err(ApiError::forbidden(format!(
            "rolling back {} needs the role {}",
            environment.name,
            environment.policy.roles_csv()
        )));
    }
    // A rollback changes what runs there just like a deploy: a tester's hold stops it too.
    if let Some(h) = prism_store::slots::get(&mut tx, app.id, environment.id)
        .await?
        .view()
        .hold
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "held",
            format!(
                "environment {} is held for testing of {} by {}",
                environment.name, h.release, h.holder
            ),
        )
        .field("environment"));
    }
    let target = match req.to_deploy {
        Some(id) => {
            let d = deploys::get(&mut tx, id)
                .await
                .map_err(|_| ApiError::bad_request("to_deploy", format!("no deploy {id}")))?;
            if d.app_id != app.id || d.env_id != environment.id || d.state != "succeeded" {
                return Err(ApiError::bad_request(
                    "to_deploy",
                    format!("deploy {id} is not a successful deploy of {name} in {env}"),
                ));
            }
            d
        }
        None => {
            let recent = deploys::list(&mut tx, Some(app.id), Some(environment.id), None, 100).await?;
            let mut ok = recent.into_iter().filter(|d| d.state == "succeeded");
            let _current = ok.next();
            ok.next().ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "nothing_to_roll_back_to",
                    format!("{name} has no earlier successful deploy in {env}"),
                )
            })?
        }
    };
    let rb = deploys::create(
        &mut tx,
        deploys::NewDeploy {
            release: target.release,
            app_id: app.id,
            env_id: environment.id,
            kind: "rollback",
            requested_by: &caller.user.username,
            rollback_of: Some(target.id),
            manifests: target.manifests.as_ref(),
        },
    )
    .await?;
    deploys::event(
        &mut tx,
        rb.id,
        "queued",
        &format!(
            "{} rolls {name} in {env} back to {} (deploy {}): {}",
            caller.user.username, target.release, target.id, req.note
        ),
        json!({}),
    )
    .await?;
    enqueue(&mut tx, rb.id, "planning").await?;
    audit::record(&mut tx, &caller.origin(), "deploy.rollback", "deploy", &rb.id.to_string(), json!({"application": name, "environment": env, "to_release": target.release, "to_deploy": target.id, "note": req.note})).await?;
    tx.commit().await?;
    state.job_wakeup.notify_one();
    Ok((StatusCode::CREATED, Json(shown(rb))))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Drift {
    /// The deploy whose objects are compared with the cluster.
    pub deploy: Option<i64>,
    pub drifted: bool,
    #[schema(value_type = Object)]
    pub diff: serde_json::Value,
}

/// Whether the live objects still match the last successful deploy (a dry
/// run of its objects against the cluster), so a hand edit shows up.
#[utoipa::path(get, path = "/api/v1/applications/{name}/environments/{env}/drift", tag = "deploys",
    params(("name" = String, Path), ("env" = String, Path)), responses((status = 200, body = Drift)))]
pub async fn drift(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, env)): Path<(String, String)>,
) -> ApiResult<Json<Drift>> {
    let mut c = state.store.conn().await?;
    let (app, _) = super::applications::visible(&mut c, &caller, &name).await?;
    let environment = environments::by_name(&mut c, &env).await?;
    let Some(last) = deploys::last_succeeded(&mut c, app.id, environment.id, i64::MAX).await? else {
        return Ok(Json(Drift {
            deploy: None,
            drifted: false,
            diff: json!([]),
        }));
    };
    let cluster = crate::services::deploy_plan::cluster_for(&state, &mut c, &environment)
        .await
        .map_err(deploy_error)?;
    drop(c);
    let objects: Vec<crate::services::deploy_plan::PlannedObject> =
        serde_json::from_value(last.manifests.clone().unwrap_or_default()).unwrap_or_default();
    let diff = crate::services::deploy_plan::diff_against_cluster(&cluster, &objects, None)
        .await
        .map_err(deploy_error)?;
    let drifted = diff
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["diff"]["action"] != "unchanged");
    Ok(Json(Drift {
        deploy: Some(last.id),
        drifted,
        diff,
    }))
}

pub fn deploy_error(e: crate::services::deploy_plan::DeployError) -> ApiError {
    use crate::services::deploy_plan::DeployError as D;
    match e {
        D::Manifests(m) => {
            let field = m.problems().first().map(|p| p.template.clone());
            let mut err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_manifests", m.to_string());
            err.field = field;
            err
        }
        D::Kube(k) => ApiError::new(StatusCode::BAD_GATEWAY, "cluster", k.to_string()),
        D::Setup(m) => ApiError::new(StatusCode::CONFLICT, "not_ready", m),
        D::Store(s) => s.into(),
    }
}
