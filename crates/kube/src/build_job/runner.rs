//! Runs one build as a Job and reports it as it goes: creates the build's
//! Secret and Job, says why it waits while no node takes it, follows each
//! step's log in order (reconnecting without repeating lines), and returns
//! how it ended. Cancel deletes the Job (its pods go with it) and the
//! Secret; the Secret is also deleted as soon as the build ends, so the
//! credentials in it live no longer than the build.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams, PropagationPolicy};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::spec::{self, BuildJobSpec};
use super::status::{judge, PodState};
use crate::error::{KubeError, Result};

/// Where the runner writes what happens: each step's output, and its own notes.
pub trait BuildLog: Send + Sync {
    fn line(&self, step: &str, line: &str);
    fn note(&self, message: &str);
    /// A step's container started (the build left the queue when the first did).
    fn step_started(&self, _step: &str) {}
}

#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// How often the Job and its pod are read.
    pub poll: Duration,
    /// How long a build may wait for a node before it fails as unschedulable.
    pub queue_timeout: Duration,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(500),
            queue_timeout: Duration::from_secs(600),
        }
    }
}

/// How a build Job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Ended(PodState),
    /// Waited past the queue timeout; the reason the scheduler gave.
    Unschedulable {
        reason: Option<String>,
    },
    Cancelled,
}

pub struct BuildJobRunner {
    client: kube::Client,
    options: RunnerOptions,
}

impl BuildJobRunner {
    pub fn new(client: kube::Client, options: RunnerOptions) -> Self {
        Self { client, options }
    }

    pub async fn run(
        &self,
        spec: &BuildJobSpec,
        credentials: &BTreeMap<String, String>,
        log: &dyn BuildLog,
        cancel: &CancellationToken,
    ) -> Result<JobOutcome> {
        let ns = &spec.namespace;
        let name = spec.name();
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), ns);
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        if let Some(claim) = &spec.cache_claim {
            // Made at the application's first build on this runner, then kept:
            // an existing claim (another build, another instance) is the one to use.
            let claims: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), ns);
            match claims
                .create(&PostParams::default(), &spec::cache_claim(ns, claim))
                .await
            {
                Ok(_) => log.note(&format!(
                    "cache volume {ns}/{} made ({}, {})",
                    claim.name, claim.size, claim.access_mode
                )),
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    log.note(&format!("cache volume {ns}/{} kept from earlier builds", claim.name))
                }
                Err(e) => {
                    return Err(KubeError::from_kube(
                        &format!("PersistentVolumeClaim {ns}/{}", claim.name),
                        e,
                    ))
                }
            }
        }
        if !credentials.is_empty() {
            secrets
                .create(&PostParams::default(), &spec::secret(spec, credentials))
                .await
                .map_err(|e| KubeError::from_kube(&format!("Secret {ns}/{name}"), e))?;
        }
        let created = match jobs.create(&PostParams::default(), &spec::job(spec)).await {
            Ok(j) => j,
            Err(e) => {
                let _ = secrets.delete(&name, &DeleteParams::default()).await;
                return Err(KubeError::from_kube(&format!("Job {ns}/{name}"), e));
            }
        };
        // The Secret goes with the Job if Prism is not there to delete it.
        if !credentials.is_empty() {
            if let Some(uid) = created.metadata.uid.clone() {
                let owner = json!({"metadata": {"ownerReferences": [{
                    "apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid,
                    "controller": false, "blockOwnerDeletion": false}]}});
                let _ = secrets
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&owner))
                    .await;
            }
        }
        log.note(&format!("build Job {ns}/{name} created"));
        let steps: Vec<String> = spec.steps.iter().map(|s| s.name.clone()).collect();
        let outcome = tokio::select! {
            o = self.follow(&jobs, &pods, &name, &steps, log) => o,
            _ = cancel.cancelled() => Ok(JobOutcome::Cancelled),
        };
        let end_job = !matches!(outcome, Ok(JobOutcome::Ended(PodState::Succeeded)));
        if end_job {
            // Cancelled, failed or unschedulable: nothing of it may keep running.
            let _ = jobs.delete(&name, &background()).await;
        }
        let _ = secrets.delete(&name, &DeleteParams::default()).await;
        if matches!(outcome, Ok(JobOutcome::Cancelled)) {
            log.note(&format!("build Job {ns}/{name} deleted (cancelled)"));
        }
        outcome
    }

    async fn follow(
        &self,
        jobs: &Api<Job>,
        pods: &Api<Pod>,
        name: &str,
        steps: &[String],
        log: &dyn BuildLog,
    ) -> Result<JobOutcome> {
        let queued_since = Instant::now();
        let mut said_queued: Option<Option<String>> = None;
        let mut next_step = 0usize;
        loop {
            let (job, pod) = self.read(jobs, pods, name).await?;
            let state = judge(job.as_ref(), pod.as_ref(), steps);
            if let PodState::Queued { reason } = &state {
                if said_queued.as_ref() != Some(reason) {
                    log.note(&match reason {
                        Some(r) => format!("waiting for a node: {r}"),
                        None => "waiting for a node".to_string(),
                    });
                    said_queued = Some(reason.clone());
                }
                if queued_since.elapsed() > self.options.queue_timeout {
                    return Ok(JobOutcome::Unschedulable { reason: reason.clone() });
                }
                tokio::time::sleep(self.options.poll).await;
                continue;
            }
            // Follow every step that has started, in order, to its end.
            if let Some(p) = &pod {
                while next_step < steps.len() && started(p, &steps[next_step]) {
                    log.step_started(&steps[next_step]);
                    let pod_name = p.metadata.name.clone().unwrap_or_default();
                    self.follow_step(pods, &pod_name, &steps[next_step], log).await?;
                    next_step += 1;
                }
            }
            if state.is_final() {
                // Read once more: the state may have moved on while logs were followed.
                let (job, pod) = self.read(jobs, pods, name).await?;
                return Ok(JobOutcome::Ended(judge(job.as_ref(), pod.as_ref(), steps)));
            }
            tokio::time::sleep(self.options.poll).await;
        }
    }

    async fn read(&self, jobs: &Api<Job>, pods: &Api<Pod>, name: &str) -> Result<(Option<Job>, Option<Pod>)> {
        let job = jobs
            .get_opt(name)
            .await
            .map_err(|e| KubeError::from_kube(&format!("Job {name}"), e))?;
        let list = pods
            .list(&ListParams::default().labels(&format!("job-name={name}")))
            .await
            .map_err(|e| KubeError::from_kube(&format!("pods of Job {name}"), e))?;
        // backoffLimit 0: one pod; the newest if a node lost one.
        let pod = list
            .items
            .into_iter()
            .max_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
        Ok((job, pod))
    }

    /// Streams one container's log until the container ends; on a dropped
    /// connection, reads again and skips the lines already written.
    async fn follow_step(&self, pods: &Api<Pod>, pod: &str, step: &str, log: &dyn BuildLog) -> Result<()> {
        let mut seen = 0usize;
        for _ in 0..20 {
            let params = LogParams {
                container: Some(step.to_string()),
                follow: true,
                ..LogParams::default()
            };
            let mut n = 0usize;
            match pods.log_stream(pod, &params).await {
                Ok(stream) => {
                    let mut lines = stream.lines();
                    // A read error ends this pass; the container's state decides below.
                    while let Ok(Some(line)) = lines.try_next().await {
                        n += 1;
                        if n > seen {
                            log.line(step, &line);
                            seen = n;
                        }
                    }
                }
                Err(_) => tokio::time::sleep(self.options.poll).await,
            }
            let p = pods
                .get_opt(pod)
                .await
                .map_err(|e| KubeError::from_kube(&format!("Pod {pod}"), e))?;
            match p {
                Some(p) if !terminated(&p, step) => continue,
                _ => return Ok(()),
            }
        }
        log.note(&format!("the log of step {step} could not be followed to its end"));
        Ok(())
    }
}

/// The termination message of each step of Job `name` that has ended (what
/// Prism's own steps report: the commit checked out, the image pushed).
pub async fn step_messages(client: &kube::Client, namespace: &str, name: &str) -> Result<BTreeMap<String, String>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = pods
        .list(&ListParams::default().labels(&format!("job-name={name}")))
        .await
        .map_err(|e| KubeError::from_kube(&format!("pods of Job {name}"), e))?;
    let mut out = BTreeMap::new();
    for p in list.items {
        let Some(status) = p.status else { continue };
        for c in status
            .init_container_statuses
            .into_iter()
            .flatten()
            .chain(status.container_statuses.into_iter().flatten())
        {
            if let Some(m) = c.state.and_then(|s| s.terminated).and_then(|t| t.message) {
                out.insert(c.name, m);
            }
        }
    }
    Ok(out)
}

fn background() -> DeleteParams {
    DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    }
}

fn container_state(pod: &Pod, step: &str) -> Option<k8s_openapi::api::core::v1::ContainerState> {
    let status = pod.status.as_ref()?;
    status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .find(|c| c.name == step)?
        .state
        .clone()
}

fn started(pod: &Pod, step: &str) -> bool {
    container_state(pod, step).is_some_and(|s| s.running.is_some() || s.terminated.is_some())
}

fn terminated(pod: &Pod, step: &str) -> bool {
    container_state(pod, step).is_some_and(|s| s.terminated.is_some())
}

/// The builds that have a Job or a Secret in `namespace` (what the reaper
/// asks the store about before calling [`reap`]).
pub async fn build_ids(client: &kube::Client, namespace: &str) -> Result<std::collections::BTreeSet<i64>> {
    let lp = ListParams::default().labels(&selector());
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut ids = std::collections::BTreeSet::new();
    let labels = jobs
        .list(&lp)
        .await
        .map_err(|e| KubeError::from_kube("build Jobs", e))?
        .items
        .into_iter()
        .map(|j| j.metadata.labels)
        .chain(
            secrets
                .list(&lp)
                .await
                .map_err(|e| KubeError::from_kube("build Secrets", e))?
                .items
                .into_iter()
                .map(|s| s.metadata.labels),
        );
    for l in labels {
        if let Some(id) = l
            .as_ref()
            .and_then(|l| l.get(spec::BUILD_LABEL))
            .and_then(|v| v.parse().ok())
        {
            ids.insert(id);
        }
    }
    Ok(ids)
}

fn selector() -> String {
    format!(
        "{}={},{}={}",
        spec::MANAGED_BY.0,
        spec::MANAGED_BY.1,
        spec::COMPONENT.0,
        spec::COMPONENT.1
    )
}

/// Deletes build Jobs and Secrets in `namespace` whose build `keep` says is
/// gone (Prism crashed, the build was deleted); returns their names.
pub async fn reap(client: &kube::Client, namespace: &str, keep: impl Fn(i64) -> bool) -> Result<Vec<String>> {
    let selector = selector();
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut reaped = Vec::new();
    let lp = ListParams::default().labels(&selector);
    let job_list = jobs
        .list(&lp)
        .await
        .map_err(|e| KubeError::from_kube("build Jobs", e))?;
    let secret_list = secrets
        .list(&lp)
        .await
        .map_err(|e| KubeError::from_kube("build Secrets", e))?;
    let build_of = |labels: &Option<BTreeMap<String, String>>| -> Option<i64> {
        labels.as_ref()?.get(spec::BUILD_LABEL)?.parse().ok()
    };
    for j in job_list.items {
        let (Some(name), Some(id)) = (j.metadata.name.clone(), build_of(&j.metadata.labels)) else {
            continue;
        };
        if !keep(id) {
            let _ = jobs.delete(&name, &background()).await;
            reaped.push(format!("Job {namespace}/{name}"));
        }
    }
    for s in secret_list.items {
        let (Some(name), Some(id)) = (s.metadata.name.clone(), build_of(&s.metadata.labels)) else {
            continue;
        };
        if !keep(id) {
            let _ = secrets.delete(&name, &DeleteParams::default()).await;
            reaped.push(format!("Secret {namespace}/{name}"));
        }
    }
    Ok(reaped)
}
