//! What a notification is about.

use prism_domain::words;
use serde::{Deserialize, Serialize};

words! {
    /// The events a project can subscribe a channel to.
    pub enum NoticeKind {
        BuildFailed => "build_failed",
        BuildSucceeded => "build_succeeded",
        DeployAwaitingApproval => "deploy_awaiting_approval",
        DeploySucceeded => "deploy_succeeded",
        DeployFailed => "deploy_failed",
        AutoRollback => "auto_rollback",
        HoldPlaced => "hold_placed",
        HoldOverridden => "hold_overridden",
        FreezeBroken => "freeze_broken",
        /// An admin's test of a channel (never subscribed to).
        Test => "test",
    }
}

/// One event, with what a reader needs to act on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub kind: NoticeKind,
    pub project: String,
    pub application: String,
    /// The release id (also the image tag).
    pub release: String,
    pub environment: Option<String>,
    /// Who did it (a user, or `system`).
    pub actor: String,
    /// Why: a failure's message, a hold's or a break-glass reason.
    pub reason: Option<String>,
    /// The page of the release, build or deploy in Prism's console.
    pub link: String,
}

impl NoticeKind {
    /// The events a project may subscribe to (all but the test message).
    pub fn subscribable() -> impl Iterator<Item = NoticeKind> {
        Self::ALL.iter().copied().filter(|k| *k != NoticeKind::Test)
    }
}
