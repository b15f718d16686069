//! Environments: the lifecycle's steps, each with its cluster, namespace,
//! deploy policy and rules. Everyone signed in reads them; admins change them.

use prism_api::environments::{BindNamespace, CreateEnvironment, UpdateEnvironment};
use prism_domain::{EnvPolicy, Name, NamespacePattern};
use prism_store::environments::{self, Environment, EnvironmentPatch, NewEnvironment};
use prism_store::{audit, clusters};
use serde_json::json;

use super::{access, referenced, Ctx, OpError, OpResult};
use crate::auth::Caller;

/// Every environment in lifecycle order (everyone signed in may read them).
pub async fn list(ctx: &Ctx) -> OpResult<Vec<Environment>> {
    Ok(environments::list(&mut *ctx.store.conn().await?).await?)
}

pub async fn get(ctx: &Ctx, name: &str) -> OpResult<Environment> {
    Ok(environments::by_name(&mut *ctx.store.conn().await?, name).await?)
}

async fn cluster_id(c: &mut prism_store::AnyConnection, name: &str) -> OpResult<i64> {
    Ok(referenced("cluster", clusters::by_name(c, name).await)?.id)
}

fn position(field: &str, p: Option<i64>) -> OpResult<Option<i64>> {
    match p {
        Some(p) if !(0..=1_000_000).contains(&p) => Err(OpError::invalid(field, "must be between 0 and 1000000")),
        p => Ok(p),
    }
}

pub async fn create(ctx: &Ctx, caller: &Caller, req: CreateEnvironment) -> OpResult<Environment> {
    access::require_admin(caller)?;
    let name = Name::parse("name", &req.name)?;
    let namespace = NamespacePattern::parse("namespace", &req.namespace)?;
    let policy = req.policy.unwrap_or_else(EnvPolicy::formal);
    policy.validate()?;
    let position = position("position", req.position)?;
    let mut tx = ctx.store.begin().await?;
    let cluster_id = match &req.cluster {
        Some(n) => Some(cluster_id(&mut tx, n).await?),
        None => None,
    };
    let env = environments::create(
        &mut tx,
        NewEnvironment {
            name: name.as_str(),
            position,
            cluster_id,
            namespace: namespace.as_str(),
            policy: &policy,
        },
    )
    .await?;
    let env = match &req.rules {
        Some(rules) => {
            let patch = EnvironmentPatch {
                rules: Some(rules),
                position: None,
                cluster_id: None,
                namespace: None,
                policy: None,
            };
            environments::update(&mut tx, env.id, patch).await?
        }
        None => env,
    };
    audit::record(
        &mut tx,
        &caller.origin(),
        "environment.create",
        "environment",
        name.as_str(),
        serde_json::to_value(&env).unwrap_or_default(),
    )
    .await?;
    tx.commit().await?;
    Ok(env)
}

pub async fn update(ctx: &Ctx, caller: &Caller, name: &str, req: UpdateEnvironment) -> OpResult<Environment> {
    access::require_admin(caller)?;
    let namespace = req
        .namespace
        .as_deref()
        .map(|n| NamespacePattern::parse("namespace", n))
        .transpose()?;
    if let Some(p) = &req.policy {
        p.validate()?;
    }
    let position = position("position", req.position)?;
    let mut tx = ctx.store.begin().await?;
    let env = environments::by_name(&mut tx, name).await?;
    let cluster_id = match &req.cluster {
        None => None,
        Some(None) => Some(None),
        Some(Some(n)) => Some(Some(cluster_id(&mut tx, n).await?)),
    };
    let patch = EnvironmentPatch {
        rules: req.rules.as_ref(),
        position,
        cluster_id,
        namespace: namespace.as_ref().map(|n| n.as_str()),
        policy: req.policy.as_ref(),
    };
    let updated = environments::update(&mut tx, env.id, patch).await?;
    let detail = json!({"before": env, "after": updated});
    audit::record(
        &mut tx,
        &caller.origin(),
        "environment.update",
        "environment",
        name,
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok(updated)
}

pub async fn delete(ctx: &Ctx, caller: &Caller, name: &str) -> OpResult<()> {
    access::require_admin(caller)?;
    let mut tx = ctx.store.begin().await?;
    let env = environments::by_name(&mut tx, name).await?;
    environments::delete(&mut tx, env.id).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "environment.delete",
        "environment",
        name,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The environment's per-project namespace bindings (everyone signed in may read them).
pub async fn namespace_bindings(ctx: &Ctx, env: &str) -> OpResult<Vec<environments::NamespaceBinding>> {
    let mut c = ctx.store.conn().await?;
    let env = environments::by_name(&mut c, env).await?;
    Ok(environments::namespace_bindings(&mut c, env.id).await?)
}

pub async fn bind_namespace(
    ctx: &Ctx,
    caller: &Caller,
    env: &str,
    project: &str,
    req: BindNamespace,
) -> OpResult<Vec<environments::NamespaceBinding>> {
    access::require_admin(caller)?;
    let namespace = Name::parse("namespace", req.namespace.trim())?;
    let mut tx = ctx.store.begin().await?;
    let e = environments::by_name(&mut tx, env).await?;
    let p = referenced("project", prism_store::projects::by_name(&mut tx, project).await)?;
    environments::bind_namespace(&mut tx, e.id, p.id, namespace.as_str())
        .await
        .map_err(|err| match err {
            prism_store::StoreError::Duplicate { .. } => OpError::invalid(
                "namespace",
                format!("namespace {namespace} is already bound to another project in environment {env}"),
            ),
            other => other.into(),
        })?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "environment.namespace.bind",
        "environment",
        env,
        json!({"project": project, "namespace": namespace.as_str()}),
    )
    .await?;
    let all = environments::namespace_bindings(&mut tx, e.id).await?;
    tx.commit().await?;
    Ok(all)
}

pub async fn unbind_namespace(ctx: &Ctx, caller: &Caller, env: &str, project: &str) -> OpResult<()> {
    access::require_admin(caller)?;
    let mut tx = ctx.store.begin().await?;
    let e = environments::by_name(&mut tx, env).await?;
    let p = prism_store::projects::by_name(&mut tx, project).await?;
    if !environments::unbind_namespace(&mut tx, e.id, p.id).await? {
        return Err(prism_store::StoreError::not_found("namespace binding", format!("{env}/{project}")).into());
    }
    audit::record(
        &mut tx,
        &caller.origin(),
        "environment.namespace.unbind",
        "environment",
        env,
        json!({"project": project}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
