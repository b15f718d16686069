//! Application secrets (issue 19): set, reference, list and remove the
//! sensitive values of an application or of a whole project, per
//! environment or for every environment.
//!
//! Write-only: a value is sealed with Prism's key on the way in and never
//! returned, not to admins either; lists show name, scope, source, version,
//! who changed it and when. Every project member may list them. Changing
//! one in an environment needs the right to deploy there (the environment's
//! deploy roles); one for every environment needs it in each. The audit log
//! records who changed which name in which scope, never the value.

use prism_api::app_secrets::PutSecret;
use prism_domain::app_secret::parse_secret_reference;
use prism_domain::{RoleSet, SecretDelivery, SecretName, SecretSource};
use prism_store::app_secrets::{self, AppSecret, Scope, SecretFields};
use prism_store::environments::{self, Environment};
use prism_store::{audit, AnyConnection};
use serde::Deserialize;
use serde_json::json;

use super::{access, Ctx, OpError, OpResult};
use crate::auth::Caller;

/// The most one value may hold (a Kubernetes Secret holds at most 1 MiB in all).
pub const MAX_VALUE_BYTES: usize = 256 * 1024;

/// The secrets an application sees: its own and its project's, every scope.
pub async fn list_for_application(ctx: &Ctx, caller: &Caller, app: &str) -> OpResult<Vec<AppSecret>> {
    let mut c = ctx.store.conn().await?;
    let (app, _) = access::application(&mut c, caller, app).await?;
    Ok(app_secrets::for_application(&mut c, app.project_id, app.id).await?)
}

/// The project's secrets (those every application of it sees).
pub async fn list_for_project(ctx: &Ctx, caller: &Caller, project: &str) -> OpResult<Vec<AppSecret>> {
    let mut c = ctx.store.conn().await?;
    let p = access::project(&mut c, caller, project).await?;
    Ok(app_secrets::of_project(&mut c, p.id).await?)
}

/// Whom the change is for: an application, or every application of a project.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    Application(&'a str),
    Project(&'a str),
}

/// The scope's ids and the caller's roles there; not found when the caller
/// may not see it.
async fn resolve(
    c: &mut AnyConnection,
    caller: &Caller,
    owner: Owner<'_>,
    environment: Option<&str>,
) -> OpResult<(Scope, RoleSet, Option<Environment>, String)> {
    let (project_id, app_id, roles, label) = match owner {
        Owner::Application(name) => {
            let (app, roles) = access::application(c, caller, name).await?;
            (app.project_id, Some(app.id), roles, format!("application {}", app.name))
        }
        Owner::Project(name) => {
            let p = access::project(c, caller, name).await?;
            let roles = access::roles_in(c, caller, p.id).await?;
            (p.id, None, roles, format!("project {}", p.name))
        }
    };
    let env = match environment {
        Some(e) => Some(
            environments::by_name(c, e)
                .await
                .map_err(|_| OpError::invalid("environment", format!("there is no environment {e:?}")))?,
        ),
        None => None,
    };
    let scope = Scope {
        project_id,
        app_id,
        env_id: env.as_ref().map(|e| e.id),
    };
    Ok((scope, roles, env, label))
}

/// Changing a secret needs the right to deploy where it applies: its
/// environment, or every environment for one that applies in all.
async fn require_deploy_rights(c: &mut AnyConnection, roles: RoleSet, env: Option<&Environment>) -> OpResult<()> {
    let envs = match env {
        Some(e) => vec![e.clone()],
        None => environments::list(c).await?,
    };
    for e in envs {
        if !access::may_deploy(roles, &e) {
            return Err(OpError::forbidden(match env {
                Some(_) => format!("changing a secret in {} needs the right to deploy there", e.name),
                None => format!(
                    "changing a secret of every environment needs the right to deploy to each; you may not deploy to {}",
                    e.name
                ),
            }));
        }
    }
    Ok(())
}

/// Sets a secret's value, or points it at an existing Secret's key; each
/// change is a new version.
pub async fn put(ctx: &Ctx, caller: &Caller, owner: Owner<'_>, name: &str, req: PutSecret) -> OpResult<AppSecret> {
    let name = SecretName::parse("name", name)?;
    let (source, value_enc, existing) = match (&req.value, &req.existing) {
        (Some(v), None) => {
            if v.len() > MAX_VALUE_BYTES {
                return Err(OpError::invalid(
                    "value",
                    format!("must be at most {} KiB", MAX_VALUE_BYTES / 1024),
                ));
            }
            (SecretSource::Value, Some(ctx.secrets.seal(v.as_bytes())), None)
        }
        (None, Some(e)) => {
            parse_secret_reference("existing", &e.secret, &e.key)?;
            (SecretSource::Reference, None, Some(e))
        }
        _ => return Err(OpError::invalid("value", "give either value or existing, not both")),
    };
    let delivery = req.delivery.unwrap_or(SecretDelivery::Env);
    let mut tx = ctx.store.begin().await?;
    let (scope, roles, env, label) = resolve(&mut tx, caller, owner, req.environment.as_deref()).await?;
    require_deploy_rights(&mut tx, roles, env.as_ref()).await?;
    let saved = app_secrets::put(
        &mut tx,
        scope,
        name.as_str(),
        SecretFields {
            source: source.as_str(),
            delivery: delivery.as_str(),
            value_enc: value_enc.as_deref(),
            ref_secret: existing.map(|e| e.secret.as_str()),
            ref_key: existing.map(|e| e.key.as_str()),
            updated_by: &caller.user.username,
        },
    )
    .await?;
    let (kind, target) = target(owner);
    audit::record(
        &mut tx,
        &caller.origin(),
        "secret.put",
        kind,
        target,
        // Never the value: which name, where, which version, and where it comes from.
        json!({"name": saved.name, "scope": label, "environment": req.environment, "version": saved.version,
               "source": saved.source, "delivery": saved.delivery,
               "existing": existing.map(|e| json!({"secret": e.secret, "key": e.key}))}),
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
}

/// Removes a secret from one scope (its sealed versions stay for rollbacks).
pub async fn delete(
    ctx: &Ctx,
    caller: &Caller,
    owner: Owner<'_>,
    name: &str,
    environment: Option<&str>,
) -> OpResult<()> {
    let mut tx = ctx.store.begin().await?;
    let (scope, roles, env, label) = resolve(&mut tx, caller, owner, environment).await?;
    let found = app_secrets::find(&mut tx, scope, name)
        .await?
        .ok_or_else(|| OpError::not_found("secret", name))?;
    require_deploy_rights(&mut tx, roles, env.as_ref()).await?;
    app_secrets::delete(&mut tx, found.id).await?;
    let (kind, target) = target(owner);
    audit::record(
        &mut tx,
        &caller.origin(),
        "secret.delete",
        kind,
        target,
        json!({"name": found.name, "scope": label, "environment": environment, "version": found.version}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn target(owner: Owner<'_>) -> (&'static str, &str) {
    match owner {
        Owner::Application(a) => ("application", a),
        Owner::Project(p) => ("project", p),
    }
}

/// Which scope a removal is for.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SecretQuery {
    /// The environment; omit for the secret of every environment.
    pub environment: Option<String>,
}
