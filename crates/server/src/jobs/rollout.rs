//! The progressive part of a deploy: a canary stepped through replica
//! shares, or a blue-green switch of the live Service, with metric gates.
//!
//! ```text
//! canary:     starting(step) -> checking(step) -> starting(step+1) ... -> finishing -> done
//! blue-green: starting -> checking -> keeping (switched; old kept) -> done
//! any:        -> aborted (traffic back to what ran before; the deploy fails)
//! ```
//!
//! The job looks every few hundred milliseconds, folds in what a person
//! asked (promote, pause, resume, abort), and does at most one phase's work
//! per look; the progress is written after each piece of work, and every
//! piece is idempotent (applies of the same split, deletes of what may be
//! gone), so a server killed at any point resumes at the same step.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use prism_domain::DeployFailure;
use prism_kube::progressive::gate::{render_query, GateTally, GateVerdict, QueryVars};
use prism_kube::progressive::progress::{Command, Phase, Progress};
use prism_kube::progressive::prometheus::PrometheusEndpoint;
use prism_kube::progressive::shape;
use prism_kube::progressive::strategy::Strategy;
use prism_kube::{rollout_status, Cluster, RolloutStatus};
use prism_manifests::ObjectRef;
use prism_store::deploys::{self, Deploy};
use serde_json::json;

use super::deploy::{event, StepError};
use super::Cancel;
use crate::services::deploy_plan::{self, DeployError, PlannedObject};
use crate::services::rollout_shape::main_objects;
use crate::state::AppState;

/// How a progressive rollout ended.
pub(super) enum Ending {
    Done,
    Aborted(DeployFailure, String),
}

/// Everything one look needs.
struct Rollout<'a> {
    state: &'a AppState,
    d: &'a Deploy,
    cluster: &'a Cluster,
    main: PlannedObject,
    service: Option<PlannedObject>,
    /// What the last successful deploy applied, and its Deployment of the
    /// same name (canary's stable).
    previous: Vec<PlannedObject>,
    stable: Option<PlannedObject>,
    prometheus: Option<PrometheusEndpoint>,
    http: reqwest::Client,
    /// The job attempt driving the rollout, and whether it is marked as
    /// waiting (see [`Rollout::working`]).
    job_id: i64,
    idle: std::sync::atomic::AtomicBool,
    worked: std::sync::atomic::AtomicBool,
}

fn kube(e: prism_kube::KubeError) -> StepError {
    StepError::from(DeployError::from(e))
}

fn canary_ref(main: &ObjectRef) -> ObjectRef {
    ObjectRef {
        name: format!("{}{}", main.name, shape::CANARY_SUFFIX),
        ..main.clone()
    }
}

/// Drives the rollout until it is done or aborted.
pub(super) async fn drive(
    state: &AppState,
    d: &Deploy,
    cluster: &Cluster,
    objects: &[PlannedObject],
    cancel: &mut Cancel,
) -> Result<Ending, StepError> {
    let mut p: Progress = serde_json::from_value(d.rollout.clone().unwrap_or_default()).map_err(|e| {
        StepError::Failed(
            DeployFailure::Internal,
            format!("stored rollout progress unreadable: {e}"),
        )
    })?;
    let m = main_objects(&p.strategy, objects).map_err(StepError::from)?;
    let mut c = state.store.conn().await?;
    let previous = deploys::last_succeeded(&mut c, d.app_id, d.env_id, d.id).await?;
    let env = prism_store::environments::get(&mut c, d.env_id).await?;
    let prometheus = match (p.strategy.has_gates(), env.cluster_id) {
        (true, Some(id)) => crate::ops::rollouts::endpoint(&mut c, &state.secrets, id)
            .await
            .map_err(|e| StepError::Failed(DeployFailure::Gate, e))?,
        _ => None,
    };
    let guard = crate::services::address_policy::guard(&mut c).await?;
    drop(c);
    let http = reqwest::Client::builder()
        .dns_resolver(guard.resolver())
        .redirect(guard.redirect_policy(0))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| StepError::Failed(DeployFailure::Internal, format!("HTTP client: {e}")))?;
    let main = objects[m.deployment].clone();
    let previous = deploy_plan::stored_objects(previous.as_ref());
    let stable = previous.iter().find(|o| o.reference == main.reference).cloned();
    let r = Rollout {
        state,
        d,
        cluster,
        previous,
        service: m.service.map(|i| objects[i].clone()),
        main,
        stable,
        prometheus,
        http,
        job_id: cancel.job_id(),
        idle: std::sync::atomic::AtomicBool::new(false),
        worked: std::sync::atomic::AtomicBool::new(false),
    };
    loop {
        if let Some(ending) = r.look(&mut p).await? {
            return Ok(ending);
        }
        cancel.sleep(Duration::from_millis(300)).await?;
    }
}

impl Rollout<'_> {
    async fn save(&self, p: &Progress) -> Result<(), StepError> {
        let mut c = self.state.store.conn().await?;
        deploys::set_rollout(
            &mut c,
            self.d.id,
            &serde_json::to_value(p).expect("progress serialises"),
        )
        .await?;
        Ok(())
    }

    async fn say(&self, message: &str, p: &Progress) -> Result<(), StepError> {
        event(
            self.state,
            self.d.id,
            "rollout",
            message,
            json!({"phase": p.phase, "step": p.step, "stable": p.stable_replicas, "new": p.new_replicas}),
        )
        .await?;
        Ok(())
    }

    /// Called before any work (an apply, a delete, a measurement, a new
    /// phase): the job is no longer waiting, so a crash now counts against it.
    async fn working(&self) -> Result<(), StepError> {
        self.worked.store(true, Relaxed);
        if self.idle.swap(false, Relaxed) {
            prism_store::jobs::set_idle(&mut *self.state.store.conn().await?, self.job_id, false).await?;
        }
        Ok(())
    }

    /// After a look that only read: the rollout waits on pods, a timer or a
    /// person, and the server stopping meanwhile is not the job's doing
    /// (it is not counted towards quarantine, however long the wait).
    async fn waiting(&self) -> Result<(), StepError> {
        if !self.idle.swap(true, Relaxed) {
            prism_store::jobs::set_idle(&mut *self.state.store.conn().await?, self.job_id, true).await?;
        }
        Ok(())
    }

    /// One look: a person's command, then at most one phase's work.
    async fn look(&self, p: &mut Progress) -> Result<Option<Ending>, StepError> {
        self.worked.store(false, Relaxed);
        let ending = self.look_once(p).await?;
        if ending.is_none() && !self.worked.load(Relaxed) {
            self.waiting().await?;
        }
        Ok(ending)
    }

    async fn look_once(&self, p: &mut Progress) -> Result<Option<Ending>, StepError> {
        let now = prism_store::now_ms();
        let cmd = deploys::get(&mut *self.state.store.conn().await?, self.d.id)
            .await?
            .rollout_command;
        if let Some(text) = cmd {
            let taken = deploys::take_rollout_command(&mut *self.state.store.conn().await?, self.d.id, &text).await?;
            if let (true, Some(cmd)) = (taken, Command::parse(&text)) {
                self.working().await?;
                if p.apply(cmd) == Some(Command::Abort) {
                    return self
                        .abort(p, DeployFailure::Aborted, "aborted by a person".into())
                        .await
                        .map(Some);
                }
                self.save(p).await?;
                self.say(&format!("{} taken", cmd.as_str()), p).await?;
            }
        }
        if p.paused {
            return Ok(None);
        }
        match (p.phase, &p.strategy) {
            (Phase::Done, _) => Ok(Some(Ending::Done)),
            (Phase::Aborted, _) => Ok(Some(Ending::Aborted(
                DeployFailure::Aborted,
                p.outcome.clone().unwrap_or_else(|| "aborted".into()),
            ))),
            (Phase::Starting, Strategy::Canary { .. }) => self.canary_start(p).await,
            (Phase::Starting, _) => self.blue_green_start(p).await,
            (Phase::Checking, _) => self.check(p, now).await,
            (Phase::Finishing, _) => self.canary_finish(p).await,
            (Phase::Keeping, _) => self.keep(p, now).await,
        }
    }

    /// Whether `r`'s rollout finished; a failed one aborts.
    async fn ready(&self, r: &ObjectRef) -> Result<Result<bool, String>, StepError> {
        let Some(live) = self.cluster.get(r).await.map_err(kube)? else {
            return Ok(Err(format!("{r} disappeared during the rollout")));
        };
        Ok(match rollout_status(&r.kind, &live) {
            Some(RolloutStatus::Complete { .. }) => Ok(true),
            Some(RolloutStatus::Failed { message }) => Err(format!("{r}: {message}")),
            _ => Ok(false),
        })
    }

    async fn canary_start(&self, p: &mut Progress) -> Result<Option<Ending>, StepError> {
        let Some(step) = p.canary_step().cloned() else {
            self.working().await?;
            p.phase = Phase::Finishing;
            self.save(p).await?;
            return Ok(None);
        };
        let stable_live = self.cluster.get(&self.main.reference).await.map_err(kube)?;
        let (Some(stable), Some(_)) = (&self.stable, stable_live) else {
            // Nothing runs yet to compare with: the release rolls out directly.
            self.working().await?;
            p.direct = true;
            p.phase = Phase::Finishing;
            self.save(p).await?;
            self.say("no version runs here yet: rolling out directly", p).await?;
            return Ok(None);
        };
        let (s, c) = shape::split(p.replicas, step.weight);
        if (p.stable_replicas, p.new_replicas) != (s, c) || !p.applied {
            self.working().await?;
            self.cluster
                .apply(
                    &canary_ref(&self.main.reference),
                    &shape::canary_deployment(&self.main.object, c),
                    false,
                )
                .await
                .map_err(kube)?;
            self.cluster
                .apply(&stable.reference, &shape::scaled(&stable.object, s), false)
                .await
                .map_err(kube)?;
            (p.stable_replicas, p.new_replicas, p.applied) = (s, c, true);
            self.save(p).await?;
            self.say(
                &format!(
                    "step {} of {}: {}% new: {c} canary pod(s), {s} stable pod(s) (requests follow the share of ready pods only approximately)",
                    p.step + 1,
                    steps_of(p),
                    step.weight
                ),
                p,
            )
            .await?;
            return Ok(None);
        }
        match self.ready(&canary_ref(&self.main.reference)).await? {
            Err(why) => self.abort(p, DeployFailure::Rollout, why).await.map(Some),
            Ok(false) => Ok(None),
            Ok(true) => {
                self.working().await?;
                let now = prism_store::now_ms();
                p.phase = Phase::Checking;
                p.pause_until = (step.pause_seconds > 0).then(|| now + i64::from(step.pause_seconds) * 1000);
                p.tallies = vec![GateTally::default(); step.gates.len()];
                p.next_measure_at = Some(now);
                self.save(p).await?;
                self.say(&format!("step {}: canary pods ready", p.step + 1), p).await?;
                Ok(None)
            }
        }
    }

    async fn blue_green_start(&self, p: &mut Progress) -> Result<Option<Ending>, StepError> {
        let svc = self.service.as_ref().expect("blue-green has its service");
        if !p.applied {
            self.working().await?;
            let live = self.cluster.get(&svc.reference).await.map_err(kube)?;
            let pinned = live.as_ref().and_then(shape::served_release);
            p.previous_release = match &live {
                Some(_) => pinned.clone().or_else(|| self.stable_release()),
                None => None,
            };
            p.direct = live.is_none() || p.previous_release.is_none();
            // A Service that selects by application alone would reach the new
            // pods as soon as they are ready: pin it to the version it serves
            // first, so that no request reaches the new one before the switch.
            if let (Some(prev), None, false) = (&p.previous_release, &pinned, p.direct) {
                self.cluster
                    .apply(&svc.reference, &shape::service_for(&svc.object, prev), false)
                    .await
                    .map_err(kube)?;
                self.say(
                    &format!("Service {} pinned to {prev}, the version it serves", svc.reference.name),
                    p,
                )
                .await?;
            }
            self.cluster
                .apply(&self.main.reference, &self.main.object, false)
                .await
                .map_err(kube)?;
            p.applied = true;
            (p.stable_replicas, p.new_replicas) = (p.replicas, p.replicas);
            self.save(p).await?;
            return Ok(None);
        }
        match self.ready(&self.main.reference).await? {
            Err(why) => self.abort(p, DeployFailure::Rollout, why).await.map(Some),
            Ok(false) => Ok(None),
            Ok(true) if p.direct => {
                // Nothing served yet: no traffic to protect, switch at once.
                self.switch(p).await?;
                Ok(None)
            }
            Ok(true) => {
                self.working().await?;
                let now = prism_store::now_ms();
                p.phase = Phase::Checking;
                p.tallies = vec![GateTally::default(); p.gates().len()];
                p.next_measure_at = Some(now);
                self.save(p).await?;
                self.say(
                    &format!(
                        "{} is ready beside {}; no traffic reaches it yet",
                        self.main.reference.name,
                        p.previous_release.as_deref().unwrap_or("?")
                    ),
                    p,
                )
                .await?;
                Ok(None)
            }
        }
    }

    /// The release whose pods the previous deploy ran (`r8`), from the
    /// Deployment it applied (whatever its name: rolling or a colour).
    fn stable_release(&self) -> Option<String> {
        self.previous
            .iter()
            .find(|o| o.reference.kind == "Deployment")
            .and_then(|s| s.object.pointer("/spec/template/metadata/labels"))
            .and_then(|l| l.get(shape::RELEASE_LABEL))
            .and_then(|v| v.as_str())
            .map(String::from)
    }

    /// Pause, gates and a person's word; when all are through, the next step.
    async fn check(&self, p: &mut Progress, now: i64) -> Result<Option<Ending>, StepError> {
        let gates = p.gates().to_vec();
        let open: Vec<usize> = (0..gates.len())
            .filter(|i| p.tallies.get(*i).is_none_or(|t| t.taken < gates[*i].count))
            .collect();
        if !open.is_empty() && p.next_measure_at.is_none_or(|at| now >= at) {
            self.working().await?;
            let endpoint = self.prometheus.as_ref().ok_or_else(|| {
                StepError::Failed(
                    DeployFailure::Gate,
                    "metric gates need the cluster's Prometheus, which is no longer registered".into(),
                )
            })?;
            p.tallies.resize(gates.len(), GateTally::default());
            let track = if matches!(p.strategy, Strategy::Canary { .. }) {
                "canary"
            } else {
                "preview"
            };
            let release = self.d.release.to_string();
            let namespace = self.main.reference.namespace.clone().unwrap_or_default();
            let vars = QueryVars {
                app: &self.d.application,
                env: &self.d.environment,
                namespace: &namespace,
                release: &release,
                track,
            };
            let mut said = vec![];
            for i in &open {
                let g = &gates[*i];
                let cond = g
                    .validate("gate")
                    .map_err(|e| StepError::Failed(DeployFailure::Gate, e.to_string()))?;
                let query = render_query(&g.query, &vars);
                let m = endpoint.measure(&self.http, &query, Duration::from_secs(10)).await;
                let verdict = p.tallies[*i].record(g, &cond, m.clone());
                said.push(format!("{}: {}", g.name, measurement_text(&m)));
                match verdict {
                    GateVerdict::Failed { value, condition } => {
                        let why = format!(
                            "metric gate {} failed: {query} returned {value}, breaking `{condition}`",
                            g.name
                        );
                        return self.abort(p, DeployFailure::Gate, why).await.map(Some);
                    }
                    GateVerdict::Inconclusive { reason } => {
                        let why = format!("metric gate {} stayed inconclusive: {reason}", g.name);
                        return self.abort(p, DeployFailure::Gate, why).await.map(Some);
                    }
                    GateVerdict::Measuring | GateVerdict::Passed => {}
                }
            }
            let every = open.iter().map(|i| gates[*i].interval_seconds).min().unwrap_or(30);
            p.next_measure_at = Some(now + i64::from(every) * 1000);
            self.save(p).await?;
            self.say(&format!("gates measured: {}", said.join("; ")), p).await?;
            return Ok(None);
        }
        let gates_done = open.is_empty();
        let pause_done = p.pause_until.is_none_or(|u| now >= u);
        let person_done = !p.waits_for_person() || p.resumed;
        if !(gates_done && pause_done && person_done) {
            return Ok(None);
        }
        self.working().await?;
        match p.strategy {
            Strategy::Canary { .. } => {
                p.next_step();
                self.save(p).await?;
                Ok(None)
            }
            _ => {
                self.switch(p).await?;
                Ok(None)
            }
        }
    }

    /// Blue-green: the live Service to the new release, in one apply.
    async fn switch(&self, p: &mut Progress) -> Result<(), StepError> {
        self.working().await?;
        let svc = self.service.as_ref().expect("blue-green has its service");
        self.cluster
            .apply(&svc.reference, &svc.object, false)
            .await
            .map_err(kube)?;
        p.switched_at = Some(prism_store::now_ms());
        p.phase = if p.direct { Phase::Done } else { Phase::Keeping };
        (p.stable_replicas, p.new_replicas) = (0, p.replicas);
        self.save(p).await?;
        self.say(
            &format!(
                "switched Service {} to {}{}",
                svc.reference.name,
                self.d.release,
                p.previous_release
                    .as_ref()
                    .map(|r| format!(" (was {r}; kept until the delay ends, so switching back is immediate)"))
                    .unwrap_or_default()
            ),
            p,
        )
        .await
    }

    /// Blue-green: after the delay, the old version goes.
    async fn keep(&self, p: &mut Progress, now: i64) -> Result<Option<Ending>, StepError> {
        let delay = match p.strategy {
            Strategy::BlueGreen {
                scale_down_delay_seconds,
                ..
            } => i64::from(scale_down_delay_seconds) * 1000,
            _ => 0,
        };
        if now < p.switched_at.unwrap_or(now).saturating_add(delay) {
            return Ok(None);
        }
        self.working().await?;
        p.phase = Phase::Done;
        self.save(p).await?;
        self.say("the delay is over: the old version is removed", p).await?;
        Ok(Some(Ending::Done))
    }

    /// Canary: the stable Deployment takes the new version; the canary goes.
    async fn canary_finish(&self, p: &mut Progress) -> Result<Option<Ending>, StepError> {
        if !p.finishing_applied {
            self.working().await?;
            self.cluster
                .apply(&self.main.reference, &self.main.object, false)
                .await
                .map_err(kube)?;
            p.finishing_applied = true;
            self.save(p).await?;
            self.say(
                &format!(
                    "{} takes the new version at {} replica(s)",
                    self.main.reference.name, p.replicas
                ),
                p,
            )
            .await?;
            return Ok(None);
        }
        match self.ready(&self.main.reference).await? {
            Err(why) => self.abort(p, DeployFailure::Rollout, why).await.map(Some),
            Ok(false) => Ok(None),
            Ok(true) => {
                self.working().await?;
                self.cluster
                    .delete(&canary_ref(&self.main.reference), None)
                    .await
                    .map_err(kube)?;
                p.phase = Phase::Done;
                (p.stable_replicas, p.new_replicas) = (p.replicas, 0);
                self.save(p).await?;
                self.say("the canary is removed; the new version runs everywhere", p)
                    .await?;
                Ok(Some(Ending::Done))
            }
        }
    }

    /// Traffic back to what ran before, in one step; the deploy then fails.
    async fn abort(&self, p: &mut Progress, kind: DeployFailure, why: String) -> Result<Ending, StepError> {
        self.working().await?;
        match &p.strategy {
            Strategy::Canary { .. } => {
                self.cluster
                    .delete(&canary_ref(&self.main.reference), None)
                    .await
                    .map_err(kube)?;
                if let (Some(stable), false) = (&self.stable, p.direct || p.finishing_applied) {
                    self.cluster
                        .apply(&stable.reference, &shape::scaled(&stable.object, p.replicas), false)
                        .await
                        .map_err(kube)?;
                }
                (p.stable_replicas, p.new_replicas) = (p.replicas, 0);
            }
            _ => {
                let svc = self.service.as_ref().expect("blue-green has its service");
                if let (Some(_), Some(prev)) = (p.switched_at, &p.previous_release) {
                    self.cluster
                        .apply(&svc.reference, &shape::service_for(&svc.object, prev), false)
                        .await
                        .map_err(kube)?;
                }
                if !p.direct {
                    self.cluster.delete(&self.main.reference, None).await.map_err(kube)?;
                }
                (p.stable_replicas, p.new_replicas) = (p.replicas, 0);
            }
        }
        p.phase = Phase::Aborted;
        p.outcome = Some(why.clone());
        self.save(p).await?;
        self.say(
            &format!("aborted: traffic is back on the version that ran before; {why}"),
            p,
        )
        .await?;
        Ok(Ending::Aborted(kind, why))
    }
}

fn steps_of(p: &Progress) -> usize {
    match &p.strategy {
        Strategy::Canary { steps } => steps.len(),
        _ => 1,
    }
}

fn measurement_text(m: &prism_kube::progressive::gate::Measurement) -> String {
    match m {
        prism_kube::progressive::gate::Measurement::Value(v) => v.to_string(),
        prism_kube::progressive::gate::Measurement::Inconclusive(r) => format!("inconclusive ({r})"),
    }
}
