//! The periodic sweep: ends holds whose time ran out (each audited), marks
//! lapsed API tokens revoked, and deletes expired browser sessions. Every
//! step is idempotent, so a sweep that runs twice does no harm.

use prism_domain::ReleaseId;
use prism_store::audit::{self, Origin};
use prism_store::{slots, tokens};
use serde_json::json;

use super::JobError;
use crate::app::AppState;

pub async fn run(state: &AppState) -> Result<(), JobError> {
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
    tracing::debug!(
        holds = expired.len(),
        tokens = tokens_expired,
        sessions,
        "maintenance sweep"
    );
    Ok(())
}
