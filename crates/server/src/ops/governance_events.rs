//! Events of release governance that people are told about: each is
//! recorded in the audit log, in the same transaction as the change it
//! reports, as the action `event.<name>` on the deploy; those a project may
//! subscribe to (a deploy waiting for approval, broken glass) are announced
//! to its subscribers there too (`services::notices`, which queues the
//! deliveries; nothing here sends anything).

use prism_store::audit::{self, Origin};
use prism_store::AnyConnection;
use serde_json::json;

use crate::services::notices::{announce, Event};
use prism_notify::NoticeKind;

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

    /// What the project's subscribers hear of it: deploys waiting for
    /// approval and broken glass (with who broke it and why).
    fn notice(&self) -> Option<(NoticeKind, Option<&str>, Option<&str>)> {
        match self {
            Self::DeployWaitingForApproval { .. } => Some((NoticeKind::DeployAwaitingApproval, None, None)),
            Self::FreezeBroken { by, reason, .. } => Some((NoticeKind::FreezeBroken, Some(*by), Some(*reason))),
            Self::DeployWaitingForWindow { .. } | Self::DeployRejected { .. } => None,
        }
    }
}

/// Records `event`, and announces it to the project's subscribers
/// (`services::notices`) in the same transaction.
pub async fn emit(c: &mut AnyConnection, origin: &Origin, event: GovernanceEvent<'_>) -> prism_store::Result<()> {
    audit::record(
        c,
        origin,
        &format!("event.{}", event.name()),
        "deploy",
        &event.deploy().to_string(),
        event.detail(),
    )
    .await?;
    if let Some((kind, by, reason)) = event.notice() {
        let d = prism_store::deploys::get(c, event.deploy()).await?;
        // Waiting for approval: the requester's deploy; broken glass: who broke it.
        let actor = by.unwrap_or(&d.requested_by).to_owned();
        announce(c, Event::deploy(kind, &d, &actor, reason)).await?;
    }
    Ok(())
}
