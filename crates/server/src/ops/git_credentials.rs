//! Git credentials builds check out private repositories with (the
//! password sealed, never returned). Admins only.

use prism_domain::Name;
use prism_store::audit;
use prism_store::credentials::{self, GitCredential};
use serde::Deserialize;
use serde_json::json;

use super::{access, Ctx, OpResult};
use crate::auth::Caller;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutGitCredential {
    pub username: String,
    /// Password or access token; stored encrypted, never returned.
    pub password: String,
}

pub async fn list(ctx: &Ctx, caller: &Caller) -> OpResult<Vec<GitCredential>> {
    access::require_admin(caller)?;
    Ok(credentials::list_git_credentials(&mut *ctx.store.conn().await?).await?)
}

pub async fn put_git_credential(
    ctx: &Ctx,
    caller: &Caller,
    name: &str,
    req: PutGitCredential,
) -> OpResult<GitCredential> {
    access::require_admin(caller)?;
    let name = Name::parse("name", name)?;
    super::secret_text("username", &req.username, 256)?;
    super::secret_text("password", &req.password, 16 * 1024)?;
    let mut tx = ctx.store.begin().await?;
    let saved = credentials::put_git_credential(
        &mut tx,
        name.as_str(),
        &req.username,
        ctx.secrets.seal(req.password.as_bytes()),
    )
    .await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "git_credential.put",
        "git_credential",
        name.as_str(),
        json!({"username": req.username}),
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
}

pub async fn delete_git_credential(ctx: &Ctx, caller: &Caller, name: &str) -> OpResult<()> {
    access::require_admin(caller)?;
    let mut tx = ctx.store.begin().await?;
    credentials::delete_git_credential(&mut tx, name).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "git_credential.delete",
        "git_credential",
        name,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
