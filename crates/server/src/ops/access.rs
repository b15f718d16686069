//! What a caller may see and do, in one place. Admins see everything; other
//! users see the projects they hold a role in, and the applications,
//! releases, deploys and builds of those projects. A record the caller may
//! not see is reported as not found, so a user of one project learns nothing
//! of another.

use prism_domain::{ReleaseId, Role, RoleSet};
use prism_store::apps::{self, Application};
use prism_store::builds::{self, Build};
use prism_store::deploys::{self, Deploy};
use prism_store::projects::{self, Project};
use prism_store::releases::{self, Release};
use prism_store::AnyConnection;

use super::{OpError, OpResult};
use crate::auth::Caller;

/// Admin-only operations and pages.
pub fn require_admin(caller: &Caller) -> OpResult<()> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(OpError::forbidden("this needs the admin role"))
    }
}

/// The caller's roles in a project (every role for admins).
pub async fn roles_in(c: &mut AnyConnection, caller: &Caller, project_id: i64) -> OpResult<RoleSet> {
    Ok(projects::roles(c, project_id, caller.user.id, caller.is_admin()).await?)
}

/// The user id to filter listings by: None for admins, who see everything.
pub fn visibility(caller: &Caller) -> Option<i64> {
    (!caller.is_admin()).then_some(caller.user.id)
}

/// A project the caller may see.
pub async fn project(c: &mut AnyConnection, caller: &Caller, name: &str) -> OpResult<Project> {
    let p = projects::by_name(c, name).await?;
    if !roles_in(c, caller, p.id).await?.is_member() {
        return Err(OpError::not_found("project", name));
    }
    Ok(p)
}

/// An application the caller may see, with the caller's roles in its project.
pub async fn application(c: &mut AnyConnection, caller: &Caller, name: &str) -> OpResult<(Application, RoleSet)> {
    let app = apps::by_name(c, name).await?;
    let roles = roles_in(c, caller, app.project_id).await?;
    if !roles.is_member() {
        return Err(OpError::not_found("application", name));
    }
    Ok((app, roles))
}

/// A release the caller may see, with the caller's roles in its project.
pub async fn release(c: &mut AnyConnection, caller: &Caller, id: ReleaseId) -> OpResult<(Release, RoleSet)> {
    let rel = releases::get(c, id).await?;
    let roles = roles_in(c, caller, rel.project_id).await?;
    if !roles.is_member() {
        return Err(OpError::not_found("release", id));
    }
    Ok((rel, roles))
}

/// A deploy the caller may see (by the id as written in the address).
pub async fn deploy(c: &mut AnyConnection, caller: &Caller, id: &str) -> OpResult<(Deploy, RoleSet)> {
    let n: i64 = id.parse().map_err(|_| OpError::not_found("deploy", id))?;
    let d = deploys::get(c, n).await?;
    let roles = roles_in(c, caller, d.project_id).await?;
    if !roles.is_member() {
        return Err(OpError::not_found("deploy", id));
    }
    Ok((d, roles))
}

/// A build the caller may see (by the id as written in the address).
pub async fn build(c: &mut AnyConnection, caller: &Caller, id: &str) -> OpResult<(Build, RoleSet)> {
    let n: i64 = id.parse().map_err(|_| OpError::not_found("build", id))?;
    let b = builds::get(c, n).await?;
    let roles = roles_in(c, caller, b.project_id).await?;
    if !roles.is_member() {
        return Err(OpError::not_found("build", id));
    }
    Ok((b, roles))
}

// What a member may do, asked by the operations when they act and by the
// console's pages to offer only what would be accepted.

/// Changing an application's definition, settings and its project's templates.
pub fn may_edit_application(roles: RoleSet) -> bool {
    roles.has(Role::Operator)
}

/// Creating a release of an application.
pub fn may_create_release(roles: RoleSet) -> bool {
    roles.has(Role::Developer)
}

/// Holding an environment for testing (the domain's rule).
pub fn may_hold(roles: RoleSet) -> bool {
    prism_domain::release::may_hold(&prism_domain::release::Actor { roles, system: false }).is_ok()
}

/// Lifting another user's hold, or promoting over it (with a reason).
pub fn may_override_hold(roles: RoleSet) -> bool {
    roles.has(Role::Operator)
}

/// Cancelling a build.
pub fn may_cancel_build(roles: RoleSet) -> bool {
    roles.has(Role::Developer) || roles.has(Role::Operator)
}

/// Deploying to, reviewing deploys to and rolling back in `env`.
pub fn may_deploy(roles: RoleSet, env: &prism_store::environments::Environment) -> bool {
    roles.has_any(&env.policy.deploy_roles)
}
