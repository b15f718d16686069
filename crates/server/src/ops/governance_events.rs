//! Events of release governance that people will be told about (issue 12
//! item 3, notifications, is built on this): each is recorded in the audit
//! log, in the same transaction as the change it reports, as the action
//! `event.<name>` on the deploy. A notifier reads them from there (or hooks
//! into [`emit`]); nothing here delivers anything.

use prism_store::audit::{self, Origin};
use prism_store::AnyConnection;
use serde_json::json;

/// Something subscribers may want to hear of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GovernanceEvent<'a> {
    /// A planned deploy waits for `need` more approvals.
    DeployWaitingForApproval {
        deploy: i64,
        environment: &'a str,
        need: u8,
    },
    /// An approved deploy waits for its environment's window.
    DeployWaitingForWindow {
        deploy: i64,
        environment: &'a str,
        opens: Option<&'a str>,
    },
    /// Someone allowed to broke glass: deployed while deploying was closed.
    FreezeBroken {
        deploy: i64,
        environment: &'a str,
        by: &'a str,
        reason: &'a str,
        closed_by: &'a str,
    },
    /// A deploy was rejected by someone allowed to vote.
    DeployRejected { deploy: i64, by: &'a str, comment: &'a str },
}

impl GovernanceEvent<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            Self::DeployWaitingForApproval { .. } => "deploy_waiting_for_approval",
            Self::DeployWaitingForWindow { .. } => "deploy_waiting_for_window",
            Self::FreezeBroken { .. } => "freeze_broken",
            Self::DeployRejected { .. } => "deploy_rejected",
        }
    }

    fn deploy(&self) -> i64 {
        match self {
            Self::DeployWaitingForApproval { deploy, .. }
            | Self::DeployWaitingForWindow { deploy, .. }
            | Self::FreezeBroken { deploy, .. }
            | Self::DeployRejected { deploy, .. } => *deploy,
        }
    }

    fn detail(&self) -> serde_json::Value {
        match self {
            Self::DeployWaitingForApproval { environment, need, .. } => {
                json!({"environment": environment, "approvals_needed": need})
            }
            Self::DeployWaitingForWindow { environment, opens, .. } => {
                json!({"environment": environment, "opens": opens})
            }
            Self::FreezeBroken {
                environment,
                by,
                reason,
                closed_by,
                ..
            } => json!({"environment": environment, "by": by, "reason": reason, "closed_by": closed_by}),
            Self::DeployRejected { by, comment, .. } => json!({"by": by, "comment": comment}),
        }
    }
}

/// Records `event` (the hook point for notifications).
pub async fn emit(c: &mut AnyConnection, origin: &Origin, event: GovernanceEvent<'_>) -> prism_store::Result<()> {
    audit::record(
        c,
        origin,
        &format!("event.{}", event.name()),
        "deploy",
        &event.deploy().to_string(),
        event.detail(),
    )
    .await
}
