//! Rollout status with `kubectl rollout status`'s logic for Deployments,
//! including the checks kube's own helper skips (observedGeneration, the
//! progress deadline).

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RolloutStatus {
    /// Still rolling; the message says what it waits for.
    Progressing {
        message: String,
        replicas: i64,
        updated: i64,
        ready: i64,
        available: i64,
    },
    Complete {
        replicas: i64,
    },
    /// The Deployment controller gave up (progress deadline exceeded).
    Failed {
        message: String,
    },
}

fn int(v: &serde_json::Value, ptr: &str) -> i64 {
    v.pointer(ptr).and_then(|x| x.as_i64()).unwrap_or(0)
}

/// Judges a Deployment object as read from the API server.
pub fn deployment_status(d: &serde_json::Value) -> RolloutStatus {
    let generation = int(d, "/metadata/generation");
    let observed = int(d, "/status/observedGeneration");
    let want = d.pointer("/spec/replicas").and_then(|x| x.as_i64()).unwrap_or(1);
    let total = int(d, "/status/replicas");
    let updated = int(d, "/status/updatedReplicas");
    let ready = int(d, "/status/readyReplicas");
    let available = int(d, "/status/availableReplicas");
    let progressing = |message: String| RolloutStatus::Progressing {
        message,
        replicas: want,
        updated,
        ready,
        available,
    };
    if generation > observed {
        return progressing("waiting for the deployment spec update to be observed".into());
    }
    let deadline_exceeded = d
        .pointer("/status/conditions")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded");
    if deadline_exceeded {
        return RolloutStatus::Failed {
            message: format!("deployment exceeded its progress deadline ({available} of {want} available)"),
        };
    }
    if updated < want {
        return progressing(format!("{updated} of {want} new replicas have been updated"));
    }
    if total > updated {
        return progressing(format!("{} old replicas are pending termination", total - updated));
    }
    if available < updated {
        return progressing(format!("{available} of {updated} updated replicas are available"));
    }
    RolloutStatus::Complete { replicas: want }
}

/// StatefulSet rollout, as `kubectl rollout status statefulset` judges it.
pub fn statefulset_status(s: &serde_json::Value) -> RolloutStatus {
    let generation = int(s, "/metadata/generation");
    let observed = int(s, "/status/observedGeneration");
    let want = s.pointer("/spec/replicas").and_then(|x| x.as_i64()).unwrap_or(1);
    let ready = int(s, "/status/readyReplicas");
    let updated = int(s, "/status/updatedReplicas");
    let progressing = |message: String| RolloutStatus::Progressing {
        message,
        replicas: want,
        updated,
        ready,
        available: ready,
    };
    let rolling = s
        .pointer("/spec/updateStrategy/type")
        .and_then(|t| t.as_str())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate";
    if observed == 0 || generation > observed {
        return progressing("waiting for the statefulset spec update to be observed".into());
    }
    if !rolling {
        return RolloutStatus::Complete { replicas: want };
    }
    if ready < want {
        return progressing(format!("waiting for {} pods to be ready", want - ready));
    }
    if let Some(partition) = s
        .pointer("/spec/updateStrategy/rollingUpdate/partition")
        .and_then(|p| p.as_i64())
    {
        if updated < want - partition {
            return progressing(format!(
                "{updated} of {} new pods have been updated (partition {partition})",
                want - partition
            ));
        }
        return RolloutStatus::Complete { replicas: want };
    }
    let current = s.pointer("/status/currentRevision").and_then(|v| v.as_str());
    let update = s.pointer("/status/updateRevision").and_then(|v| v.as_str());
    if current != update {
        return progressing(format!(
            "{updated} of {want} pods updated; waiting for the rolling update to complete"
        ));
    }
    RolloutStatus::Complete { replicas: want }
}

/// DaemonSet rollout, as `kubectl rollout status daemonset` judges it.
pub fn daemonset_status(d: &serde_json::Value) -> RolloutStatus {
    let generation = int(d, "/metadata/generation");
    let observed = int(d, "/status/observedGeneration");
    let desired = int(d, "/status/desiredNumberScheduled");
    let updated = int(d, "/status/updatedNumberScheduled");
    let available = int(d, "/status/numberAvailable");
    let ready = int(d, "/status/numberReady");
    let progressing = |message: String| RolloutStatus::Progressing {
        message,
        replicas: desired,
        updated,
        ready,
        available,
    };
    let rolling = d
        .pointer("/spec/updateStrategy/type")
        .and_then(|t| t.as_str())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate";
    if generation > observed {
        return progressing("waiting for the daemon set spec update to be observed".into());
    }
    if !rolling {
        return RolloutStatus::Complete { replicas: desired };
    }
    if updated < desired {
        return progressing(format!("{updated} of {desired} updated pods are scheduled"));
    }
    if available < desired {
        return progressing(format!("{available} of {desired} updated pods are available"));
    }
    RolloutStatus::Complete { replicas: desired }
}

/// The rollout judge for a kind, if that kind rolls out pods.
pub fn rollout_status(kind: &str, object: &serde_json::Value) -> Option<RolloutStatus> {
    match kind {
        "Deployment" => Some(deployment_status(object)),
        "StatefulSet" => Some(statefulset_status(object)),
        "DaemonSet" => Some(daemonset_status(object)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dep(gen: i64, observed: i64, status: serde_json::Value) -> serde_json::Value {
        let mut s = status;
        s["observedGeneration"] = json!(observed);
        json!({"metadata": {"generation": gen}, "spec": {"replicas": 3}, "status": s})
    }

    #[test]
    fn statefulsets_and_daemonsets_follow_kubectl() {
        let sts = |gen: i64, status: serde_json::Value| {
            let mut st = status;
            st["observedGeneration"] = json!(gen);
            json!({"metadata": {"generation": 2}, "spec": {"replicas": 3}, "status": st})
        };
        assert!(matches!(
            statefulset_status(&sts(1, json!({"readyReplicas": 3}))),
            RolloutStatus::Progressing { .. }
        ));
        assert!(matches!(
            statefulset_status(&sts(2, json!({"readyReplicas": 2}))),
            RolloutStatus::Progressing { .. }
        ));
        assert!(matches!(
            statefulset_status(&sts(
                2,
                json!({"readyReplicas": 3, "currentRevision": "a", "updateRevision": "b"})
            )),
            RolloutStatus::Progressing { .. }
        ));
        assert_eq!(
            statefulset_status(&sts(
                2,
                json!({"readyReplicas": 3, "currentRevision": "b", "updateRevision": "b"})
            )),
            RolloutStatus::Complete { replicas: 3 }
        );
        let ds = |status: serde_json::Value| {
            let mut st = status;
            st["observedGeneration"] = json!(2);
            json!({"metadata": {"generation": 2}, "status": st})
        };
        assert!(matches!(
            daemonset_status(&ds(
                json!({"desiredNumberScheduled": 2, "updatedNumberScheduled": 1, "numberAvailable": 2})
            )),
            RolloutStatus::Progressing { .. }
        ));
        assert!(matches!(
            daemonset_status(&ds(
                json!({"desiredNumberScheduled": 2, "updatedNumberScheduled": 2, "numberAvailable": 1})
            )),
            RolloutStatus::Progressing { .. }
        ));
        assert_eq!(
            daemonset_status(&ds(
                json!({"desiredNumberScheduled": 2, "updatedNumberScheduled": 2, "numberAvailable": 2})
            )),
            RolloutStatus::Complete { replicas: 2 }
        );
        assert!(rollout_status("Service", &json!({})).is_none());
    }

    #[test]
    fn follows_kubectl() {
        assert!(
            matches!(
                deployment_status(&dep(
                    2,
                    1,
                    json!({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3})
                )),
                RolloutStatus::Progressing { .. }
            ),
            "stale observedGeneration"
        );
        assert!(matches!(
            deployment_status(&dep(
                2,
                2,
                json!({"replicas": 3, "updatedReplicas": 1, "availableReplicas": 3})
            )),
            RolloutStatus::Progressing { .. }
        ));
        assert!(
            matches!(
                deployment_status(&dep(
                    2,
                    2,
                    json!({"replicas": 4, "updatedReplicas": 3, "availableReplicas": 3})
                )),
                RolloutStatus::Progressing { .. }
            ),
            "old pods left"
        );
        assert!(matches!(
            deployment_status(&dep(
                2,
                2,
                json!({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 2})
            )),
            RolloutStatus::Progressing { .. }
        ));
        assert_eq!(
            deployment_status(&dep(
                2,
                2,
                json!({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3})
            )),
            RolloutStatus::Complete { replicas: 3 }
        );
        let failed = dep(
            2,
            2,
            json!({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 0, "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
        );
        assert!(matches!(deployment_status(&failed), RolloutStatus::Failed { .. }));
    }
}
