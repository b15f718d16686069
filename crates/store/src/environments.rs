//! Environments: the ordered lifecycle (FAT -> UAT -> PRD by default), each
//! bound to a namespace on a cluster and carrying its deploy policy.

use prism_domain::release::EnvStep;
use prism_domain::{DeployRules, EnvPolicy};
use serde::Serialize;
use sqlx::AnyConnection;

use crate::error::unique;
use crate::{now_ms, Result, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    pub id: i64,
    pub name: String,
    pub position: i64,
    pub cluster: Option<String>,
    pub namespace: String,
    pub policy: EnvPolicy,
    pub rules: DeployRules,
    pub created_at: i64,
    #[serde(skip)]
    pub cluster_id: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    name: String,
    position: i64,
    cluster: Option<String>,
    namespace: String,
    deploy_roles: String,
    requires_review: i64,
    requires_previous: i64,
    allow_cluster_scoped: i64,
    allow_other_namespaces: i64,
    auto_rollback: i64,
    cluster_id: Option<i64>,
    created_at: i64,
}

impl TryFrom<Row> for Environment {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self> {
        Ok(Environment {
            id: r.id,
            name: r.name,
            position: r.position,
            cluster: r.cluster,
            namespace: r.namespace,
            policy: EnvPolicy {
                deploy_roles: EnvPolicy::roles_from_csv(&r.deploy_roles)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                requires_review: r.requires_review != 0,
                requires_previous: r.requires_previous != 0,
            },
            rules: DeployRules {
                allow_cluster_scoped: r.allow_cluster_scoped != 0,
                allow_other_namespaces: r.allow_other_namespaces != 0,
                auto_rollback: r.auto_rollback != 0,
            },
            created_at: r.created_at,
            cluster_id: r.cluster_id,
        })
    }
}

impl Environment {
    pub fn step(&self) -> EnvStep {
        EnvStep {
            id: self.id,
            name: self.name.clone(),
            position: self.position,
            policy: self.policy.clone(),
        }
    }
}

const SELECT: &str = "SELECT e.id, e.name, e.position, c.name AS cluster, e.namespace, e.deploy_roles, e.requires_review, \
                      e.requires_previous, e.allow_cluster_scoped, e.allow_other_namespaces, e.auto_rollback, e.cluster_id, e.created_at FROM environments e LEFT JOIN clusters c ON c.id = e.cluster_id";

pub struct NewEnvironment<'a> {
    pub name: &'a str,
    pub position: Option<i64>,
    pub cluster_id: Option<i64>,
    pub namespace: &'a str,
    pub policy: &'a EnvPolicy,
}

pub async fn create(c: &mut AnyConnection, n: NewEnvironment<'_>) -> Result<Environment> {
    let position = match n.position {
        Some(p) => p,
        None => {
            let max: Option<i64> = sqlx::query_scalar("SELECT MAX(position) FROM environments")
                .fetch_one(&mut *c)
                .await?;
            max.unwrap_or(0) + 10
        }
    };
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO environments (name, position, cluster_id, namespace, deploy_roles, requires_review, requires_previous, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(n.name)
    .bind(position)
    .bind(n.cluster_id)
    .bind(n.namespace)
    .bind(n.policy.roles_csv())
    .bind(n.policy.requires_review as i64)
    .bind(n.policy.requires_previous as i64)
    .bind(now_ms())
    .fetch_one(&mut *c)
    .await
    .map_err(unique("environment", "name", n.name))?;
    get(c, id).await
}

pub async fn get(c: &mut AnyConnection, id: i64) -> Result<Environment> {
    let row: Row = sqlx::query_as(&format!("{SELECT} WHERE e.id = $1"))
        .bind(id)
        .fetch_optional(c)
        .await?
        .ok_or_else(|| StoreError::not_found("environment", id))?;
    row.try_into()
}

pub async fn by_name(c: &mut AnyConnection, name: &str) -> Result<Environment> {
    let row: Row = sqlx::query_as(&format!("{SELECT} WHERE e.name = $1"))
        .bind(name)
        .fetch_optional(c)
        .await?
        .ok_or_else(|| StoreError::not_found("environment", name))?;
    row.try_into()
}

/// The lifecycle, in order.
pub async fn list(c: &mut AnyConnection) -> Result<Vec<Environment>> {
    let rows: Vec<Row> = sqlx::query_as(&format!("{SELECT} ORDER BY e.position, e.id"))
        .fetch_all(c)
        .await?;
    rows.into_iter().map(Environment::try_from).collect()
}

pub async fn lifecycle(c: &mut AnyConnection) -> Result<Vec<EnvStep>> {
    Ok(list(c).await?.iter().map(Environment::step).collect())
}

pub struct EnvironmentPatch<'a> {
    pub rules: Option<&'a DeployRules>,
    pub position: Option<i64>,
    pub cluster_id: Option<Option<i64>>,
    pub namespace: Option<&'a str>,
    pub policy: Option<&'a EnvPolicy>,
}

pub async fn update(c: &mut AnyConnection, id: i64, p: EnvironmentPatch<'_>) -> Result<Environment> {
    let cur = get(c, id).await?;
    let cluster_id: Option<i64> = match p.cluster_id {
        Some(v) => v,
        None => {
            sqlx::query_scalar("SELECT cluster_id FROM environments WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *c)
                .await?
        }
    };
    let policy = p.policy.unwrap_or(&cur.policy);
    sqlx::query(
        "UPDATE environments SET position = $2, cluster_id = $3, namespace = $4, deploy_roles = $5, requires_review = $6, requires_previous = $7 WHERE id = $1",
    )
    .bind(id)
    .bind(p.position.unwrap_or(cur.position))
    .bind(cluster_id)
    .bind(p.namespace.unwrap_or(&cur.namespace))
    .bind(policy.roles_csv())
    .bind(policy.requires_review as i64)
    .bind(policy.requires_previous as i64)
    .execute(&mut *c)
    .await?;
    if let Some(r) = p.rules {
        set_rules(c, id, r).await?;
    }
    get(c, id).await
}

pub async fn set_rules(c: &mut AnyConnection, id: i64, r: &DeployRules) -> Result<()> {
    sqlx::query("UPDATE environments SET allow_cluster_scoped = $2, allow_other_namespaces = $3, auto_rollback = $4 WHERE id = $1")
        .bind(id)
        .bind(r.allow_cluster_scoped as i64)
        .bind(r.allow_other_namespaces as i64)
        .bind(r.auto_rollback as i64)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn delete(c: &mut AnyConnection, id: i64) -> Result<()> {
    let used: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM releases WHERE env_id = $1")
        .bind(id)
        .fetch_one(&mut *c)
        .await?;
    let current: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM slots WHERE env_id = $1 AND current_release_id IS NOT NULL")
            .bind(id)
            .fetch_one(&mut *c)
            .await?;
    if used + current > 0 {
        return Err(StoreError::InUse(
            "releases are or were in this environment; it can no longer be removed".into(),
        ));
    }
    sqlx::query("DELETE FROM environments WHERE id = $1")
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

/// A namespace an admin bound for one project in one environment (it wins
/// over the environment's namespace pattern).
#[derive(Debug, Clone, Serialize)]
pub struct NamespaceBinding {
    pub environment: String,
    pub project: String,
    pub namespace: String,
    pub created_at: i64,
}

const SELECT_BINDING: &str = "SELECT e.name AS environment, p.name AS project, b.namespace, b.created_at \
     FROM environment_namespaces b JOIN environments e ON e.id = b.env_id JOIN projects p ON p.id = b.project_id";

/// Binds (or rebinds) `project`'s namespace in the environment; a namespace
/// bound to another project of the environment is refused as a duplicate.
pub async fn bind_namespace(c: &mut AnyConnection, env_id: i64, project_id: i64, namespace: &str) -> Result<()> {
    sqlx::query("DELETE FROM environment_namespaces WHERE env_id = $1 AND project_id = $2")
        .bind(env_id)
        .bind(project_id)
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "INSERT INTO environment_namespaces (env_id, project_id, namespace, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(env_id)
    .bind(project_id)
    .bind(namespace)
    .bind(now_ms())
    .execute(&mut *c)
    .await
    .map_err(unique("namespace binding", "namespace", namespace))?;
    Ok(())
}

/// Removes the binding; false when there was none.
pub async fn unbind_namespace(c: &mut AnyConnection, env_id: i64, project_id: i64) -> Result<bool> {
    let n = sqlx::query("DELETE FROM environment_namespaces WHERE env_id = $1 AND project_id = $2")
        .bind(env_id)
        .bind(project_id)
        .execute(c)
        .await?
        .rows_affected();
    Ok(n > 0)
}

#[derive(sqlx::FromRow)]
struct BindingRow {
    environment: String,
    project: String,
    namespace: String,
    created_at: i64,
}

impl From<BindingRow> for NamespaceBinding {
    fn from(r: BindingRow) -> Self {
        NamespaceBinding {
            environment: r.environment,
            project: r.project,
            namespace: r.namespace,
            created_at: r.created_at,
        }
    }
}

/// The environment's bindings, by project name.
pub async fn namespace_bindings(c: &mut AnyConnection, env_id: i64) -> Result<Vec<NamespaceBinding>> {
    let rows: Vec<BindingRow> = sqlx::query_as(&format!("{SELECT_BINDING} WHERE b.env_id = $1 ORDER BY p.name"))
        .bind(env_id)
        .fetch_all(c)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// The namespace bound for the project in the environment, if any.
pub async fn bound_namespace(c: &mut AnyConnection, env_id: i64, project_id: i64) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT namespace FROM environment_namespaces WHERE env_id = $1 AND project_id = $2")
            .bind(env_id)
            .bind(project_id)
            .fetch_optional(c)
            .await?,
    )
}

/// What another application last applied (or is applying) on a cluster:
/// the newest deploy of each (application, environment) on it that got
/// past planning, with its planned objects. Used to refuse an Ingress host
/// another application already serves without needing to list the cluster.
#[derive(Debug, Clone)]
pub struct AppliedElsewhere {
    pub application: String,
    pub environment: String,
    pub manifests: serde_json::Value,
}

pub async fn applied_on_cluster(
    c: &mut AnyConnection,
    cluster_id: i64,
    except_app_id: i64,
) -> Result<Vec<AppliedElsewhere>> {
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT a.name, e.name, d.manifests FROM deploys d \
         JOIN applications a ON a.id = d.app_id JOIN environments e ON e.id = d.env_id \
         WHERE d.id IN (SELECT MAX(x.id) FROM deploys x JOIN environments xe ON xe.id = x.env_id \
             WHERE xe.cluster_id = $1 AND x.app_id <> $2 AND x.state IN ('applying', 'watching', 'succeeded') \
             GROUP BY x.app_id, x.env_id)",
    )
    .bind(cluster_id)
    .bind(except_app_id)
    .fetch_all(c)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(application, environment, m)| {
            Some(AppliedElsewhere {
                application,
                environment,
                manifests: serde_json::from_str(&m?).ok()?,
            })
        })
        .collect())
}
