//! What a build Job's pod says about the build, in the terms Prism reports:
//! still queued (and why), running (which step), or ended (and why).
//!
//! The peers' users keep asking for exactly these answers: a pod that
//! nothing can schedule is a queued build, not a running one; an image that
//! cannot be pulled fails at once with the registry's message; an
//! out-of-memory kill says OOMKilled and the limit; a deadline says timeout.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// Where a build Job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodState {
    /// No pod yet, or a pod no node has taken: the reason when there is one.
    Queued { reason: Option<String> },
    /// Pulling images or starting the first step.
    Starting,
    /// This step's container runs.
    Running { step: String },
    /// Every step exited 0.
    Succeeded,
    /// A step's image cannot be pulled.
    PullFailed {
        step: String,
        image: String,
        message: String,
    },
    /// A step exited non-zero (or was killed by a signal: 128 + n).
    StepFailed {
        step: String,
        exit_code: i32,
        message: Option<String>,
    },
    /// A step was killed for exceeding its memory limit.
    OutOfMemory { step: String, limit: Option<String> },
    /// `activeDeadlineSeconds` passed.
    DeadlineExceeded,
    /// The Job failed for a reason not covered above.
    Failed { message: String },
}

impl PodState {
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Queued { .. } | Self::Starting | Self::Running { .. })
    }
}

const PULL_FAILURES: [&str; 4] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
];

/// Judges a build from its Job and (when there is one) its pod. `steps` are
/// the containers in order, as [`super::spec::job`] made them.
pub fn judge(job: Option<&Job>, pod: Option<&Pod>, steps: &[String]) -> PodState {
    if let Some(state) = job.and_then(job_failure) {
        // The deadline ends the Job whatever the pod was doing.
        if state == PodState::DeadlineExceeded {
            return state;
        }
        if let Some(p) = pod {
            let from_pod = judge_pod(p, steps);
            if from_pod.is_final() {
                return from_pod;
            }
        }
        return state;
    }
    match pod {
        None => PodState::Queued { reason: None },
        Some(p) => judge_pod(p, steps),
    }
}

fn job_failure(job: &Job) -> Option<PodState> {
    let status = job.status.as_ref()?;
    let failed = status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Failed" && c.status == "True")?;
    if failed.reason.as_deref() == Some("DeadlineExceeded") {
        return Some(PodState::DeadlineExceeded);
    }
    Some(PodState::Failed {
        message: failed
            .message
            .clone()
            .or_else(|| failed.reason.clone())
            .unwrap_or_else(|| "the Job failed".into()),
    })
}

fn judge_pod(pod: &Pod, steps: &[String]) -> PodState {
    let Some(status) = pod.status.as_ref() else {
        return PodState::Queued { reason: None };
    };
    // Unschedulable: queued, with the scheduler's reason.
    if let Some(c) = status
        .conditions
        .as_ref()
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled" && c.status == "False"))
    {
        return PodState::Queued {
            reason: c.message.clone().or_else(|| c.reason.clone()),
        };
    }
    let image_of = |name: &str| -> String {
        let spec = pod.spec.as_ref();
        spec.and_then(|s| {
            s.init_containers
                .iter()
                .flatten()
                .chain(s.containers.iter())
                .find(|c| c.name == name)
                .and_then(|c| c.image.clone())
        })
        .unwrap_or_default()
    };
    let limit_of = |name: &str| -> Option<String> {
        let spec = pod.spec.as_ref()?;
        let c = spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .find(|c| c.name == name)?;
        c.resources
            .as_ref()?
            .limits
            .as_ref()?
            .get("memory")
            .map(|q| q.0.clone())
    };
    let all: Vec<&ContainerStatus> = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .collect();
    let by_name = |name: &str| all.iter().copied().find(|c| c.name == name);
    let mut running = None;
    let mut done = 0;
    for step in steps {
        let Some(cs) = by_name(step) else { continue };
        let state = cs.state.as_ref();
        if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
            if let Some(reason) = w.reason.as_deref().filter(|r| PULL_FAILURES.contains(r)) {
                return PodState::PullFailed {
                    step: step.clone(),
                    image: image_of(step),
                    message: w.message.clone().unwrap_or_else(|| reason.to_string()),
                };
            }
        }
        if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            if t.reason.as_deref() == Some("OOMKilled") {
                return PodState::OutOfMemory {
                    step: step.clone(),
                    limit: limit_of(step),
                };
            }
            if t.exit_code != 0 {
                return PodState::StepFailed {
                    step: step.clone(),
                    exit_code: t.exit_code,
                    message: t.message.clone().filter(|m| !m.trim().is_empty()),
                };
            }
            done += 1;
            continue;
        }
        if state.and_then(|s| s.running.as_ref()).is_some() {
            running = Some(step.clone());
        }
    }
    if done == steps.len() && !steps.is_empty() {
        return PodState::Succeeded;
    }
    if let Some(step) = running {
        return PodState::Running { step };
    }
    match status.phase.as_deref() {
        Some("Failed") => PodState::Failed {
            message: status
                .message
                .clone()
                .or_else(|| status.reason.clone())
                .unwrap_or_else(|| "the build pod failed".into()),
        },
        Some("Pending") if pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none() => {
            PodState::Queued { reason: None }
        }
        _ => PodState::Starting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn steps() -> Vec<String> {
        vec!["checkout".into(), "build".into(), "push".into()]
    }

    fn pod(status: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {
                "nodeName": "n1",
                "initContainers": [
                    {"name": "checkout", "image": "exec:1"},
                    {"name": "build", "image": "builders/node@sha256:1", "resources": {"limits": {"memory": "256Mi"}}},
                ],
                "containers": [{"name": "push", "image": "exec:1"}],
            },
            "status": status,
        }))
        .unwrap()
    }

    fn terminated(name: &str, code: i32, reason: &str) -> Value {
        json!({"name": name, "ready": false, "restartCount": 0, "image": "", "imageID": "",
               "state": {"terminated": {"exitCode": code, "reason": reason}}})
    }

    fn running(name: &str) -> Value {
        json!({"name": name, "ready": true, "restartCount": 0, "image": "", "imageID": "",
               "state": {"running": {}}})
    }

    fn waiting(name: &str, reason: &str, message: &str) -> Value {
        json!({"name": name, "ready": false, "restartCount": 0, "image": "", "imageID": "",
               "state": {"waiting": {"reason": reason, "message": message}}})
    }

    #[test]
    fn an_unschedulable_pod_is_a_queued_build_with_the_reason() {
        let mut p = pod(json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": "0/3 nodes are available: 3 Insufficient memory."}]}));
        p.spec.as_mut().unwrap().node_name = None;
        assert_eq!(
            judge(None, Some(&p), &steps()),
            PodState::Queued {
                reason: Some("0/3 nodes are available: 3 Insufficient memory.".into())
            }
        );
        assert_eq!(judge(None, None, &steps()), PodState::Queued { reason: None });
    }

    #[test]
    fn steps_are_followed_in_order() {
        let p = pod(json!({"phase": "Pending", "initContainerStatuses": [
            terminated("checkout", 0, "Completed"), running("build")]}));
        assert_eq!(
            judge(None, Some(&p), &steps()),
            PodState::Running { step: "build".into() }
        );
        let p = pod(json!({"phase": "Succeeded",
            "initContainerStatuses": [terminated("checkout", 0, "Completed"), terminated("build", 0, "Completed")],
            "containerStatuses": [terminated("push", 0, "Completed")]}));
        assert_eq!(judge(None, Some(&p), &steps()), PodState::Succeeded);
        let p = pod(json!({"phase": "Pending"}));
        assert_eq!(judge(None, Some(&p), &steps()), PodState::Starting);
    }

    #[test]
    fn a_pull_failure_names_the_step_image_and_registry_message() {
        let p = pod(json!({"phase": "Pending", "initContainerStatuses": [
            terminated("checkout", 0, "Completed"),
            waiting("build", "ErrImagePull", "rpc error: manifest unknown")]}));
        assert_eq!(
            judge(None, Some(&p), &steps()),
            PodState::PullFailed {
                step: "build".into(),
                image: "builders/node@sha256:1".into(),
                message: "rpc error: manifest unknown".into()
            }
        );
        let p = pod(json!({"phase": "Pending", "initContainerStatuses": [
            waiting("checkout", "ImagePullBackOff", "Back-off pulling image")]}));
        assert!(matches!(judge(None, Some(&p), &steps()), PodState::PullFailed { step, .. } if step == "checkout"));
        // Waiting for an ordinary reason is not a failure.
        let p = pod(json!({"phase": "Pending", "initContainerStatuses": [
            waiting("checkout", "PodInitializing", "")]}));
        assert_eq!(judge(None, Some(&p), &steps()), PodState::Starting);
    }

    #[test]
    fn exit_codes_and_oom_kills_name_the_step() {
        let p = pod(json!({"phase": "Failed", "initContainerStatuses": [
            terminated("checkout", 0, "Completed"), terminated("build", 3, "Error")]}));
        assert_eq!(
            judge(None, Some(&p), &steps()),
            PodState::StepFailed {
                step: "build".into(),
                exit_code: 3,
                message: None
            }
        );
        let p = pod(json!({"phase": "Failed", "initContainerStatuses": [
            terminated("checkout", 0, "Completed"), terminated("build", 137, "OOMKilled")]}));
        assert_eq!(
            judge(None, Some(&p), &steps()),
            PodState::OutOfMemory {
                step: "build".into(),
                limit: Some("256Mi".into())
            }
        );
    }

    #[test]
    fn the_deadline_is_a_timeout_whatever_the_pod_says() {
        let job: Job = serde_json::from_value(json!({"metadata": {"name": "j"}, "status": {"conditions": [
            {"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "Job was active longer than specified deadline"}]}}))
        .unwrap();
        let p = pod(json!({"phase": "Running", "initContainerStatuses": [running("checkout")]}));
        assert_eq!(judge(Some(&job), Some(&p), &steps()), PodState::DeadlineExceeded);
        assert!(PodState::DeadlineExceeded.is_final());
        assert!(!PodState::Running { step: "x".into() }.is_final());
    }

    #[test]
    fn a_failed_job_prefers_the_pods_own_reason() {
        let job: Job = serde_json::from_value(json!({"metadata": {"name": "j"}, "status": {"conditions": [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}}))
        .unwrap();
        let p = pod(json!({"phase": "Failed", "initContainerStatuses": [terminated("checkout", 128, "Error")]}));
        assert!(matches!(
            judge(Some(&job), Some(&p), &steps()),
            PodState::StepFailed { exit_code: 128, .. }
        ));
        assert_eq!(
            judge(Some(&job), None, &steps()),
            PodState::Failed {
                message: "Job has reached the specified backoff limit".into()
            }
        );
    }
}
