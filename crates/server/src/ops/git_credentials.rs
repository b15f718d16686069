//! Git credentials builds check out private repositories with (the
//! password sealed, never returned), each bound to the one host it is sent
//! to and to the projects allowed to use it. Admins only.

use prism_api::credentials::PutGitCredential;
use prism_domain::Name;
use prism_store::audit;
use prism_store::credentials::{self, GitCredential, Kind};
use serde_json::json;

use super::credential_scope::ScopeRequest;
use super::{access, Ctx, OpResult};
use crate::auth::Caller;

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
    super::registries::validate_host("host", &req.host)?;
    let host = req.host.to_ascii_lowercase();
    let scope = ScopeRequest {
        all_projects: req.all_projects,
        projects: req.projects.clone(),
    };
    let mut tx = ctx.store.begin().await?;
    let (all, ids) = scope.resolve(&mut tx).await?;
    credentials::put_git_credential(
        &mut tx,
        name.as_str(),
        &req.username,
        ctx.secrets.seal(req.password.as_bytes()),
        &host,
    )
    .await?;
    if scope.given() {
        credentials::set_scope(&mut tx, Kind::GitCredential, name.as_str(), all, &ids).await?;
    }
    let saved = credentials::git_credential(&mut tx, name.as_str()).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "git_credential.put",
        "git_credential",
        name.as_str(),
        json!({"username": req.username, "host": host, "all_projects": saved.all_projects != 0, "projects": saved.projects}),
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
