use prism_api::deploys as api;
use prism_store::deploys as store;

use super::ToApi;

/// The row ids of the application, environment and project stay behind.
impl ToApi for store::Deploy {
    type Api = api::Deploy;
    fn to_api(self) -> api::Deploy {
        api::Deploy {
            id: self.id,
            release: self.release.to_string(),
            application: self.application,
            environment: self.environment,
            kind: self.kind,
            state: self.state,
            failure_kind: self.failure_kind,
            template_version: self.template_version,
            manifests: self.manifests,
            diff: self.diff,
            requested_by: self.requested_by,
            reviewer: self.reviewer,
            review_comment: self.review_comment,
            reviewed_at: self.reviewed_at,
            rollback_of: self.rollback_of,
            error: self.error,
            created_at: self.created_at,
            updated_at: self.updated_at,
            finished_at: self.finished_at,
            break_glass_by: self.break_glass_by,
            break_glass_reason: self.break_glass_reason,
            opens_at: self.opens_at,
            opens_local: self.opens_local,
            rollout: self.rollout,
            rollout_command: self.rollout_command,
        }
    }
}

/// An event's data column is JSON; unreadable data shows as null.
impl ToApi for store::DeployEvent {
    type Api = api::DeployEvent;
    fn to_api(self) -> api::DeployEvent {
        api::DeployEvent {
            id: self.id,
            deploy_id: self.deploy_id,
            at: self.at,
            step: self.step,
            message: self.message,
            data: serde_json::from_str(&self.data).unwrap_or(serde_json::Value::Null),
        }
    }
}
