//! Build executors besides the built-in local one: Jenkins jobs a build is
//! handed to (the API token sealed, never returned), and Kubernetes build
//! runners (a registered cluster and a namespace whose Jobs run the builds).
//! Everyone signed in reads them; admins change them.

use prism_api::credentials::CreateExecutor;
use prism_domain::Name;
use prism_store::audit;
use prism_store::credentials::{self, ExecutorRecord, Kind, NewExecutor};
use serde_json::json;

use super::credential_scope::ScopeRequest;
use super::{access, Ctx, OpError, OpResult};
use crate::auth::Caller;

/// The executors the caller's projects may use (admins: all; no token is
/// returned).
pub async fn list(ctx: &Ctx, caller: &Caller) -> OpResult<Vec<ExecutorRecord>> {
    let mut c = ctx.store.conn().await?;
    let all = credentials::list_executors(&mut c).await?;
    super::credential_scope::visible(&mut c, caller, all, |e| (e.all_projects != 0, &e.projects)).await
}

pub async fn create_executor(ctx: &Ctx, caller: &Caller, req: CreateExecutor) -> OpResult<ExecutorRecord> {
    access::require_admin(caller)?;
    let name = Name::parse("name", &req.name)?;
    if name.as_str() == prism_domain::build::LOCAL_EXECUTOR {
        return Err(OpError::invalid("name", "`local` is the built-in executor"));
    }
    match req.kind.as_str() {
        "jenkins" => {}
        KUBERNETES => return create_runner(ctx, caller, &name, req).await,
        _ => return Err(OpError::invalid("kind", "must be jenkins or kubernetes")),
    }
    if req.kubernetes.is_some() {
        return Err(OpError::invalid("kubernetes", "only for kind kubernetes"));
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
    let scope = ScopeRequest {
        all_projects: req.all_projects,
        projects: req.projects.clone(),
    };
    let mut tx = ctx.store.begin().await?;
    let (all, ids) = scope.resolve(&mut tx).await?;
    credentials::create_executor(
        &mut tx,
        NewExecutor {
            name: name.as_str(),
            kind: &req.kind,
            url: req.url.trim_end_matches('/'),
            job: &req.job,
            username: &req.username,
            token_enc: ctx.secrets.seal(req.token.as_bytes()),
            settings: "{}",
        },
    )
    .await?;
    credentials::set_scope(&mut tx, Kind::Executor, name.as_str(), all, &ids).await?;
    let saved = credentials::executor(&mut tx, name.as_str()).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "executor.create",
        "executor",
        name.as_str(),
        json!({"kind": req.kind, "url": saved.url, "job": req.job, "username": req.username,
               "all_projects": all, "projects": saved.projects}),
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
}

/// The kind of a Kubernetes build runner.
pub const KUBERNETES: &str = "kubernetes";

/// Registers a Kubernetes build runner: its cluster must be registered, its
/// settings valid; nothing secret is stored with it (the cluster's token
/// stays on the cluster record).
async fn create_runner(ctx: &Ctx, caller: &Caller, name: &Name, req: CreateExecutor) -> OpResult<ExecutorRecord> {
    for (field, v) in [
        ("url", &req.url),
        ("job", &req.job),
        ("username", &req.username),
        ("token", &req.token),
    ] {
        if !v.is_empty() {
            return Err(OpError::invalid(field, "only for kind jenkins"));
        }
    }
    let raw = req.kubernetes.ok_or_else(|| {
        OpError::invalid(
            "kubernetes",
            "is required for kind kubernetes: {\"cluster\", \"namespace\"}",
        )
    })?;
    let settings = prism_kube::build_job::RunnerSettings::parse("kubernetes", &raw)?;
    let scope = ScopeRequest {
        all_projects: req.all_projects,
        projects: req.projects.clone(),
    };
    let mut tx = ctx.store.begin().await?;
    let (all, ids) = scope.resolve(&mut tx).await?;
    match prism_store::clusters::by_name(&mut tx, &settings.cluster).await {
        Ok(_) => {}
        Err(prism_store::StoreError::NotFound { .. }) => {
            return Err(OpError::invalid(
                "kubernetes.cluster",
                format!("no cluster named {:?} is registered", settings.cluster),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let json = serde_json::to_string(&settings).expect("settings serialize");
    credentials::create_executor(
        &mut tx,
        NewExecutor {
            name: name.as_str(),
            kind: KUBERNETES,
            url: "",
            job: "",
            username: "",
            token_enc: Vec::new(),
            settings: &json,
        },
    )
    .await?;
    credentials::set_scope(&mut tx, Kind::Executor, name.as_str(), all, &ids).await?;
    let saved = credentials::executor(&mut tx, name.as_str()).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "executor.create",
        "executor",
        name.as_str(),
        json!({"kind": KUBERNETES, "kubernetes": settings, "all_projects": all, "projects": saved.projects}),
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
