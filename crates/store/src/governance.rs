//! Release governance records: approval policies (per environment, and per
//! project where it overrides), one vote per person and deploy, and each
//! environment's deploy schedule (windows, freezes, what happens while
//! closed, who may break glass). The rules themselves live in
//! `prism_domain::{approval, window}`; this module only stores them.

use prism_domain::approval::ApprovalPolicy;
use prism_domain::window::{DeployWindow, Freeze, Schedule, WhenClosed, WindowKind};
use prism_domain::EnvPolicy;
use serde::Serialize;
use sqlx::AnyConnection;

use crate::{now_ms, Result, StoreError};

/// The scope of an environment's own policy (not a project's override).
pub const ENVIRONMENT_WIDE: i64 = 0;

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// The policy set exactly at (`env_id`, `project_id`); project 0 is the environment's own.
pub async fn policy_at(c: &mut AnyConnection, env_id: i64, project_id: i64) -> Result<Option<ApprovalPolicy>> {
    let raw: Option<String> =
        sqlx::query_scalar("SELECT policy FROM approval_policies WHERE env_id = $1 AND project_id = $2")
            .bind(env_id)
            .bind(project_id)
            .fetch_optional(c)
            .await?;
    raw.map(|r| serde_json::from_str(&r).map_err(|e| corrupt("approval_policies.policy", e)))
        .transpose()
}

/// Writes (or with `None` removes) the policy at (`env_id`, `project_id`).
/// The caller validated it.
pub async fn set_policy(
    c: &mut AnyConnection,
    env_id: i64,
    project_id: i64,
    policy: Option<&ApprovalPolicy>,
    by: &str,
) -> Result<()> {
    sqlx::query("DELETE FROM approval_policies WHERE env_id = $1 AND project_id = $2")
        .bind(env_id)
        .bind(project_id)
        .execute(&mut *c)
        .await?;
    if let Some(p) = policy {
        sqlx::query(
            "INSERT INTO approval_policies (env_id, project_id, policy, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(env_id)
        .bind(project_id)
        .bind(serde_json::to_string(p).expect("policies serialise"))
        .bind(by)
        .bind(now_ms())
        .execute(c)
        .await?;
    }
    Ok(())
}

/// Where the policy that applies came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicySource {
    Project,
    Environment,
    /// Nobody set one: the environment's `requires_review` flag.
    Implicit,
}

/// The policy for deploys of `project_id`'s applications into the
/// environment: the project's override, else the environment's, else the
/// implicit single review from the environment's flags.
pub async fn effective_policy(
    c: &mut AnyConnection,
    env_id: i64,
    env_policy: &EnvPolicy,
    project_id: i64,
) -> Result<(ApprovalPolicy, PolicySource)> {
    if let Some(p) = policy_at(c, env_id, project_id).await? {
        return Ok((p, PolicySource::Project));
    }
    if let Some(p) = policy_at(c, env_id, ENVIRONMENT_WIDE).await? {
        return Ok((p, PolicySource::Environment));
    }
    Ok((
        ApprovalPolicy::implicit(env_policy.requires_review, env_policy.deploy_roles.clone()),
        PolicySource::Implicit,
    ))
}

/// One person's recorded vote on a deploy.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct VoteRecord {
    pub username: String,
    #[serde(skip)]
    pub approve: i64,
    pub comment: String,
    pub at: i64,
}

impl VoteRecord {
    pub fn approves(&self) -> bool {
        self.approve != 0
    }
}

/// Records a vote; false when this person has voted on this deploy already
/// (the primary key makes two concurrent clicks count once).
pub async fn cast_vote(
    c: &mut AnyConnection,
    deploy_id: i64,
    user: &str,
    approve: bool,
    comment: &str,
) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO deploy_votes (deploy_id, username, approve, comment, at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (deploy_id, username) DO NOTHING",
    )
    .bind(deploy_id)
    .bind(user)
    .bind(i64::from(approve))
    .bind(comment)
    .bind(now_ms())
    .execute(c)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// A deploy's votes in the order they were cast.
pub async fn votes(c: &mut AnyConnection, deploy_id: i64) -> Result<Vec<VoteRecord>> {
    Ok(sqlx::query_as(
        "SELECT username, approve, comment, at FROM deploy_votes WHERE deploy_id = $1 ORDER BY at, username",
    )
    .bind(deploy_id)
    .fetch_all(c)
    .await?)
}

fn kind_word(k: WindowKind) -> &'static str {
    match k {
        WindowKind::Allow => "allow",
        WindowKind::Deny => "deny",
    }
}

/// An environment's schedule (the empty, always-open one if none was set).
pub async fn schedule(c: &mut AnyConnection, env_id: i64) -> Result<Schedule> {
    let head: Option<(String, String)> =
        sqlx::query_as("SELECT when_closed, break_glass_roles FROM environment_schedules WHERE env_id = $1")
            .bind(env_id)
            .fetch_optional(&mut *c)
            .await?;
    let mut s = Schedule::default();
    if let Some((when, roles)) = head {
        s.when_closed = match when.as_str() {
            "queue" => WhenClosed::Queue,
            "refuse" => WhenClosed::Refuse,
            other => return Err(corrupt("environment_schedules.when_closed", other)),
        };
        s.break_glass_roles =
            EnvPolicy::roles_from_csv(&roles).map_err(|e| corrupt("environment_schedules.break_glass_roles", e))?;
    }
    let windows: Vec<(String, String, i64, String)> =
        sqlx::query_as("SELECT kind, rule, duration_minutes, label FROM deploy_windows WHERE env_id = $1 ORDER BY id")
            .bind(env_id)
            .fetch_all(&mut *c)
            .await?;
    for (kind, rule, minutes, label) in windows {
        let kind = match kind.as_str() {
            "allow" => WindowKind::Allow,
            "deny" => WindowKind::Deny,
            other => return Err(corrupt("deploy_windows.kind", other)),
        };
        s.windows.push(DeployWindow {
            kind,
            rule,
            duration_minutes: u32::try_from(minutes).map_err(|e| corrupt("deploy_windows.duration_minutes", e))?,
            label,
        });
    }
    let freezes: Vec<(i64, i64, String)> =
        sqlx::query_as("SELECT from_ms, until_ms, reason FROM deploy_freezes WHERE env_id = $1 ORDER BY id")
            .bind(env_id)
            .fetch_all(c)
            .await?;
    s.freezes = freezes
        .into_iter()
        .map(|(from_ms, until_ms, reason)| Freeze {
            from_ms,
            until_ms,
            reason,
        })
        .collect();
    Ok(s)
}

/// Replaces an environment's schedule (the caller validated it).
pub async fn set_schedule(c: &mut AnyConnection, env_id: i64, s: &Schedule, by: &str) -> Result<()> {
    for table in ["environment_schedules", "deploy_windows", "deploy_freezes"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE env_id = $1"))
            .bind(env_id)
            .execute(&mut *c)
            .await?;
    }
    let roles: Vec<&str> = s.break_glass_roles.iter().map(|r| r.as_str()).collect();
    sqlx::query(
        "INSERT INTO environment_schedules (env_id, when_closed, break_glass_roles, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(env_id)
    .bind(match s.when_closed {
        WhenClosed::Queue => "queue",
        WhenClosed::Refuse => "refuse",
    })
    .bind(roles.join(","))
    .bind(by)
    .bind(now_ms())
    .execute(&mut *c)
    .await?;
    for w in &s.windows {
        sqlx::query(
            "INSERT INTO deploy_windows (env_id, kind, rule, duration_minutes, label) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(env_id)
        .bind(kind_word(w.kind))
        .bind(&w.rule)
        .bind(i64::from(w.duration_minutes))
        .bind(&w.label)
        .execute(&mut *c)
        .await?;
    }
    for f in &s.freezes {
        sqlx::query("INSERT INTO deploy_freezes (env_id, from_ms, until_ms, reason) VALUES ($1, $2, $3, $4)")
            .bind(env_id)
            .bind(f.from_ms)
            .bind(f.until_ms)
            .bind(&f.reason)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

/// Marks a deploy as started by breaking glass.
pub async fn set_break_glass(c: &mut AnyConnection, deploy_id: i64, by: &str, reason: &str) -> Result<()> {
    sqlx::query("UPDATE deploys SET break_glass_by = $2, break_glass_reason = $3, updated_at = $4 WHERE id = $1")
        .bind(deploy_id)
        .bind(by)
        .bind(reason)
        .bind(now_ms())
        .execute(c)
        .await?;
    Ok(())
}

/// Records (or clears) when a waiting deploy's window opens.
pub async fn set_opens(c: &mut AnyConnection, deploy_id: i64, opens: Option<(i64, &str)>) -> Result<()> {
    sqlx::query("UPDATE deploys SET opens_at = $2, opens_local = $3 WHERE id = $1")
        .bind(deploy_id)
        .bind(opens.map(|o| o.0))
        .bind(opens.map(|o| o.1))
        .execute(c)
        .await?;
    Ok(())
}

/// Deploys waiting for their window in an environment.
pub async fn waiting(c: &mut AnyConnection, env_id: i64) -> Result<Vec<i64>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM deploys WHERE env_id = $1 AND state = 'waiting_window' ORDER BY id")
            .bind(env_id)
            .fetch_all(c)
            .await?,
    )
}

/// Takes the deploy's row lock for the rest of the transaction (PostgreSQL;
/// SQLite has one writer anyway), so concurrent votes are counted one after
/// the other: each sees the votes committed before it.
pub async fn lock_deploy(c: &mut AnyConnection, deploy_id: i64) -> Result<()> {
    sqlx::query("UPDATE deploys SET updated_at = updated_at WHERE id = $1")
        .bind(deploy_id)
        .execute(c)
        .await?;
    Ok(())
}
