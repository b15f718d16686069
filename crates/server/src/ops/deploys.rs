//! Deploys: started by an operator (the release moves to deploying and the
//! deploy job is queued), reviewed (approve applies, reject fails the
//! release there), rolled back to an earlier success by hand or, when a
//! deploy fails after applying and its environment asks for it,
//! automatically. A rollback deploy is built in one place,
//! [`create_rollback`], for both.

use crate::wire::ToApi;
use prism_api::deploys::{Drift, PassedBy, ReleaseSummary, Review, Rollback, StartDeploy};
use prism_domain::release::Action;
use prism_domain::{ReleaseId, RoleSet};
use prism_store::deploys::{self, Deploy, DeployEvent};
use prism_store::{audit, environments, AnyConnection, Tx};
use serde::Deserialize;
use serde_json::json;

use super::transitions::{transition_in, Move, Who};
use super::windows::Describe;
use super::{access, referenced, Ctx, OpError, OpResult};
use crate::auth::Caller;
use crate::jobs::deploy::enqueue;
use crate::services::deploy_plan::{self, DeployError};
use prism_domain::{DeployKind, DeployState};

/// What a deploy-planning failure is for the caller: manifests that do not
/// render (invalid, naming the template), a cluster that does not answer
/// (upstream), an environment not ready to deploy to (conflict).
pub fn deploy_error(e: DeployError) -> OpError {
    match e {
        DeployError::Manifests(m) => OpError::Invalid {
            field: m.problems().first().map(|p| p.template.clone()),
            message: m.to_string(),
            code: "invalid_manifests",
        },
        DeployError::Kube(k) => OpError::Upstream(k.to_string()),
        DeployError::Setup(m) => OpError::conflict_as("not_ready", m),
        DeployError::Store(s) => s.into(),
    }
}

/// A deploy as people see it: Secret values in its manifests are redacted
/// (the stored copy keeps them for apply and rollback).
pub fn shown(mut d: Deploy) -> Deploy {
    if let Some(m) = d.manifests.as_mut() {
        prism_kube::redact_secrets(m);
    }
    d
}

/// Starts deploying a release into an environment: checks the caller's role
/// and the environment's hold, moves the release to `deploying`, and queues
/// the deploy (plan, review where required, apply, watch).
pub async fn start_deploy(ctx: &Ctx, caller: &Caller, rid: ReleaseId, req: StartDeploy) -> OpResult<Deploy> {
    let mut tx = ctx.store.begin().await?;
    crate::idempotency::claim(&mut tx, caller).await?;
    let env = referenced("environment", environments::by_name(&mut tx, &req.environment).await)?;
    if env.cluster_id.is_none() {
        return Err(OpError::invalid(
            "environment",
            format!("environment {} is not bound to a cluster yet", env.name),
        ));
    }
    let (_, roles) = access::release(&mut tx, caller, rid).await?;
    let admission =
        match super::windows::admit(ctx, &mut tx, caller, roles, &env, req.break_glass_reason.as_deref()).await {
            Ok(a) => a,
            Err(refused) => {
                drop(tx);
                if let Some(detail) = refused.audit {
                    super::windows::audit_refusal(ctx, caller, detail).await?;
                }
                return Err(refused.error);
            }
        };
    let rel = transition_in(
        &mut tx,
        &Who::User(caller),
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
            kind: DeployKind::Deploy,
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
    match &admission {
        super::windows::Admission::Open => {}
        super::windows::Admission::Queued(open) => {
            deploys::event(
                &mut tx,
                d.id,
                "window",
                &format!(
                    "deploying to {} is {}; it is planned and reviewed now and waits for the window",
                    env.name,
                    open.describe()
                ),
                json!({"opens_at": open.opens_at, "opens_local": open.opens_local}),
            )
            .await?;
        }
        super::windows::Admission::BreakGlass { reason, closed_by } => {
            super::windows::record_break_glass(&mut tx, caller, &d, reason, closed_by).await?;
        }
    }
    enqueue(&mut tx, d.id, DeployState::Planning).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "deploy.create",
        "deploy",
        &d.id.to_string(),
        json!({"release": rel.id, "environment": env.name}),
    )
    .await?;
    let d = deploys::get(&mut tx, d.id).await?;
    crate::idempotency::complete(
        &mut tx,
        caller,
        crate::idempotency::Answer::Created,
        &d.clone().to_api(),
    )
    .await?;
    tx.commit().await?;
    ctx.job_wakeup.notify_one();
    Ok(d)
}

/// One deploy the caller may see, with its release's facts; and the caller's roles.
pub async fn get(ctx: &Ctx, caller: &Caller, id: &str) -> OpResult<(Deploy, ReleaseSummary, RoleSet)> {
    let mut c = ctx.store.conn().await?;
    let (deploy, roles) = access::deploy(&mut c, caller, id).await?;
    let deploy = shown(deploy);
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
    Ok((deploy, release_info, roles))
}

/// A deploy the caller may see, as stored (manifests unredacted: for the
/// server's own use, never shown).
pub async fn visible(c: &mut AnyConnection, caller: &Caller, id: &str) -> OpResult<Deploy> {
    Ok(access::deploy(c, caller, id).await?.0)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeployQuery {
    pub application: Option<String>,
    pub environment: Option<String>,
    pub release: Option<String>,
    /// Only deploys of this project's applications.
    pub project: Option<String>,
    /// Only deploys in this state (planning, awaiting_review, ... succeeded).
    pub state: Option<String>,
    /// Keyset cursor: deploys older than this deploy id (the previous page's last).
    pub before: Option<i64>,
    /// Deploys per page (1 to 500, default 50).
    pub limit: Option<i64>,
}

pub async fn list(ctx: &Ctx, caller: &Caller, q: DeployQuery) -> OpResult<Vec<Deploy>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(OpError::invalid("limit", "must be between 1 and 500"));
    }
    let state = q
        .state
        .as_deref()
        .map(|s| {
            DeployState::parse(s).ok_or_else(|| {
                let kinds: Vec<&str> = DeployState::ALL.iter().map(|k| k.as_str()).collect();
                OpError::invalid("state", format!("unknown state {s:?}; one of {}", kinds.join(", ")))
            })
        })
        .transpose()?;
    let mut c = ctx.store.conn().await?;
    let app = match &q.application {
        Some(a) => Some(access::application(&mut c, caller, a).await?.0.id),
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
    let project_id = match &q.project {
        Some(p) => Some(access::project(&mut c, caller, p).await?.id),
        None => None,
    };
    let filter = deploys::DeployFilter {
        visible_to: access::visibility(caller),
        app_id: app,
        env_id: env,
        release,
        project_id,
        state,
        before: q.before,
        limit,
    };
    Ok(deploys::list_filtered(&mut c, &filter)
        .await?
        .into_iter()
        .map(shown)
        .collect())
}

/// A deploy's steps after event id `after`.
pub async fn events(ctx: &Ctx, caller: &Caller, id: &str, after: Option<i64>) -> OpResult<Vec<DeployEvent>> {
    let mut c = ctx.store.conn().await?;
    let (d, _) = access::deploy(&mut c, caller, id).await?;
    Ok(deploys::events(&mut c, d.id, after.unwrap_or(0)).await?)
}

/// A reviewer's approval (or rejection) of a planned deploy, after seeing
/// the release, the rendered manifests and the diff: one vote under the
/// environment's approval policy (see [`super::approvals::vote`]).
pub async fn review(ctx: &Ctx, caller: &Caller, id: &str, req: Review) -> OpResult<Deploy> {
    let approve = match req.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(OpError::invalid("decision", "must be approve or reject")),
    };
    super::approvals::vote(ctx, caller, id, approve, &req.comment).await
}

/// The one way a rollback deploy is made: a deploy of `target`'s release
/// applying exactly the objects `target` applied, in its application and
/// environment, queued for planning. `rollback_of` is the deploy it undoes
/// (or returns to, for one asked for by hand).
pub async fn create_rollback(
    tx: &mut Tx,
    target: &Deploy,
    requested_by: &str,
    rollback_of: i64,
) -> prism_store::Result<Deploy> {
    let rb = deploys::create(
        tx,
        deploys::NewDeploy {
            release: target.release,
            app_id: target.app_id,
            env_id: target.env_id,
            kind: DeployKind::Rollback,
            requested_by,
            rollback_of: Some(rollback_of),
            manifests: target.manifests.as_ref(),
        },
    )
    .await?;
    enqueue(tx, rb.id, DeployState::Planning).await?;
    Ok(rb)
}

/// After `failed` failed with `reason`: returns its environment to the last
/// successful deploy before it, when there is one. The caller decided that
/// the environment asks for it and that `failed` had applied objects.
pub async fn auto_rollback(tx: &mut Tx, failed: &Deploy, reason: &str) -> prism_store::Result<Option<Deploy>> {
    let Some(prev) = deploys::last_succeeded(tx, failed.app_id, failed.env_id, failed.id).await? else {
        return Ok(None);
    };
    let rb = create_rollback(tx, &prev, "system:auto-rollback", failed.id).await?;
    deploys::event(
        tx,
        failed.id,
        "rollback",
        &format!("rolling back to {} (deploy {})", prev.release, rb.id),
        json!({"rollback_deploy": rb.id}),
    )
    .await?;
    deploys::event(
        tx,
        rb.id,
        "plan",
        &format!("automatic rollback after deploy {} failed: {reason}", failed.id),
        json!({}),
    )
    .await?;
    let why = format!("deploy {} of {} failed: {reason}", failed.id, failed.release);
    crate::services::notices::announce(
        tx,
        crate::services::notices::Event::deploy(
            prism_notify::NoticeKind::AutoRollback,
            &rb,
            "system:auto-rollback",
            Some(&why),
        ),
    )
    .await?;
    Ok(Some(rb))
}

/// Rolls an application's environment back to an earlier successful deploy,
/// applying exactly the objects that deploy applied. Recorded as its own deploy.
pub async fn rollback(ctx: &Ctx, caller: &Caller, name: &str, env: &str, req: Rollback) -> OpResult<Deploy> {
    let mut tx = ctx.store.begin().await?;
    crate::idempotency::claim(&mut tx, caller).await?;
    let (app, roles) = access::application(&mut tx, caller, name).await?;
    let environment = environments::by_name(&mut tx, env).await?;
    if !access::may_deploy(roles, &environment) {
        return Err(OpError::forbidden(format!(
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
        return Err(OpError::conflict_as(
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
                .map_err(|_| OpError::invalid("to_deploy", format!("no deploy {id}")))?;
            if d.app_id != app.id || d.env_id != environment.id || d.state != DeployState::Succeeded {
                return Err(OpError::invalid(
                    "to_deploy",
                    format!("deploy {id} is not a successful deploy of {name} in {env}"),
                ));
            }
            d
        }
        None => {
            let recent = deploys::list(&mut tx, Some(app.id), Some(environment.id), None, 100).await?;
            let mut ok = recent.into_iter().filter(|d| d.state == DeployState::Succeeded);
            let _current = ok.next();
            ok.next().ok_or_else(|| {
                OpError::conflict_as(
                    "nothing_to_roll_back_to",
                    format!("{name} has no earlier successful deploy in {env}"),
                )
            })?
        }
    };
    let rb = create_rollback(&mut tx, &target, &caller.user.username, target.id).await?;
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
    audit::record(&mut tx, &caller.origin(), "deploy.rollback", "deploy", &rb.id.to_string(), json!({"application": name, "environment": env, "to_release": target.release, "to_deploy": target.id, "note": req.note})).await?;
    let rb = shown(rb);
    crate::idempotency::complete(
        &mut tx,
        caller,
        crate::idempotency::Answer::Created,
        &rb.clone().to_api(),
    )
    .await?;
    tx.commit().await?;
    ctx.job_wakeup.notify_one();
    Ok(rb)
}

/// How many successful deploys the application has in the environment
/// (among the last 100): a rollback needs two.
pub async fn successes(c: &mut AnyConnection, app_id: i64, env_id: i64) -> OpResult<usize> {
    Ok(deploys::list(c, Some(app_id), Some(env_id), None, 100)
        .await?
        .iter()
        .filter(|d| d.state == DeployState::Succeeded)
        .count())
}

/// What should run while `running` rolls out: its own plan (what it applied
/// first), except the objects the rollout drives step by step: a canary's
/// stable Deployment is the last success's (its replicas aside), blue-green's
/// live Service is left out (pinned and switched by the rollout) and its new
/// colour counts once the rollout started it.
fn rollout_baseline(running: &Deploy, last: Vec<deploy_plan::PlannedObject>) -> Vec<deploy_plan::PlannedObject> {
    use prism_kube::progressive::progress::Progress;
    use prism_kube::progressive::strategy::Strategy;
    let Some(p) = running
        .rollout
        .clone()
        .and_then(|v| serde_json::from_value::<Progress>(v).ok())
    else {
        return last;
    };
    let planned = deploy_plan::stored_objects(Some(running));
    let Ok(m) = crate::services::rollout_shape::main_objects(&p.strategy, &planned) else {
        return last;
    };
    let main = planned[m.deployment].reference.clone();
    let service = m.service.map(|i| planned[i].reference.clone());
    let mut out: Vec<deploy_plan::PlannedObject> = planned
        .into_iter()
        .filter(|o| match &p.strategy {
            Strategy::BlueGreen { .. } => Some(&o.reference) != service.as_ref() && (o.reference != main || p.applied),
            _ => o.reference != main,
        })
        .collect();
    if matches!(p.strategy, Strategy::Canary { .. }) {
        out.extend(last.into_iter().filter(|o| o.reference == main));
    }
    out
}

/// Marks the changes a running rollout makes on purpose as expected.
fn expected_by_rollout(diff: &mut serde_json::Value, rollout: &serde_json::Value, main: Option<&str>) {
    let Some(kind) = rollout["strategy"]["type"].as_str() else {
        return;
    };
    // The stable Deployment: the one Deployment the rollout's deploy planned.
    let stable = |name: &str| main == Some(name);
    let expected = |object: &str, name: &str, path: &str| match kind {
        "canary" => object == "Deployment" && stable(name) && path == "spec.replicas",
        "blue-green" => object == "Service" && path.ends_with("prism.io/release"),
        _ => false,
    };
    for e in diff.as_array_mut().into_iter().flatten() {
        let object = e["object"]["kind"].as_str().unwrap_or_default().to_owned();
        let name = e["object"]["name"].as_str().unwrap_or_default().to_owned();
        let Some(changes) = e["diff"]["changes"].as_array_mut() else {
            continue;
        };
        let before = changes.len();
        changes.retain(|c| !expected(&object, &name, c["path"].as_str().unwrap_or_default()));
        if changes.is_empty() && before > 0 {
            e["diff"]["action"] = json!("unchanged");
            e["note"] = json!("expected while the rollout runs");
        }
    }
}

/// Whether the live objects still match the last successful deploy (a dry
/// run of its objects against the cluster), so a hand edit shows up.
pub async fn drift(ctx: &Ctx, caller: &Caller, name: &str, env: &str) -> OpResult<Drift> {
    let mut c = ctx.store.conn().await?;
    let (app, _) = access::application(&mut c, caller, name).await?;
    let environment = environments::by_name(&mut c, env).await?;
    let running = deploys::list(&mut c, Some(app.id), Some(environment.id), None, 5)
        .await?
        .into_iter()
        .find(|d| d.state.has_applied() && d.rollout.is_some());
    let Some(last) = deploys::last_succeeded(&mut c, app.id, environment.id, i64::MAX).await? else {
        return Ok(Drift {
            deploy: None,
            drifted: false,
            diff: json!([]),
            rollout_deploy: None,
        });
    };
    let cluster = deploy_plan::cluster_for(ctx, &mut c, &environment)
        .await
        .map_err(deploy_error)?;
    let mut objects = deploy_plan::stored_objects(Some(&last));
    if let Some(r) = &running {
        objects = rollout_baseline(r, objects);
    }
    // Application secrets are stored without their data: compare what was sent.
    let objects = crate::services::app_secrets::materialize(&mut c, &ctx.secrets, app.project_id, &objects)
        .await
        .map_err(deploy_error)?;
    drop(c);
    let mut diff = deploy_plan::diff_against_cluster(&cluster, &objects, None)
        .await
        .map_err(deploy_error)?;
    if let Some(r) = &running {
        let main = deploy_plan::stored_objects(Some(r))
            .into_iter()
            .find(|o| o.reference.kind == "Deployment")
            .map(|o| o.reference.name);
        if let Some(progress) = &r.rollout {
            expected_by_rollout(&mut diff, progress, main.as_deref());
        }
    }
    let drifted = diff
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["diff"]["action"] != "unchanged");
    Ok(Drift {
        deploy: Some(last.id),
        drifted,
        diff,
        rollout_deploy: running.map(|d| d.id),
    })
}
