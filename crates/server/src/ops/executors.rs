//! Build executors besides the built-in local one: Jenkins jobs a build is
//! handed to (the API token sealed, never returned). Everyone signed in reads
//! them; admins change them.

use prism_domain::Name;
use prism_store::audit;
use prism_store::credentials::{self, ExecutorRecord, NewExecutor};
use serde::Deserialize;
use serde_json::json;

use super::{access, Ctx, OpError, OpResult};
use crate::auth::Caller;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateExecutor {
    pub name: String,
    /// `jenkins`
    pub kind: String,
    /// Jenkins' base URL.
    pub url: String,
    /// The parameterised job, folders separated by `/`.
    pub job: String,
    pub username: String,
    /// API token; stored encrypted, never returned.
    pub token: String,
}

/// Every executor (everyone signed in may read them; no token is returned).
pub async fn list(ctx: &Ctx) -> OpResult<Vec<ExecutorRecord>> {
    Ok(credentials::list_executors(&mut *ctx.store.conn().await?).await?)
}

pub async fn create_executor(ctx: &Ctx, caller: &Caller, req: CreateExecutor) -> OpResult<ExecutorRecord> {
    access::require_admin(caller)?;
    let name = Name::parse("name", &req.name)?;
    if name.as_str() == prism_domain::build::LOCAL_EXECUTOR {
        return Err(OpError::invalid("name", "`local` is the built-in executor"));
    }
    if req.kind != "jenkins" {
        return Err(OpError::invalid("kind", "must be jenkins"));
    }
    super::clusters::validate_url("url", &req.url)?;
    let job_ok = !req.job.is_empty()
        && req.job.len() <= 512
        && req.job.split('/').all(|c| {
            !c.is_empty() && c != "." && c != ".." && c.chars().all(|ch| ch.is_alphanumeric() || " ._-".contains(ch))
        });
    if !job_ok {
        return Err(OpError::invalid(
            "job",
            "must be a Jenkins job path: names of letters, digits, ' ', '.', '_' or '-' separated by '/'",
        ));
    }
    super::secret_text("username", &req.username, 256)?;
    super::secret_text("token", &req.token, 4096)?;
    let mut tx = ctx.store.begin().await?;
    let saved = credentials::create_executor(
        &mut tx,
        NewExecutor {
            name: name.as_str(),
            kind: &req.kind,
            url: req.url.trim_end_matches('/'),
            job: &req.job,
            username: &req.username,
            token_enc: ctx.secrets.seal(req.token.as_bytes()),
        },
    )
    .await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "executor.create",
        "executor",
        name.as_str(),
        json!({"kind": req.kind, "url": saved.url, "job": req.job, "username": req.username}),
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
}

pub async fn delete_executor(ctx: &Ctx, caller: &Caller, name: &str) -> OpResult<()> {
    access::require_admin(caller)?;
    let mut tx = ctx.store.begin().await?;
    credentials::delete_executor(&mut tx, name).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "executor.delete",
        "executor",
        name,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
