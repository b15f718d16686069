//! Login through the company's directory (issue 13 item 2) and the rules
//! that map its groups to Prism roles.
//!
//! A user Prism keeps no password for (`source = ldap`, or a name it does
//! not know) is checked by the directory: bind as the user, read their
//! groups, then apply the rules (exactly what they grant, replacing what an
//! earlier login granted), so leaving a group takes the role away at the
//! next login. Local users, the break-glass admin among them, keep logging
//! in with Prism's own password whatever the directory says.

use prism_domain::{Name, Role};
use prism_identity::{grants, GroupRule, LdapConfig, LdapError};
use prism_store::audit::{self, Origin};
use prism_store::directory::{self, StoredRule};
use prism_store::users::{self, User};
use prism_store::{projects, AnyConnection};
use serde_json::json;

use super::{access, Ctx, OpError, OpResult};
use crate::auth::Caller;

/// The most rules an admin may set.
pub const MAX_RULES: usize = 500;

fn to_rule(r: StoredRule) -> GroupRule {
    GroupRule {
        group: r.group_name,
        project: r.project,
        role: r.role.and_then(|w| Role::parse("role", &w).ok()),
        admin: r.admin != 0,
    }
}

/// The group rules, in order (admins).
pub async fn rules(ctx: &Ctx, caller: &Caller) -> OpResult<Vec<GroupRule>> {
    access::require_admin(caller)?;
    let mut c = ctx.store.conn().await?;
    Ok(directory::group_rules(&mut c).await?.into_iter().map(to_rule).collect())
}

/// Replaces the group rules (admins); each names a project that exists.
pub async fn put_rules(ctx: &Ctx, caller: &Caller, rules: Vec<GroupRule>) -> OpResult<Vec<GroupRule>> {
    access::require_admin(caller)?;
    if rules.len() > MAX_RULES {
        return Err(OpError::invalid("rules", format!("at most {MAX_RULES} rules")));
    }
    let mut tx = ctx.store.begin().await?;
    for (i, r) in rules.iter().enumerate() {
        let field = format!("rules[{i}]");
        r.validate(&field)?;
        if let Some(p) = &r.project {
            if prism_store::projects::find_by_name(&mut tx, p).await?.is_none() {
                return Err(OpError::invalid(
                    &format!("{field}.project"),
                    format!("there is no project {p:?}"),
                ));
            }
        }
    }
    let stored: Vec<StoredRule> = rules
        .iter()
        .map(|r| StoredRule {
            group_name: r.group.clone(),
            project: r.project.clone(),
            role: r.role.map(|x| x.as_str().to_owned()),
            admin: r.admin as i64,
        })
        .collect();
    directory::replace_group_rules(&mut tx, &stored).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "directory.group_rules",
        "directory",
        "group-rules",
        json!({"rules": rules}),
    )
    .await?;
    tx.commit().await?;
    Ok(rules)
}

/// Whether the directory, not Prism's own password, decides for `user`.
pub fn decides_for(user: Option<&User>) -> bool {
    user.is_none_or(|u| u.source == users::DIRECTORY_SOURCE)
}

/// Checks `username` and `password` with the directory; on success the
/// user exists (created at the first login) with exactly the roles the
/// rules grant for their groups now. `Unauthenticated` for a wrong name or
/// password (or a disabled user), `Upstream` when the directory cannot be asked.
pub async fn login(ctx: &Ctx, config: &LdapConfig, address: &str, username: &str, password: &str) -> OpResult<User> {
    // Directory users are named like local ones (what the console and the
    // audit log show): a name that could not be one is refused before asking.
    if prism_domain::username::validate_username("username", username).is_err() {
        return Err(OpError::Unauthenticated("wrong username or password".into()));
    }
    let found = match prism_identity::authenticate(config, username, password).await {
        Ok(u) => u,
        Err(LdapError::InvalidCredentials) => {
            return Err(OpError::Unauthenticated("wrong username or password".into()))
        }
        Err(e) => {
            tracing::warn!(error = %e, "directory login failed");
            return Err(OpError::Upstream(
                "the directory is unavailable; try again later".into(),
            ));
        }
    };
    sync(
        ctx,
        External {
            source: users::DIRECTORY_SOURCE,
            username,
            display_name: found.display_name.as_deref(),
            groups: &found.groups,
            refusal: "wrong username or password",
            external_id: None,
        },
        address,
    )
    .await
}

/// Someone the directory or the OpenID provider vouched for, with their groups.
pub(super) struct External<'a> {
    /// `users.source`: whose word this is (`ldap`, `oidc`).
    pub source: &'static str,
    pub username: &'a str,
    pub display_name: Option<&'a str>,
    pub groups: &'a [String],
    /// The one message for every refusal (a disabled user, a local user of the same name).
    pub refusal: &'static str,
    /// Who the provider says this is for good (`issuer#subject`), when it
    /// says so: the user is found by it, and a name once tied to another
    /// subject is refused (a renamed or reused name at the provider).
    pub external_id: Option<&'a str>,
}

/// The user `who` names, created at the first login, with exactly the
/// roles the group rules grant for their groups now (audited when they change).
pub(super) async fn sync(ctx: &Ctx, who: External<'_>, address: &str) -> OpResult<User> {
    let refused = || OpError::Unauthenticated(who.refusal.into());
    let mut tx = ctx.store.begin().await?;
    let known = match who.external_id {
        Some(x) => users::by_external_id(&mut tx, x).await?,
        None => None,
    };
    let user = match known {
        Some(u) => u,
        None => match users::find_by_name(&mut tx, who.username).await? {
            Some(u) if u.source != who.source => {
                // A local user (or another system's) of the same name: not this source's to decide.
                return Err(refused());
            }
            Some(u) => {
                if let Some(x) = who.external_id {
                    match users::external_id_of(&mut tx, u.id).await? {
                        // The name belongs to another subject at the provider.
                        Some(other) if other != x => return Err(refused()),
                        Some(_) => {}
                        None => users::set_external_id(&mut tx, u.id, x).await?,
                    }
                }
                u
            }
            None => {
                let display = who.display_name.unwrap_or(who.username);
                let u = users::create_external(&mut tx, who.username, display, who.source).await?;
                if let Some(x) = who.external_id {
                    users::set_external_id(&mut tx, u.id, x).await?;
                }
                u
            }
        },
    };
    if user.is_disabled() {
        return Err(refused());
    }
    let rules: Vec<GroupRule> = directory::group_rules(&mut tx)
        .await?
        .into_iter()
        .map(to_rule)
        .collect();
    let granted = grants(who.groups, &rules);
    let roles = project_roles(&mut tx, &granted).await?;
    let admin_changed = granted.admin != user.admin();
    let display = who.display_name.unwrap_or(&user.display_name).to_owned();
    let user = users::update(&mut tx, user.id, Some(&display), Some(granted.admin), None, None).await?;
    let roles_changed = projects::replace_memberships(&mut tx, user.id, &roles).await?;
    let origin = Origin {
        actor_id: Some(user.id),
        actor: user.username.clone(),
        address: address.to_owned(),
    };
    if admin_changed || roles_changed {
        audit::record(
            &mut tx,
            &origin,
            "directory.roles_synced",
            "user",
            &user.username,
            json!({"source": who.source, "groups": who.groups, "admin": granted.admin,
                   "roles": granted.projects.iter().map(|(p, r)| (p.clone(), r.iter().map(|x| x.as_str()).collect::<Vec<_>>())).collect::<std::collections::BTreeMap<_, _>>()}),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(user)
}

/// The (project id, role) pairs the grants name, for projects that exist.
async fn project_roles(c: &mut AnyConnection, g: &prism_identity::Grants) -> OpResult<Vec<(i64, Role)>> {
    let mut out = vec![];
    for (project, roles) in &g.projects {
        let Ok(name) = Name::parse("project", project) else {
            continue;
        };
        if let Some(p) = projects::find_by_name(c, name.as_str()).await? {
            out.extend(roles.iter().map(|r| (p.id, *r)));
        }
    }
    Ok(out)
}
