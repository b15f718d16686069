//! The deploy job: advances one deploy through its persisted states.
//!
//! ```text
//! planning -> awaiting_review (approval policy) -> applying -> watching -> succeeded
//!                              \-> rejected                          \-> failed -> rollback deploy
//! planning | awaiting_review -> waiting_window (deploying closed) -> applying
//! ```
//!
//! A deploy waiting for its window has a job queued for when the window
//! opens (see `ops::windows::park`); that run finds it open and applies, or
//! queues itself again.
//!
//! Each state is written before its work starts, and each step is safe to
//! run again (apply is idempotent, watching only reads), so a server killed
//! mid-deploy resumes where it stopped when the job's lease lapses.

use std::time::{Duration, Instant};

use prism_domain::release::Action;
use prism_jobs::{Job, Quarantine};
use prism_kube::{rollout_status, RolloutStatus};
use prism_store::deploys::{self, Deploy};
use prism_store::{audit, environments, slots};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Cancel, JobError};
use crate::ops::transitions::{transition_in, Move, Who};
use crate::services::deploy_plan::{self, cluster_for, DeployError, PlannedObject};
use crate::services::notices::{announce, Event};
use crate::state::AppState;
use prism_domain::{DeployEvent, DeployFailure, DeployKind, DeployState};
use prism_kube::progressive::progress::Progress;
use prism_kube::progressive::strategy::Strategy;
use prism_notify::NoticeKind;

pub const DEPLOY: &str = DeployJob::KIND;

/// The job that advances one deploy from the state it was enqueued in.
#[derive(Debug, Serialize, Deserialize)]
pub struct DeployJob {
    pub deploy_id: i64,
    /// The deploy's state when enqueued (deduplicates a double click).
    #[serde(default)]
    pub state: String,
}

impl Job for DeployJob {
    const KIND: &'static str = "deploy";
    const MAX_ATTEMPTS: i64 = 3;
    type Context = AppState;

    fn dedup_key(&self) -> Option<String> {
        Some(format!("deploy:{}:{}", self.deploy_id, self.state))
    }

    async fn run(&self, ctx: &AppState, cancel: Cancel) -> Result<(), JobError> {
        // A look at a waiting deploy acts only while it waits: the run that
        // opened it carries on, any other look (a schedule change queued one
        // too) finds it moved on and leaves it to that run.
        if self.state.starts_with(DeployState::WaitingWindow.as_str()) {
            let d = deploys::get(&mut *ctx.store.conn().await?, self.deploy_id).await?;
            if d.state != DeployState::WaitingWindow {
                return Ok(());
            }
        }
        run(ctx, self.deploy_id, cancel).await
    }

    async fn quarantined(&self, ctx: &AppState, q: &Quarantine) -> Result<(), JobError> {
        let d = deploys::get(&mut *ctx.store.conn().await?, self.deploy_id).await?;
        let reason = format!(
            "crashed: {}; its events: /api/v1/deploys/{}/events",
            q.describe().replacen("during it", "during this deploy", 1),
            d.id
        );
        event(
            ctx,
            d.id,
            "crashed",
            &reason,
            json!({"failure_kind": "crashed", "job": q.job_id}),
        )
        .await?;
        fail(ctx, &d, DeployFailure::Crashed, &reason).await
    }
}

/// Enqueues the job that looks at a deploy waiting for its window at
/// `run_at` (system time); keyed by that time, so each look is its own job.
pub async fn enqueue_wait(c: &mut prism_store::AnyConnection, deploy_id: i64, run_at: i64) -> prism_store::Result<()> {
    let job = DeployJob {
        deploy_id,
        state: format!("{}@{run_at}", DeployState::WaitingWindow.as_str()),
    };
    prism_jobs::enqueue_at(c, &job, Some(run_at)).await?;
    Ok(())
}

/// A deploy waiting for its window: true when it opened (the deploy is
/// applying now), false when it still waits (the next look is queued).
async fn step_wait(state: &AppState, d: &Deploy) -> Result<bool, StepError> {
    use crate::ops::windows::{gate, park, Gate};
    let mut tx = state.store.begin().await?;
    let g = gate(&mut tx, &state.clock, d)
        .await
        .map_err(|e| StepError::Failed(DeployFailure::Internal, e.to_string()))?;
    match g {
        Gate::Apply => {
            if !deploys::advance(&mut tx, d.id, DeployState::WaitingWindow, DeployEvent::WindowOpened).await? {
                return Ok(false);
            }
            prism_store::governance::set_opens(&mut tx, d.id, None).await?;
            deploys::event(
                &mut tx,
                d.id,
                "window",
                &format!("deploying to {} opened; applying", d.environment),
                json!({}),
            )
            .await?;
        }
        Gate::Wait(open) => {
            // Still closed (a pinned clock, a changed schedule): look again later.
            if d.opens_at != open.opens_at {
                park(&mut tx, &state.clock, d, &open).await?;
            } else {
                let at = open.opens_at.unwrap_or(state.clock.now_ms() + 3_600_000);
                enqueue_wait(&mut tx, d.id, state.clock.recheck_at(at)).await?;
            }
            tx.commit().await?;
            return Ok(false);
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// Enqueues the job that advances `deploy_id` (deduplicated per state, so
/// a double click enqueues one job).
pub async fn enqueue(
    c: &mut prism_store::AnyConnection,
    deploy_id: i64,
    state: DeployState,
) -> prism_store::Result<()> {
    let job = DeployJob {
        deploy_id,
        state: state.as_str().to_owned(),
    };
    prism_jobs::enqueue(c, &job).await?;
    Ok(())
}

pub(super) async fn event(
    state: &AppState,
    id: i64,
    step: &str,
    message: &str,
    data: serde_json::Value,
) -> Result<(), JobError> {
    let mut c = state.store.conn().await?;
    deploys::event(&mut c, id, step, message, data).await?;
    Ok(())
}

async fn run(state: &AppState, id: i64, mut cancel: Cancel) -> Result<(), JobError> {
    let mut first = true;
    loop {
        let d = deploys::get(&mut *state.store.conn().await?, id).await?;
        let was_first = std::mem::replace(&mut first, false);
        let outcome = match d.state {
            // Parked by this run's plan: the look at its window is queued already.
            DeployState::WaitingWindow if !was_first => return Ok(()),
            DeployState::WaitingWindow => match step_wait(state, &d).await {
                Ok(true) => continue,
                Ok(false) => return Ok(()),
                Err(e) => Err(e),
            },
            DeployState::Planning => step_plan(state, &d).await,
            DeployState::Applying => step_apply(state, &d).await,
            DeployState::Watching => step_watch(state, &d, &mut cancel).await,
            // Waiting for a person, or done: nothing to do.
            DeployState::AwaitingReview
            | DeployState::Succeeded
            | DeployState::Failed
            | DeployState::Rejected
            | DeployState::Cancelled => return Ok(()),
        };
        if let Err(e) = outcome {
            match e {
                StepError::Interrupted => return Err(JobError::Interrupted),
                // The runner retries with backoff; if every attempt fails, the
                // maintenance sweep fails the deploy with this reason.
                // Before anything is applied, an unreachable cluster fails the deploy
                // at once (nothing to protect; the operator sees why and retries).
                StepError::Retry(m) if d.state != DeployState::Planning => return Err(JobError::Transient(m)),
                StepError::Retry(_) => {}
                StepError::Failed(..) => {}
            }
            // A rollout that stops sends traffic back first; a cluster that
            // does not answer for that is tried again (the job's retries).
            if let Err(StepError::Retry(m)) = super::rollout::restore_after_failure(state, &d, &e.to_string()).await {
                return Err(JobError::Transient(m));
            }
            fail(state, &d, e.kind(), &e.to_string()).await?;
            return Ok(());
        }
    }
}

pub(super) enum StepError {
    Interrupted,
    /// Worth another attempt (the cluster did not answer); the job retries.
    Retry(String),
    Failed(DeployFailure, String),
}

impl StepError {
    fn kind(&self) -> DeployFailure {
        match self {
            StepError::Interrupted => DeployFailure::Interrupted,
            StepError::Retry(_) => DeployFailure::Unreachable,
            StepError::Failed(kind, _) => *kind,
        }
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::Interrupted => f.write_str("interrupted"),
            StepError::Retry(m) => f.write_str(m),
            StepError::Failed(_, m) => f.write_str(m),
        }
    }
}

impl From<DeployError> for StepError {
    fn from(e: DeployError) -> Self {
        let kind = match &e {
            DeployError::Kube(prism_kube::KubeError::Unreachable(_)) => return StepError::Retry(e.to_string()),
            DeployError::Kube(_) => DeployFailure::Apply,
            DeployError::Setup(_) | DeployError::Manifests(_) => DeployFailure::Render,
            DeployError::Store(_) => DeployFailure::Internal,
        };
        StepError::Failed(kind, e.to_string())
    }
}
impl From<prism_store::StoreError> for StepError {
    fn from(e: prism_store::StoreError) -> Self {
        StepError::Failed(DeployFailure::Internal, e.to_string())
    }
}
impl From<JobError> for StepError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::Interrupted => StepError::Interrupted,
            other => StepError::Failed(DeployFailure::Internal, other.to_string()),
        }
    }
}

async fn step_plan(state: &AppState, d: &Deploy) -> Result<(), StepError> {
    event(
        state,
        d.id,
        "plan",
        "rendering and validating manifests, diffing against the cluster",
        json!({}),
    )
    .await?;
    // A rollback restores what ran before at once; a deploy rolls out the
    // way its application's environment says (canary, blue-green, rolling).
    let strategy = if d.kind == DeployKind::Deploy {
        let mut c = state.store.conn().await?;
        crate::ops::rollouts::strategy_for(&mut c, d.app_id, d.env_id)
            .await
            .map_err(|e| StepError::Failed(DeployFailure::Internal, e.to_string()))?
    } else if returns_to_blue_green(d) {
        // Back to a blue-green colour: the same switch, at once (no gates,
        // no wait), so the Service never points at pods not yet ready.
        Strategy::BlueGreen {
            preview: false,
            gates: vec![],
            manual: false,
            scale_down_delay_seconds: 0,
        }
    } else {
        Strategy::Rolling
    };
    let (template_version, objects, diff) = deploy_plan::plan(state, d, &strategy).await?;
    let progress = strategy.is_progressive().then(|| {
        let replicas = objects
            .iter()
            .find(|o| o.reference.kind == "Deployment")
            .and_then(|o| o.object.pointer("/spec/replicas"))
            .and_then(|v| v.as_i64())
            .unwrap_or(1);
        Progress::new(strategy.clone(), i32::try_from(replicas).unwrap_or(1))
    });
    let mut tx = state.store.begin().await?;
    let env = environments::get(&mut tx, d.env_id).await?;
    let manifests = serde_json::to_value(&objects).expect("planned objects serialise");
    // Only the run that still finds the deploy planning writes its plan: a
    // stale instance whose lease lapsed must not replace a reviewed plan.
    let (policy, _) = prism_store::governance::effective_policy(&mut tx, env.id, &env.policy, d.project_id).await?;
    let review = d.kind.needs_review(policy.required > 0);
    // Without review it is ready now: deploying may be closed (a rollback
    // restores what ran before and never waits for a window).
    let gate = if review || d.kind == DeployKind::Rollback {
        crate::ops::windows::Gate::Apply
    } else {
        crate::ops::windows::gate(&mut tx, &state.clock, d)
            .await
            .map_err(|e| StepError::Failed(DeployFailure::Internal, e.to_string()))?
    };
    let planned = match gate {
        crate::ops::windows::Gate::Wait(_) => DeployEvent::Wait,
        crate::ops::windows::Gate::Apply => DeployEvent::Planned { review },
    };
    if !deploys::advance(&mut tx, d.id, DeployState::Planning, planned).await? {
        return Ok(());
    }
    deploys::set_plan(&mut tx, d.id, template_version, &manifests, &diff).await?;
    if let Some(p) = &progress {
        deploys::set_rollout(&mut tx, d.id, &serde_json::to_value(p).expect("progress serialises")).await?;
        deploys::event(
            &mut tx,
            d.id,
            "plan",
            &format!("rolls out as {}", describe(&p.strategy)),
            json!({"strategy": p.strategy}),
        )
        .await?;
    }
    let summary = diff_summary(&diff);
    deploys::event(
        &mut tx,
        d.id,
        "plan",
        &format!("planned {} object(s): {summary}", objects.len()),
        json!({"diff": diff}),
    )
    .await?;
    if review {
        deploys::event(
            &mut tx,
            d.id,
            "review",
            &format!("waiting for {} approval(s) by {}", policy.required, policy.roles_text()),
            json!({"need": policy.required}),
        )
        .await?;
        crate::ops::governance_events::emit(
            &mut tx,
            &prism_store::audit::Origin::system("deploy"),
            crate::ops::governance_events::GovernanceEvent::DeployWaitingForApproval {
                deploy: d.id,
                environment: &d.environment,
                need: policy.required,
            },
        )
        .await?;
    }
    if let crate::ops::windows::Gate::Wait(open) = &gate {
        crate::ops::windows::park(&mut tx, &state.clock, d, open).await?;
    }
    tx.commit().await?;
    Ok(())
}

fn diff_summary(diff: &serde_json::Value) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for e in diff.as_array().into_iter().flatten() {
        *counts
            .entry(e["diff"]["action"].as_str().unwrap_or("?").to_owned())
            .or_insert(0) += 1;
    }
    counts
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a rollback returns to what a blue-green deploy applied (a
/// Service pinned to a release).
fn returns_to_blue_green(d: &Deploy) -> bool {
    planned(d).is_ok_and(|objects| {
        objects.iter().any(|o| {
            o.reference.kind == "Service"
                && !o.reference.name.ends_with("-preview")
                && o.object
                    .pointer("/spec/selector")
                    .and_then(|s| s.get(prism_kube::progressive::shape::RELEASE_LABEL))
                    .is_some()
        })
    })
}

/// `canary 10% -> 50% -> 100%`, `blue-green (old version kept 300 s)`.
fn describe(s: &Strategy) -> String {
    match s {
        Strategy::Rolling => "a rolling update".into(),
        Strategy::Canary { steps } => format!(
            "a canary by replica share: {}",
            steps
                .iter()
                .map(|s| format!("{}%", s.weight))
                .collect::<Vec<_>>()
                .join(" -> ")
        ),
        Strategy::BlueGreen {
            scale_down_delay_seconds,
            ..
        } => format!("blue-green by Service switch (the old version kept {scale_down_delay_seconds} s after it)"),
    }
}

/// The strategy a planned deploy rolls out with (rolling without one).
fn progress_of(d: &Deploy) -> Option<Progress> {
    d.rollout
        .clone()
        .and_then(|v| serde_json::from_value::<Progress>(v).ok())
        .filter(|p| p.strategy.is_progressive())
}

fn planned(d: &Deploy) -> Result<Vec<PlannedObject>, StepError> {
    serde_json::from_value(d.manifests.clone().unwrap_or_default())
        .map_err(|e| StepError::Failed(DeployFailure::Internal, format!("stored manifests unreadable: {e}")))
}

async fn step_apply(state: &AppState, d: &Deploy) -> Result<(), StepError> {
    let objects = planned(d)?;
    let mut c = state.store.conn().await?;
    let env = environments::get(&mut c, d.env_id).await?;
    let cluster = cluster_for(state, &mut c, &env).await?;
    // Isolation checked again at apply time: another application may have
    // claimed an Ingress host or a namespace while this deploy awaited review.
    let app = prism_store::apps::get(&mut c, d.app_id).await?;
    crate::services::isolation::check(&mut c, &cluster, &env, &app, &objects).await?;
    // The application secrets' data, from the sealed versions the plan named.
    let sendable = crate::services::app_secrets::materialize(&mut c, &state.secrets, d.project_id, &objects).await?;
    drop(c);
    // Checked again at apply time: someone may have created a same-named object since the plan.
    deploy_plan::check_ownership(&cluster, &objects).await?;
    // The Deployment (and blue-green's live Service) are the rollout's to
    // apply, step by step. Pruning waits until the new pods are ready (step_watch).
    let held_back: Vec<prism_manifests::ObjectRef> = match &progress_of(d) {
        Some(p) => {
            let m = crate::services::rollout_shape::main_objects(&p.strategy, &objects)?;
            std::iter::once(m.deployment)
                .chain(m.service.filter(|_| matches!(p.strategy, Strategy::BlueGreen { .. })))
                .map(|i| objects[i].reference.clone())
                .collect()
        }
        None => vec![],
    };
    for o in sendable.iter().filter(|o| !held_back.contains(&o.reference)) {
        cluster
            .apply(&o.reference, &o.object, false)
            .await
            .map_err(DeployError::from)?;
        event(
            state,
            d.id,
            "apply",
            &format!("applied {}", o.reference),
            json!({"object": o.reference}),
        )
        .await?;
    }
    let mut c = state.store.conn().await?;
    deploys::advance(&mut c, d.id, DeployState::Applying, DeployEvent::Applied).await?;
    Ok(())
}

/// A canary Deployment (`<name>-canary`, this application's, on the canary
/// track) left by a canary deploy that failed: a rolling deploy (the
/// automatic rollback among them) takes its pods out of the Service.
async fn remove_leftover_canaries(
    state: &AppState,
    d: &Deploy,
    cluster: &prism_kube::Cluster,
    objects: &[PlannedObject],
) -> Result<(), StepError> {
    use prism_kube::progressive::shape::{CANARY_SUFFIX, TRACK_LABEL};
    for o in objects.iter().filter(|o| o.reference.kind == "Deployment") {
        let r = prism_manifests::ObjectRef {
            name: format!("{}{CANARY_SUFFIX}", o.reference.name),
            ..o.reference.clone()
        };
        if objects.iter().any(|p| p.reference == r) {
            continue;
        }
        let Some(live) = cluster.get(&r).await.map_err(DeployError::from)? else {
            continue;
        };
        let canary = live["metadata"]["labels"][TRACK_LABEL] == "canary";
        if canary && deploy_plan::owned_like(&live, &o.object) {
            let uid = live["metadata"]["uid"].as_str().map(String::from);
            cluster.delete(&r, uid).await.map_err(DeployError::from)?;
            event(
                state,
                d.id,
                "prune",
                &format!("removed {r}, left by a canary"),
                json!({"object": r}),
            )
            .await?;
        }
    }
    Ok(())
}

/// Deletes what the previous successful deploy applied and this one does
/// not (the application's secrets of earlier deploys wait until the rollout
/// is complete: the old pods still read them).
async fn prune(
    state: &AppState,
    d: &Deploy,
    cluster: &prism_kube::Cluster,
    objects: &[PlannedObject],
    previous: Option<&Deploy>,
) -> Result<(), StepError> {
    let deferred: Vec<PlannedObject> = deploy_plan::stored_objects(previous)
        .into_iter()
        .filter(crate::services::app_secrets::is_managed_secret)
        .collect();
    for (r, uid) in deploy_plan::prune_candidates(cluster, objects, previous).await? {
        if deferred.iter().any(|o| o.reference == r) {
            continue;
        }
        cluster.delete(&r, uid).await.map_err(DeployError::from)?;
        event(state, d.id, "prune", &format!("pruned {r}"), json!({"object": r})).await?;
    }
    Ok(())
}

/// Longest wait on a rolling-out object's watch before its pods (whose
/// waiting reasons the object does not show) are looked at again.
const WATCH_SLICE: Duration = Duration::from_secs(2);

async fn step_watch(state: &AppState, d: &Deploy, cancel: &mut Cancel) -> Result<(), StepError> {
    let objects = planned(d)?;
    let mut c = state.store.conn().await?;
    let env = environments::get(&mut c, d.env_id).await?;
    let cluster = cluster_for(state, &mut c, &env).await?;
    let previous = deploys::last_succeeded(&mut c, d.app_id, d.env_id, d.id).await?;
    drop(c);
    if progress_of(d).is_some() {
        match super::rollout::drive(state, d, &cluster, &objects, cancel).await? {
            super::rollout::Ending::Aborted(kind, why) => return Err(StepError::Failed(kind, why)),
            super::rollout::Ending::Done => prune(state, d, &cluster, &objects, previous.as_ref()).await?,
        }
    }
    // Every object that rolls out pods: Deployments, StatefulSets, DaemonSets.
    for o in objects
        .iter()
        .filter(|o| rollout_status(&o.reference.kind, &o.object).is_some())
    {
        let deadline_s = o
            .object
            .pointer("/spec/progressDeadlineSeconds")
            .and_then(|v| v.as_i64())
            .unwrap_or(600);
        // Backstop in case the controller never reports: its deadline plus a margin.
        let give_up = Instant::now() + Duration::from_secs(deadline_s as u64 + 60);
        let mut last = String::new();
        loop {
            let live = cluster
                .get(&o.reference)
                .await
                .map_err(DeployError::from)?
                .ok_or_else(|| {
                    StepError::Failed(
                        DeployFailure::Rollout,
                        format!("{} disappeared during the rollout", o.reference),
                    )
                })?;
            let status = rollout_status(&o.reference.kind, &live).expect("filtered to kinds that roll out");
            let selector = live
                .pointer("/spec/selector/matchLabels")
                .and_then(|m| m.as_object())
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let ns = o.reference.namespace.clone().unwrap_or_default();
            let problems = if matches!(status, RolloutStatus::Complete { .. }) {
                vec![]
            } else {
                cluster.pod_problems(&ns, &selector).await.unwrap_or_default()
            };
            let line = format!("{status:?} {problems:?}");
            if line != last {
                let message = match &status {
                    RolloutStatus::Progressing { message, .. } => message.clone(),
                    RolloutStatus::Complete { replicas } => {
                        format!("rollout complete: {replicas} replica(s) available")
                    }
                    RolloutStatus::Failed { message } => message.clone(),
                };
                event(
                    state,
                    d.id,
                    "rollout",
                    &format!("{}: {message}", o.reference),
                    json!({"status": status, "pods": problems}),
                )
                .await?;
                last = line;
            }
            match status {
                RolloutStatus::Complete { .. } => break,
                RolloutStatus::Failed { message } => {
                    let why = if problems.is_empty() {
                        message
                    } else {
                        format!("{message}; {}", problems.join("; "))
                    };
                    return Err(StepError::Failed(
                        DeployFailure::Rollout,
                        format!("{}: {why}", o.reference),
                    ));
                }
                RolloutStatus::Progressing { .. } if Instant::now() > give_up => {
                    return Err(StepError::Failed(
                        DeployFailure::Rollout,
                        format!(
                            "{}: rollout did not finish in time; {}",
                            o.reference,
                            problems.join("; ")
                        ),
                    ));
                }
                RolloutStatus::Progressing { .. } => {
                    // Until the object changes (a watch, not reading it ten
                    // times a second: 32 deploys polling at once were the
                    // API server's main load), or WATCH_SLICE passes, after
                    // which its pods are looked at again.
                    let version = live
                        .pointer("/metadata/resourceVersion")
                        .and_then(|v| v.as_str())
                        .unwrap_or_default();
                    if let Err(e) = cancel
                        .until(cluster.wait_for_change(&o.reference, version, WATCH_SLICE))
                        .await?
                    {
                        tracing::debug!(deploy = d.id, error = %e, "watch refused; reading the object again shortly");
                        cancel.sleep(Duration::from_millis(200)).await?;
                    }
                }
            }
        }
    }
    // What the previous deploy ran and this one does not goes only now that
    // the new pods are ready (a blue-green colour or a canary left behind
    // may be all the Service reaches until then).
    if progress_of(d).is_none() {
        prune(state, d, &cluster, &objects, previous.as_ref()).await?;
        remove_leftover_canaries(state, d, &cluster, &objects).await?;
    }
    prune_old_secrets(state, d, &cluster, &objects).await?;
    succeed(state, d).await
}

/// After a complete rollout, the Secrets Prism made for the application's
/// secrets in earlier deploys go (a rollback re-creates the one it needs
/// from the sealed versions).
async fn prune_old_secrets(
    state: &AppState,
    d: &Deploy,
    cluster: &prism_kube::Cluster,
    objects: &[PlannedObject],
) -> Result<(), StepError> {
    let Some(namespace) = objects
        .iter()
        .find(|o| o.reference.kind == "Deployment")
        .and_then(|o| o.reference.namespace.clone())
    else {
        return Ok(());
    };
    let stale =
        crate::services::app_secrets::stale(cluster, &namespace, &d.application, &d.environment, objects).await?;
    for r in stale {
        cluster.delete(&r, None).await.map_err(DeployError::from)?;
        event(
            state,
            d.id,
            "prune",
            &format!("pruned {r} (secrets of an earlier deploy)"),
            json!({"object": r}),
        )
        .await?;
    }
    Ok(())
}

async fn succeed(state: &AppState, d: &Deploy) -> Result<(), StepError> {
    let mut tx = state.store.begin().await?;
    if !deploys::advance(&mut tx, d.id, DeployState::Watching, DeployEvent::RolledOut).await? {
        return Ok(());
    }
    if d.kind == DeployKind::Deploy {
        match transition_in(
            &mut tx,
            &Who::Engine("deploy"),
            d.release,
            Move {
                action: Action::DeploySucceeded,
                note: &format!("deploy {}", d.id),
                build_info: None,
            },
        )
        .await
        {
            // The rollout did finish; the release moved on meanwhile (e.g. abandoned).
            // Record that instead of failing the deploy (which would roll it back).
            Ok(_) => {}
            Err(e) if e.is_refusal() => {
                deploys::event(
                    &mut tx,
                    d.id,
                    "done",
                    &format!("the release could not be marked deployed: {e}"),
                    json!({}),
                )
                .await?;
            }
            Err(e) => return Err(StepError::Failed(DeployFailure::Internal, e.to_string())),
        }
    } else {
        slots::set_current(&mut tx, d.app_id, d.env_id, d.release.seq()).await?;
    }
    deploys::event(&mut tx, d.id, "done", "deploy succeeded", json!({})).await?;
    audit::record(
        &mut tx,
        &prism_store::audit::Origin::system("deploy"),
        &format!("{}.succeeded", d.kind),
        "deploy",
        &d.id.to_string(),
        json!({"release": d.release, "environment": d.environment}),
    )
    .await?;
    let why = d.rollback_of.map(|of| format!("rollback after deploy {of}"));
    announce(
        &mut tx,
        Event::deploy(NoticeKind::DeploySucceeded, d, &d.requested_by, why.as_deref()),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Marks the deploy failed with the reason, fails the release in the
/// environment, and, when the environment asks for it, starts a rollback to
/// the last successful deploy there.
pub(crate) async fn fail(state: &AppState, d: &Deploy, kind: DeployFailure, reason: &str) -> Result<(), JobError> {
    // A canary or blue-green rollout that stops this way sends traffic back first.
    let current = deploys::get(&mut *state.store.conn().await?, d.id).await?;
    if !current.state.is_final() {
        if let Err(e) = super::rollout::restore_after_failure(state, &current, reason).await {
            event(
                state,
                d.id,
                "rollout",
                &format!("could not send traffic back to the version that ran before: {e}"),
                json!({}),
            )
            .await?;
        }
    }
    let mut tx = state.store.begin().await?;
    let current = deploys::get(&mut tx, d.id).await?;
    if current.state.is_final() || !deploys::advance(&mut tx, d.id, current.state, DeployEvent::Fail(kind)).await? {
        return Ok(());
    }
    deploys::set_error(&mut tx, d.id, reason).await?;
    deploys::event(&mut tx, d.id, "failed", reason, json!({})).await?;
    if d.kind == DeployKind::Deploy {
        if let Err(e) = transition_in(
            &mut tx,
            &Who::Engine("deploy"),
            d.release,
            Move {
                action: Action::DeployFailed,
                note: reason,
                build_info: None,
            },
        )
        .await
        {
            if !e.is_refusal() {
                return Err(JobError::Payload(format!("could not record the failure: {e}")));
            }
            // The release moved on meanwhile; say so on the deploy rather than hide it.
            deploys::event(
                &mut tx,
                d.id,
                "failed",
                &format!("the release was not marked failed: {e}"),
                json!({}),
            )
            .await?;
        }
    }
    audit::record(
        &mut tx,
        &prism_store::audit::Origin::system("deploy"),
        &format!("{}.failed", d.kind),
        "deploy",
        &d.id.to_string(),
        json!({"release": d.release, "environment": d.environment, "reason": reason}),
    )
    .await?;
    announce(
        &mut tx,
        Event::deploy(NoticeKind::DeployFailed, d, &d.requested_by, Some(reason)),
    )
    .await?;
    let env = environments::get(&mut tx, d.env_id).await?;
    let applied = current.state.has_applied();
    if d.kind == DeployKind::Deploy && env.rules.auto_rollback && applied {
        crate::ops::deploys::auto_rollback(&mut tx, d, reason).await?;
    }
    tx.commit().await?;
    state.job_wakeup.notify_one();
    Ok(())
}
