//! Deploys: one release into one application x environment, as a persisted
//! state machine (the deploy job advances it one step at a time; every step
//! is recorded here before the next begins, so a restarted server resumes).

use prism_domain::{DeployEvent as Step, DeployFailure, DeployKind, DeployState, ReleaseId};
use serde::Serialize;
use sqlx::AnyConnection;

use crate::per_application::{self, Arg};
use crate::stored::{in_list, read};
use crate::{now_ms, Result, StoreError};

/// The states the deploy job advances (not waiting for a person, not done), for SQL.
fn running_sql() -> String {
    let running: Vec<DeployState> = DeployState::ALL.iter().copied().filter(|s| s.is_running()).collect();
    in_list(&running, DeployState::as_str)
}

#[derive(Debug, Clone, Serialize)]
pub struct Deploy {
    pub id: i64,
    pub release: ReleaseId,
    pub application: String,
    pub environment: String,
    pub kind: DeployKind,
    pub state: DeployState,
    /// Why it failed, when it did.
    pub failure_kind: Option<DeployFailure>,
    pub template_version: Option<i64>,
    /// The rendered objects (JSON), once planned.
    pub manifests: Option<serde_json::Value>,
    /// Per object: create, update (with changes), unchanged or prune.
    pub diff: Option<serde_json::Value>,
    pub requested_by: String,
    pub reviewer: Option<String>,
    pub review_comment: Option<String>,
    pub reviewed_at: Option<i64>,
    pub rollback_of: Option<i64>,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// Who started it during a freeze or outside its windows (break-glass), and why.
    pub break_glass_by: Option<String>,
    pub break_glass_reason: Option<String>,
    /// While it waits for its window: when deploying opens (ms since the
    /// epoch), and the same in the window's zone ("2026-12-08 22:00 Asia/Shanghai").
    pub opens_at: Option<i64>,
    pub opens_local: Option<String>,
    /// A canary or blue-green rollout's progress (strategy, step, split,
    /// gate values), once planned with one.
    pub rollout: Option<serde_json::Value>,
    /// What a person asked the running rollout to do, until the job takes it.
    pub rollout_command: Option<String>,
    #[serde(skip)]
    pub app_id: i64,
    #[serde(skip)]
    pub env_id: i64,
    #[serde(skip)]
    pub project_id: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    release_id: i64,
    application: String,
    environment: String,
    kind: String,
    state: String,
    failure_kind: Option<String>,
    template_version: Option<i64>,
    manifests: Option<String>,
    diff: Option<String>,
    requested_by: String,
    reviewer: Option<String>,
    review_comment: Option<String>,
    reviewed_at: Option<i64>,
    rollback_of: Option<i64>,
    error: Option<String>,
    created_at: i64,
    updated_at: i64,
    finished_at: Option<i64>,
    break_glass_by: Option<String>,
    break_glass_reason: Option<String>,
    opens_at: Option<i64>,
    opens_local: Option<String>,
    rollout: Option<String>,
    rollout_command: Option<String>,
    app_id: i64,
    env_id: i64,
    project_id: i64,
}

fn json(s: Option<String>) -> Result<Option<serde_json::Value>> {
    s.map(|s| serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("deploy json: {e}"))))
        .transpose()
}

impl TryFrom<Row> for Deploy {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self> {
        Ok(Self {
            id: r.id,
            release: ReleaseId::from_seq(r.release_id),
            application: r.application,
            environment: r.environment,
            kind: read("deploys.kind", &r.kind)?,
            state: read("deploys.state", &r.state)?,
            failure_kind: r
                .failure_kind
                .as_deref()
                .map(|k| read("deploys.failure_kind", k))
                .transpose()?,
            template_version: r.template_version,
            manifests: json(r.manifests)?,
            diff: json(r.diff)?,
            requested_by: r.requested_by,
            reviewer: r.reviewer,
            review_comment: r.review_comment,
            reviewed_at: r.reviewed_at,
            rollback_of: r.rollback_of,
            error: r.error,
            created_at: r.created_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
            break_glass_by: r.break_glass_by,
            break_glass_reason: r.break_glass_reason,
            opens_at: r.opens_at,
            opens_local: r.opens_local,
            rollout: json(r.rollout)?,
            rollout_command: r.rollout_command,
            app_id: r.app_id,
            env_id: r.env_id,
            project_id: r.project_id,
        })
    }
}

const SELECT: &str = "SELECT d.id, d.release_id, a.name AS application, e.name AS environment, d.kind, d.state, d.failure_kind, d.template_version, \
    d.manifests, d.diff, d.requested_by, d.reviewer, d.review_comment, d.reviewed_at, d.rollback_of, d.error, d.created_at, \
    d.updated_at, d.finished_at, d.break_glass_by, d.break_glass_reason, d.opens_at, d.opens_local, d.rollout, d.rollout_command, d.app_id, d.env_id, a.project_id FROM deploys d JOIN applications a ON a.id = d.app_id \
    JOIN environments e ON e.id = d.env_id";

pub struct NewDeploy<'a> {
    pub release: ReleaseId,
    pub app_id: i64,
    pub env_id: i64,
    pub kind: DeployKind,
    pub requested_by: &'a str,
    pub rollback_of: Option<i64>,
    /// For a rollback: exactly the objects the deploy it returns to applied.
    pub manifests: Option<&'a serde_json::Value>,
}

pub async fn create(c: &mut AnyConnection, n: NewDeploy<'_>) -> Result<Deploy> {
    let NewDeploy {
        release,
        app_id,
        env_id,
        kind,
        requested_by,
        rollback_of,
        manifests,
    } = n;
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO deploys (release_id, app_id, env_id, kind, state, requested_by, rollback_of, manifests, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $9, $5, $6, $7, $8, $8) RETURNING id",
    )
    .bind(release.seq())
    .bind(app_id)
    .bind(env_id)
    .bind(kind.as_str())
    .bind(requested_by)
    .bind(rollback_of)
    .bind(manifests.map(|m| m.to_string()))
    .bind(now)
    .bind(DeployState::Planning.as_str())
    .fetch_one(&mut *c)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict("another deploy of this application in this environment is in progress; wait for it or reject it".into())
        }
        _ => StoreError::Database(e),
    })?;
    get(c, id).await
}

pub async fn get(c: &mut AnyConnection, id: i64) -> Result<Deploy> {
    let r: Row = sqlx::query_as(&format!("{SELECT} WHERE d.id = $1"))
        .bind(id)
        .fetch_optional(c)
        .await?
        .ok_or_else(|| StoreError::not_found("deploy", id))?;
    r.try_into()
}

/// Which deploys a list shows: every filter given narrows it; newest first.
#[derive(Debug, Default, Clone)]
pub struct DeployFilter {
    /// Only deploys in projects this user is a member of (None: all, for admins).
    pub visible_to: Option<i64>,
    pub app_id: Option<i64>,
    pub env_id: Option<i64>,
    pub release: Option<ReleaseId>,
    pub project_id: Option<i64>,
    pub state: Option<DeployState>,
    /// Keyset cursor: only deploys with a smaller id.
    pub before: Option<i64>,
    pub limit: i64,
}

/// One page of deploys, newest first. The filters are conditions of the
/// query itself, not of the page read back: a page filtered afterwards
/// (by visibility, project or state) came up short or empty once other
/// projects had deployed more than a page since (issue 15 item 2). Only the
/// filters given become conditions, so the planner can use the index each
/// one has (slot, release, state) and the id range of the cursor.
pub async fn list_filtered(c: &mut AnyConnection, f: &DeployFilter) -> Result<Vec<Deploy>> {
    let rows: Vec<Row> = rows_filtered(c, f, SELECT).await?;
    rows.into_iter().map(Deploy::try_from).collect()
}

/// What the delivery statistics read of a deploy: not its manifests, diff
/// or texts (a thousand deploys' rendered manifests are megabytes).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub release: ReleaseId,
    pub app_id: i64,
    pub env_id: i64,
    pub kind: DeployKind,
    pub state: DeployState,
    pub finished_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct OutcomeRow {
    release_id: i64,
    app_id: i64,
    env_id: i64,
    kind: String,
    state: String,
    finished_at: Option<i64>,
}

const OUTCOME_SELECT: &str = "SELECT d.release_id, d.app_id, d.env_id, d.kind, d.state, d.finished_at \
    FROM deploys d JOIN applications a ON a.id = d.app_id JOIN environments e ON e.id = d.env_id";

/// The outcomes of the deploys `f` selects, newest first (the same rows,
/// by the same plan, as [`list_filtered`]).
pub async fn outcomes(c: &mut AnyConnection, f: &DeployFilter) -> Result<Vec<Outcome>> {
    let rows: Vec<OutcomeRow> = rows_filtered(c, f, OUTCOME_SELECT).await?;
    rows.into_iter()
        .map(|r| {
            Ok(Outcome {
                release: ReleaseId::from_seq(r.release_id),
                app_id: r.app_id,
                env_id: r.env_id,
                kind: read("deploys.kind", &r.kind)?,
                state: read("deploys.state", &r.state)?,
                finished_at: r.finished_at,
            })
        })
        .collect()
}

/// The rows `f` selects, as `select` (a statement up to its WHERE over
/// `deploys d` joined with `applications a` and `environments e`) reads them.
async fn rows_filtered<R>(c: &mut AnyConnection, f: &DeployFilter, select: &str) -> Result<Vec<R>>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    // A member's or a project's deploys: merged from each of their (few)
    // applications' newest, when that costs less than walking everyone's.
    if f.app_id.is_none() && (f.visible_to.is_some() || f.project_id.is_some()) {
        if let Some(apps) = per_application::few_candidates(c, f.visible_to, f.project_id).await? {
            let mut args = vec![];
            let mut conds = String::new();
            if let Some(e) = f.env_id {
                args.push(Arg::Int(e));
                conds.push_str(&format!(" AND d.env_id = ${}", args.len()));
            }
            if let Some(r) = f.release {
                args.push(Arg::Int(r.seq()));
                conds.push_str(&format!(" AND d.release_id = ${}", args.len()));
            }
            if let Some(b) = f.before {
                args.push(Arg::Int(b));
                conds.push_str(&format!(" AND d.id < ${}", args.len()));
            }
            if let Some(s) = f.state {
                conds.push_str(&format!(" AND d.state = '{}'", s.as_str()));
            }
            let ids = per_application::newest_ids(c, "deploys d", &conds, &args, &apps, f.limit).await?;
            return per_application::rows_by_ids(c, select, "d", &ids).await;
        }
    }
    let mut ints: Vec<i64> = vec![];
    let mut conds: Vec<String> = vec![];
    // `?` in `sql` becomes the next parameter, bound to `v`.
    fn int(ints: &mut Vec<i64>, conds: &mut Vec<String>, sql: &str, v: i64) {
        ints.push(v);
        conds.push(sql.replace('?', &format!("${}", ints.len())));
    }
    if let Some(u) = f.visible_to {
        let sql = "EXISTS (SELECT 1 FROM memberships m WHERE m.project_id = a.project_id AND m.user_id = ?)";
        int(&mut ints, &mut conds, sql, u);
    }
    if let Some(a) = f.app_id {
        int(&mut ints, &mut conds, "d.app_id = ?", a);
    }
    if let Some(e) = f.env_id {
        int(&mut ints, &mut conds, "d.env_id = ?", e);
    }
    if let Some(r) = f.release {
        int(&mut ints, &mut conds, "d.release_id = ?", r.seq());
    }
    if let Some(p) = f.project_id {
        int(&mut ints, &mut conds, "a.project_id = ?", p);
    }
    if let Some(b) = f.before {
        int(&mut ints, &mut conds, "d.id < ?", b);
    }
    // States are the domain's own words, never the caller's text.
    if let Some(s) = f.state {
        conds.push(format!("d.state = '{}'", s.as_str()));
    }
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    ints.push(f.limit);
    let sql = format!("{select} {filter} ORDER BY d.id DESC LIMIT ${}", ints.len());
    let mut q = sqlx::query_as::<_, R>(&sql);
    for v in ints {
        q = q.bind(v);
    }
    Ok(q.fetch_all(c).await?)
}

/// One page of an application's, environment's or release's deploys.
pub async fn list(
    c: &mut AnyConnection,
    app_id: Option<i64>,
    env_id: Option<i64>,
    release: Option<ReleaseId>,
    limit: i64,
) -> Result<Vec<Deploy>> {
    let filter = DeployFilter {
        app_id,
        env_id,
        release,
        limit,
        ..Default::default()
    };
    list_filtered(c, &filter).await
}

/// The newest succeeded deploy of an application x environment, except `not`.
pub async fn last_succeeded(c: &mut AnyConnection, app_id: i64, env_id: i64, before: i64) -> Result<Option<Deploy>> {
    let r: Option<Row> = sqlx::query_as(&format!(
        "{SELECT} WHERE d.app_id = $1 AND d.env_id = $2 AND d.state = $4 AND d.id < $3 ORDER BY d.id DESC LIMIT 1"
    ))
    .bind(app_id)
    .bind(env_id)
    .bind(before)
    .bind(DeployState::Succeeded.as_str())
    .fetch_optional(c)
    .await?;
    r.map(Deploy::try_from).transpose()
}

/// Steps a deploy from `from` by `event` (compare-and-set: a step runs
/// once; false if the deploy had left `from`). A failure records its kind.
/// An event the state machine does not allow from `from` is a conflict.
pub async fn advance(c: &mut AnyConnection, id: i64, from: DeployState, event: Step) -> Result<bool> {
    let to = from
        .next(event)
        .map_err(|e| StoreError::Conflict(format!("deploy {id}: {e}")))?;
    let now = now_ms();
    let finished = to.is_final().then_some(now);
    let failure = match event {
        Step::Fail(kind) => Some(kind.as_str()),
        _ => None,
    };
    let n = sqlx::query(
        "UPDATE deploys SET state = $3, updated_at = $4, finished_at = COALESCE($5, finished_at), \
         failure_kind = COALESCE($6, failure_kind) WHERE id = $1 AND state = $2",
    )
    .bind(id)
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(now)
    .bind(finished)
    .bind(failure)
    .execute(c)
    .await?
    .rows_affected();
    Ok(n > 0)
}

pub async fn set_plan(
    c: &mut AnyConnection,
    id: i64,
    template_version: Option<i64>,
    manifests: &serde_json::Value,
    diff: &serde_json::Value,
) -> Result<()> {
    sqlx::query("UPDATE deploys SET template_version = $2, manifests = $3, diff = $4, updated_at = $5 WHERE id = $1")
        .bind(id)
        .bind(template_version)
        .bind(manifests.to_string())
        .bind(diff.to_string())
        .bind(now_ms())
        .execute(c)
        .await?;
    Ok(())
}

pub async fn set_error(c: &mut AnyConnection, id: i64, error: &str) -> Result<()> {
    sqlx::query("UPDATE deploys SET error = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(error)
        .bind(now_ms())
        .execute(c)
        .await?;
    Ok(())
}

pub async fn set_review(c: &mut AnyConnection, id: i64, reviewer: &str, comment: &str) -> Result<()> {
    sqlx::query(
        "UPDATE deploys SET reviewer = $2, review_comment = $3, reviewed_at = $4, updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(reviewer)
    .bind(comment)
    .bind(now_ms())
    .execute(c)
    .await?;
    Ok(())
}

/// Deploys not yet finished (for resuming after a restart).
pub async fn unfinished(c: &mut AnyConnection) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT id FROM deploys WHERE state IN ({}) ORDER BY id",
        running_sql()
    ))
    .fetch_all(c)
    .await?)
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeployEvent {
    pub id: i64,
    pub deploy_id: i64,
    pub at: i64,
    pub step: String,
    pub message: String,
    #[serde(serialize_with = "raw_json")]
    pub data: String,
}

fn raw_json<S: serde::Serializer>(v: &str, s: S) -> std::result::Result<S::Ok, S::Error> {
    let value: serde_json::Value = serde_json::from_str(v).unwrap_or(serde_json::Value::Null);
    value.serialize(s)
}

/// Appends an event to a deploy's log. A reader that resumes after the
/// last event id it saw (`Last-Event-ID`) must never find an older id
/// appearing later: on PostgreSQL two transactions writing events of one
/// deploy could otherwise take ids in one order and commit in the other.
/// So the deploy's row is locked first, in the same statement, and the id
/// is drawn only then: ids of one deploy's events follow commit order.
/// (SQLite has one writer at a time, so there they always do.)
pub async fn event(
    c: &mut AnyConnection,
    deploy_id: i64,
    step: &str,
    message: &str,
    data: serde_json::Value,
) -> Result<()> {
    let sql = if c.backend_name() == "PostgreSQL" {
        "WITH d AS (SELECT id FROM deploys WHERE id = $1 FOR UPDATE) \
         INSERT INTO deploy_events (deploy_id, at, step, message, data) SELECT d.id, $2, $3, $4, $5 FROM d"
    } else {
        "INSERT INTO deploy_events (deploy_id, at, step, message, data) VALUES ($1, $2, $3, $4, $5)"
    };
    let done = sqlx::query(sql)
        .bind(deploy_id)
        .bind(now_ms())
        .bind(step)
        .bind(message)
        .bind(data.to_string())
        .execute(c)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("deploy", deploy_id));
    }
    Ok(())
}

pub async fn events(c: &mut AnyConnection, deploy_id: i64, after: i64) -> Result<Vec<DeployEvent>> {
    Ok(sqlx::query_as(
        "SELECT id, deploy_id, at, step, message, data FROM deploy_events WHERE deploy_id = $1 AND id > $2 ORDER BY id",
    )
    .bind(deploy_id)
    .bind(after)
    .fetch_all(c)
    .await?)
}

/// Deploys still marked in progress that no live job is working on (the job
/// failed for good, e.g. the server crashed on every attempt): they must not
/// stay "running" forever.
pub async fn orphaned(c: &mut AnyConnection, quiet_for_ms: i64) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT d.id FROM deploys d WHERE d.state IN ({}) AND d.updated_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind = 'deploy' AND j.state IN ('queued', 'running') \
         AND j.dedup_key LIKE 'deploy:' || CAST(d.id AS TEXT) || ':%') ORDER BY d.id",
        running_sql()
    ))
    .bind(now_ms() - quiet_for_ms)
    .fetch_all(c)
    .await?)
}

/// Writes a rollout's progress (the deploy job's alone).
pub async fn set_rollout(c: &mut AnyConnection, id: i64, progress: &serde_json::Value) -> Result<()> {
    sqlx::query("UPDATE deploys SET rollout = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(progress.to_string())
        .bind(now_ms())
        .execute(c)
        .await?;
    Ok(())
}

/// Leaves a person's command for the running rollout (`pause@<ms>`: the
/// time makes each command its own), replacing one not yet taken unless
/// that one is an abort. False when an abort is pending.
pub async fn set_rollout_command(c: &mut AnyConnection, id: i64, command: &str) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE deploys SET rollout_command = $2, updated_at = $3 WHERE id = $1 \
         AND (rollout_command IS NULL OR rollout_command NOT LIKE 'abort@%')",
    )
    .bind(id)
    .bind(format!("{command}@{}", now_ms()))
    .bind(now_ms())
    .execute(c)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// The command a person left for the running rollout, if any.
pub async fn rollout_command(c: &mut AnyConnection, id: i64) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT rollout_command FROM deploys WHERE id = $1")
        .bind(id)
        .fetch_optional(c)
        .await?
        .flatten())
}

/// Takes the command `seen` (false if another replaced it meanwhile: it is
/// read again on the next look).
pub async fn take_rollout_command(c: &mut AnyConnection, id: i64, seen: &str) -> Result<bool> {
    let n = sqlx::query("UPDATE deploys SET rollout_command = NULL WHERE id = $1 AND rollout_command = $2")
        .bind(id)
        .bind(seen)
        .execute(c)
        .await?
        .rows_affected();
    Ok(n > 0)
}
