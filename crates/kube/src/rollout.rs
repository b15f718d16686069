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
