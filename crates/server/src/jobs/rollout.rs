//! The progressive part of a deploy: a canary stepped through replica
//! shares, or a blue-green switch of the live Service, with metric gates.
//!
//! ```text
//! canary:     starting(step) -> checking(step) -> starting(step+1) ... -> finishing -> done
//! blue-green: starting -> checking -> keeping (switched; old kept) -> done
//! any:        -> aborting -> aborted (traffic back to what ran before; the deploy fails)
//! ```
//!
//! The job looks every few hundred milliseconds, folds in what a person
//! asked (promote, pause, resume, abort), and does at most one piece of work
//! per look. Each piece is written to the progress before (aborting) or
//! right after (everything else) it is done, and every piece is idempotent
//! (applies of the same split, deletes of what may be gone, an abort run
//! again), so a server killed at any point resumes at the same step. A
//! canary's new pods come up before the stable Deployment gives any up.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use prism_domain::DeployFailure;
use prism_kube::progressive::gate::{render_query, GateTally, GateVerdict, Measurement, QueryVars};
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
use crate::services::deploy_plan::{self, owned_like, DeployError, PlannedObject};
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
    guard: prism_netguard::Guard,
    http: reqwest::Client,
    /// The job attempt driving the rollout (None when restoring after a
    /// failure, outside the rollout's job), and whether it is marked waiting.
    job: Option<(i64, String)>,
    idle: AtomicBool,
    worked: AtomicBool,
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

fn progress_of(d: &Deploy) -> Result<Progress, StepError> {
    serde_json::from_value(d.rollout.clone().unwrap_or_default()).map_err(|e| {
        StepError::Failed(
            DeployFailure::Internal,
            format!("stored rollout progress unreadable: {e}"),
        )
    })
}

impl<'a> Rollout<'a> {
    async fn load(
        state: &'a AppState,
        d: &'a Deploy,
        cluster: &'a Cluster,
        objects: &[PlannedObject],
        strategy: &Strategy,
        job: Option<(i64, String)>,
    ) -> Result<Rollout<'a>, StepError> {
        let m = main_objects(strategy, objects).map_err(StepError::from)?;
        let mut c = state.store.conn().await?;
        let previous = deploys::last_succeeded(&mut c, d.app_id, d.env_id, d.id).await?;
        let env = prism_store::environments::get(&mut c, d.env_id).await?;
        // Restoring after a failure measures nothing.
        let prometheus = match (strategy.has_gates() && job.is_some(), env.cluster_id) {
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
        Ok(Rollout {
            state,
            d,
            cluster,
            previous,
            service: m.service.map(|i| objects[i].clone()),
            main,
            stable,
            prometheus,
            guard,
            http,
            job,
            idle: AtomicBool::new(false),
            worked: AtomicBool::new(false),
        })
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
    let mut p = progress_of(d)?;
    let job = Some((cancel.job_id(), cancel.instance().to_owned()));
    let r = Rollout::load(state, d, cluster, objects, &p.strategy, job).await?;
    loop {
        if let Some(ending) = r.look(&mut p).await? {
            return Ok(ending);
        }
        cancel.sleep(Duration::from_millis(300)).await?;
    }
}

/// A deploy that fails by any other way than its rollout's own abort (an
/// error, a crash, no attempt left) sends traffic back the same way, so no
/// canary keeps its share and no Service stays on a half-checked version.
pub(super) async fn restore_after_failure(state: &AppState, d: &Deploy, why: &str) -> Result<(), StepError> {
    let Ok(mut p) = progress_of(d) else {
        return Ok(());
    };
    if !p.strategy.is_progressive() || matches!(p.phase, Phase::Done | Phase::Aborted) {
        return Ok(());
    }
    let objects: Vec<PlannedObject> =
        serde_json::from_value(d.manifests.clone().unwrap_or_default()).unwrap_or_default();
    let mut c = state.store.conn().await?;
    let env = prism_store::environments::get(&mut c, d.env_id).await?;
    let cluster = deploy_plan::cluster_for(state, &mut c, &env).await?;
    drop(c);
    let r = Rollout::load(state, d, &cluster, &objects, &p.strategy.clone(), None).await?;
    if p.phase != Phase::Aborting {
        p.begin_abort(DeployFailure::Interrupted.as_str(), why);
        r.save(&p).await?;
    }
    r.finish_abort(&mut p).await?;
    Ok(())
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
        if let (true, Some((id, instance))) = (self.idle.swap(false, Relaxed), &self.job) {
            prism_store::jobs::set_idle(&mut *self.state.store.conn().await?, *id, instance, false).await?;
        }
        Ok(())
    }

    /// After a look that only read: the rollout waits on pods, a timer or a
    /// person (see `prism_store::jobs::set_idle` for what that changes).
    async fn waiting(&self) -> Result<(), StepError> {
        if let (false, Some((id, instance))) = (self.idle.swap(true, Relaxed), &self.job) {
            prism_store::jobs::set_idle(&mut *self.state.store.conn().await?, *id, instance, true).await?;
        }
        Ok(())
    }

    /// One look: a person's command, then at most one piece of work.
    async fn look(&self, p: &mut Progress) -> Result<Option<Ending>, StepError> {
        self.worked.store(false, Relaxed);
        let ending = self.look_once(p).await?;
        if ending.is_none() && !self.worked.load(Relaxed) {
            self.waiting().await?;
        }
        Ok(ending)
    }

    async fn look_once(&self, p: &mut Progress) -> Result<Option<Ending>, StepError> {
        self.take_command(p).await?;
        if p.phase == Phase::Aborting {
            return self.finish_abort(p).await.map(Some);
        }
        if p.paused {
            return Ok(None);
        }
        let now = prism_store::now_ms();
        match (p.phase, &p.strategy) {
            (Phase::Done, _) => Ok(Some(Ending::Done)),
            (Phase::Aborted, _) => Ok(Some(aborted(p))),
            (Phase::Aborting, _) => unreachable!("handled above"),
            (Phase::Starting, Strategy::Canary { .. }) => self.canary_start(p).await,
            (Phase::Starting, _) => self.blue_green_start(p).await,
            (Phase::Checking, _) => self.check(p, now).await,
            (Phase::Finishing, _) => self.canary_finish(p).await,
            (Phase::Keeping, _) => self.keep(p, now).await,
        }
    }

    /// Folds in a person's command exactly once: it is saved with the
    /// progress (as the last command taken) before it is taken off the
    /// deploy, so a restart between the two neither loses nor repeats it.
    async fn take_command(&self, p: &mut Progress) -> Result<(), StepError> {
        // Asked at every look: the one column, not the whole deploy.
        let Some(text) = deploys::rollout_command(&mut *self.state.store.conn().await?, self.d.id).await? else {
            return Ok(());
        };
        if p.last_command.as_deref() != Some(text.as_str()) {
            let word = text.split('@').next().unwrap_or_default();
            if let Some(cmd) = Command::parse(word) {
                self.working().await?;
                p.apply(cmd);
                p.last_command = Some(text.clone());
                self.save(p).await?;
                self.say(&format!("{} taken", cmd.as_str()), p).await?;
            }
        }
        deploys::take_rollout_command(&mut *self.state.store.conn().await?, self.d.id, &text).await?;
        Ok(())
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

    /// Deletes `r` only if it is this application's in this environment
    /// (and only that very object, by its uid): a same-named object of
    /// another application or made by hand is never touched.
    async fn delete_owned(&self, r: &ObjectRef) -> Result<(), StepError> {
        if let Some(live) = self.cluster.get(r).await.map_err(kube)? {
            if owned_like(&live, &self.main.object) {
                let uid = live["metadata"]["uid"].as_str().map(String::from);
                self.cluster.delete(r, uid).await.map_err(kube)?;
            }
        }
        Ok(())
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
        let canary = canary_ref(&self.main.reference);
        let (s, c) = shape::split(p.replicas, step.weight);
        // 1. The step's canary pods, beside all the stable ones.
        if !p.applied || p.new_replicas != c {
            self.working().await?;
            if let Some(live) = self.cluster.get(&canary).await.map_err(kube)? {
                if !owned_like(&live, &self.main.object) {
                    return Err(StepError::Failed(
                        DeployFailure::Apply,
                        format!("{canary} exists and is not this application's; Prism will not take it over"),
                    ));
                }
            }
            self.cluster
                .apply(&canary, &shape::canary_deployment(&self.main.object, c), false)
                .await
                .map_err(kube)?;
            (p.new_replicas, p.applied) = (c, true);
            self.save(p).await?;
            self.say(
                &format!("step {} of {}: {c} canary pod(s) coming up", p.step + 1, steps_of(p)),
                p,
            )
            .await?;
            return Ok(None);
        }
        match self.ready(&canary).await? {
            Err(why) => self.abort(p, DeployFailure::Rollout, why).await.map(Some),
            Ok(false) => Ok(None),
            Ok(true) => {
                // 2. Only then the stable gives up its share.
                self.working().await?;
                self.cluster
                    .apply(&stable.reference, &shape::scaled(&stable.object, s), false)
                    .await
                    .map_err(kube)?;
                (p.stable_replicas, p.stable_touched) = (s, true);
                p.start_checking(prism_store::now_ms(), step.pause_seconds, step.gates.len());
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
                p.start_checking(prism_store::now_ms(), 0, p.gates().len());
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
        if p.promoted && !matches!(p.strategy, Strategy::Canary { .. }) {
            self.switch(p).await?;
            return Ok(None);
        }
        let gates = p.gates().to_vec();
        let open: Vec<usize> = (0..gates.len())
            .filter(|i| p.tallies.get(*i).is_none_or(|t| t.taken < gates[*i].count))
            .collect();
        if !open.is_empty() && p.next_measure_at.is_none_or(|at| now >= at) {
            self.working().await?;
            let Some(endpoint) = self.prometheus.as_ref() else {
                let why = "metric gates need the cluster's Prometheus, which is no longer registered".to_owned();
                return self.abort(p, DeployFailure::Gate, why).await.map(Some);
            };
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
                let m = self.measure(endpoint, &query).await;
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

    /// One measurement, through the address policy like every request
    /// Prism makes on someone's behalf.
    async fn measure(&self, endpoint: &PrometheusEndpoint, query: &str) -> Measurement {
        match reqwest::Url::parse(&endpoint.url) {
            Ok(url) if self.guard.check_url(&url).is_ok() => {
                endpoint.measure(&self.http, query, Duration::from_secs(10)).await
            }
            _ => Measurement::Inconclusive("the address policy refuses the Prometheus URL".into()),
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
            (p.finishing_applied, p.stable_touched) = (true, true);
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
                self.delete_owned(&canary_ref(&self.main.reference)).await?;
                p.phase = Phase::Done;
                (p.stable_replicas, p.new_replicas) = (p.replicas, 0);
                self.save(p).await?;
                self.say("the canary is removed; the new version runs everywhere", p)
                    .await?;
                Ok(Some(Ending::Done))
            }
        }
    }

    /// Starts an abort: written first, then done (see [`Self::finish_abort`]).
    async fn abort(&self, p: &mut Progress, kind: DeployFailure, why: String) -> Result<Ending, StepError> {
        self.working().await?;
        p.begin_abort(kind.as_str(), &why);
        self.save(p).await?;
        self.finish_abort(p).await
    }

    /// Traffic back to what ran before, in one step; safe to run again.
    async fn finish_abort(&self, p: &mut Progress) -> Result<Ending, StepError> {
        self.working().await?;
        let mut back = true;
        match &p.strategy {
            Strategy::Canary { .. } => {
                self.delete_owned(&canary_ref(&self.main.reference)).await?;
                // The version that ran before, as it ran (its own replicas),
                // also when the stable Deployment had started taking the new one.
                match (&self.stable, p.direct) {
                    (Some(_), false) if !p.stable_touched => {}
                    (Some(stable), false) => {
                        self.cluster
                            .apply(&stable.reference, &stable.object, false)
                            .await
                            .map_err(kube)?;
                    }
                    _ => back = false,
                }
            }
            _ => {
                let svc = self.service.as_ref().expect("blue-green has its service");
                match (&p.previous_release, p.direct) {
                    (Some(prev), false) => {
                        self.cluster
                            .apply(&svc.reference, &shape::service_for(&svc.object, prev), false)
                            .await
                            .map_err(kube)?;
                        // The same release deployed again: its colour is the
                        // one serving, never deleted.
                        if *prev != self.d.release.to_string() {
                            self.delete_owned(&self.main.reference).await?;
                        }
                    }
                    _ => back = false,
                }
            }
        }
        let why = p.abort.clone().map(|(_, why)| why).unwrap_or_else(|| "aborted".into());
        p.phase = Phase::Aborted;
        if back {
            (p.stable_replicas, p.new_replicas) = (p.replicas, 0);
        }
        p.outcome = Some(why.clone());
        self.save(p).await?;
        let how = if back {
            "traffic is back on the version that ran before"
        } else {
            "no version ran before it: the new one is left running"
        };
        self.say(&format!("aborted: {how}; {why}"), p).await?;
        Ok(aborted(p))
    }
}

/// How an aborted rollout ended: the failure kind and reason it was aborted with.
fn aborted(p: &Progress) -> Ending {
    let (kind, why) = p.abort.clone().unwrap_or_else(|| ("aborted".into(), "aborted".into()));
    Ending::Aborted(
        DeployFailure::parse(&kind).unwrap_or(DeployFailure::Aborted),
        p.outcome.clone().unwrap_or(why),
    )
}

fn steps_of(p: &Progress) -> usize {
    match &p.strategy {
        Strategy::Canary { steps } => steps.len(),
        _ => 1,
    }
}

fn measurement_text(m: &Measurement) -> String {
    match m {
        Measurement::Value(v) => v.to_string(),
        Measurement::Inconclusive(r) => format!("inconclusive ({r})"),
    }
}
