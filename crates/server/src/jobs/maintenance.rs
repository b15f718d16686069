//! The periodic sweep: ends holds whose time ran out (each audited), marks
//! lapsed API tokens revoked, deletes expired browser sessions, deletes
//! finished notification deliveries older than the log's retention
//! (`settings.notify.log_retention_ms`), and fails builds and deploys whose
//! job ran out of attempts (so nothing stays "in progress" forever). Every
//! step is idempotent, so a sweep that runs twice does no harm.

use prism_domain::ReleaseId;
use prism_jobs::{Cancel, Job};
use prism_store::audit::{self, Origin};
use prism_store::{base_images, builds, deploys, notifications, slots, tokens};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::JobError;
use crate::state::AppState;

/// One sweep per period (the period number deduplicates it across instances).
#[derive(Debug, Serialize, Deserialize)]
pub struct MaintenanceJob {
    #[serde(default)]
    pub period: i64,
}

impl MaintenanceJob {
    pub fn for_period(period: i64) -> Self {
        MaintenanceJob { period }
    }
}

impl Job for MaintenanceJob {
    const KIND: &'static str = "maintenance";
    const MAX_ATTEMPTS: i64 = 3;
    type Context = AppState;

    fn dedup_key(&self) -> Option<String> {
        Some(format!("{}:{}", Self::KIND, self.period))
    }

    async fn run(&self, ctx: &AppState, _cancel: Cancel) -> Result<(), JobError> {
        run(ctx).await
    }
}

async fn run(state: &AppState) -> Result<(), JobError> {
    let mut tx = state.store.begin().await?;
    let expired = slots::expire_holds(&mut tx).await?;
    let origin = Origin::system("maintenance");
    for h in &expired {
        let detail = json!({"app_id": h.app_id, "env_id": h.env_id, "holder": h.hold_user, "release": h.hold_release_id.map(ReleaseId::from_seq)});
        audit::record(
            &mut tx,
            &origin,
            "environment.hold_expired",
            "slot",
            &format!("{}/{}", h.app_id, h.env_id),
            detail,
        )
        .await?;
    }
    let tokens_expired = tokens::expire_tokens(&mut tx).await?;
    if tokens_expired > 0 {
        audit::record(
            &mut tx,
            &origin,
            "token.expire",
            "token",
            "*",
            json!({"count": tokens_expired}),
        )
        .await?;
    }
    let sessions = tokens::delete_expired_sessions(&mut tx).await?;
    tx.commit().await?;
    // The delivery log: finished deliveries past the retention go, with
    // their attempts; those still queued or retrying stay.
    let mut tx = state.store.begin().await?;
    let deliveries =
        notifications::prune_deliveries(&mut tx, prism_store::now_ms() - state.settings.notify.log_retention_ms)
            .await?;
    tx.commit().await?;
    if deliveries > 0 {
        tracing::info!(deliveries, "pruned the notification delivery log");
    }
    // Idempotency keys protect retries, which come within minutes; a day is
    // plenty. A failure here must not keep the sweep from the rest.
    match prune_idempotency_keys(state).await {
        Ok(0) => {}
        Ok(keys) => tracing::debug!(keys, "pruned idempotency keys"),
        Err(e) => tracing::warn!(error = %e, "could not prune idempotency keys"),
    }
    fail_orphans(state).await?;
    // Build Jobs and Secrets on Kubernetes runners whose build is gone or over.
    // Bounded: an unreachable build cluster must not hold up the sweep.
    let reaped = tokio::time::timeout(std::time::Duration::from_secs(30), super::build_kube::reap(state)).await;
    for r in reaped.unwrap_or_default() {
        tracing::info!(what = %r, "reaped a build Job or Secret");
    }
    tracing::debug!(
        holds = expired.len(),
        tokens = tokens_expired,
        sessions,
        deliveries,
        "maintenance sweep"
    );
    Ok(())
}

/// Work in progress with no job left to advance it and no progress for a
/// while: its last attempt died (crash, lease lost) and was not retried.
const ORPHAN_QUIET_MS: i64 = 120_000;

async fn fail_orphans(state: &AppState) -> Result<(), JobError> {
    let (orphan_builds, orphan_deploys, stale_bases) = {
        let mut c = state.store.conn().await?;
        (
            builds::orphaned(&mut c, ORPHAN_QUIET_MS).await?,
            deploys::orphaned(&mut c, ORPHAN_QUIET_MS).await?,
            base_images::stale_builds(&mut c, ORPHAN_QUIET_MS).await?,
        )
    };
    for id in stale_bases {
        let mut tx = state.store.begin().await?;
        base_images::set_state(
            &mut tx,
            id,
            prism_domain::BaseBuildState::Failed,
            Some("the build's last attempt stopped and no attempt is left"),
        )
        .await?;
        audit::record(
            &mut tx,
            &Origin::system("maintenance"),
            "base_image.failed",
            "base_image",
            &id.to_string(),
            json!({"error": "interrupted"}),
        )
        .await?;
        tx.commit().await?;
    }
    for id in orphan_builds {
        let f = super::build::Failure {
            kind: prism_domain::BuildFailure::Interrupted,
            message: "the build's last attempt stopped (server restarted or lost its lease) and no attempt is left"
                .into(),
        };
        super::build::fail(state, id, &f).await?;
    }
    for id in orphan_deploys {
        let d = deploys::get(&mut *state.store.conn().await?, id).await?;
        super::deploy::fail(
            state,
            &d,
            prism_domain::DeployFailure::Interrupted,
            "the deploy's last attempt stopped and no attempt is left",
        )
        .await?;
    }
    Ok(())
}

async fn prune_idempotency_keys(state: &AppState) -> prism_store::Result<u64> {
    let mut tx = state.store.begin().await?;
    let n = prism_store::idempotency::prune(&mut tx, prism_store::now_ms() - crate::idempotency::KEEP_MS).await?;
    tx.commit().await?;
    Ok(n)
}
