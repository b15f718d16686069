//! Builds: one attempt to turn a release into an image, as a persisted state
//! machine (queued -> checkout -> building -> pushing -> succeeded | failed |
//! cancelled) with its log. The build job writes each state before its work
//! starts; a build whose server died is retried from the start (every step is
//! safe to repeat: a fresh workspace, the same layer, an idempotent push).

use prism_domain::{BuildEvent, BuildFailure, BuildState, ReleaseId};
use serde::Serialize;
use sqlx::AnyConnection;

use crate::per_application;
use crate::stored::{in_list, read};
use crate::{now_ms, Result, StoreError};

/// `'queued', 'checkout', ...`: the states with work ahead, for SQL.
fn active_sql() -> String {
    in_list(&BuildState::ACTIVE, BuildState::as_str)
}

/// The states a build may restart from (the server died mid-build).
fn restartable_sql() -> String {
    let from: Vec<BuildState> = BuildState::ALL
        .iter()
        .copied()
        .filter(|s| s.next(BuildEvent::Restart).is_ok())
        .collect();
    in_list(&from, BuildState::as_str)
}

#[derive(Debug, Clone, Serialize)]
pub struct Build {
    pub id: i64,
    pub release: ReleaseId,
    pub application: String,
    pub state: BuildState,
    /// `local` or the Jenkins executor's name.
    pub executor: String,
    /// The settings the build ran with (application settings over the stack preset).
    pub settings: serde_json::Value,
    pub commit_sha: Option<String>,
    pub image_ref: Option<String>,
    pub image_digest: Option<String>,
    pub layer_digest: Option<String>,
    pub base_image: Option<String>,
    pub base_digest: Option<String>,
    /// The registered image the build command ran in, and the digest it was
    /// pinned to (None on Jenkins, on the unsandboxed runner, and before the command ran).
    pub builder_image: Option<String>,
    pub builder_digest: Option<String>,
    pub bytes_uploaded: Option<i64>,
    /// Where the build ran outside Prism (the Jenkins console).
    pub external_url: Option<String>,
    pub failure_kind: Option<BuildFailure>,
    pub error: Option<String>,
    pub cancel_requested: bool,
    pub requested_by: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub updated_at: i64,
    /// While queued: 1 for the next build to start, counting every queued
    /// build of the server (set by the read that returns one build).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<i64>,
    #[serde(skip)]
    pub app_id: i64,
    #[serde(skip)]
    pub project_id: i64,
    #[serde(skip)]
    pub base_image_id: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    release_id: i64,
    application: String,
    state: String,
    executor: String,
    settings: String,
    commit_sha: Option<String>,
    image_ref: Option<String>,
    image_digest: Option<String>,
    layer_digest: Option<String>,
    base_image: Option<String>,
    base_digest: Option<String>,
    builder_image: Option<String>,
    builder_digest: Option<String>,
    bytes_uploaded: Option<i64>,
    external_url: Option<String>,
    failure_kind: Option<String>,
    error: Option<String>,
    cancel_requested: i64,
    requested_by: String,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    updated_at: i64,
    app_id: i64,
    project_id: i64,
    base_image_id: Option<i64>,
}

impl TryFrom<Row> for Build {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self> {
        Ok(Build {
            id: r.id,
            release: ReleaseId::from_seq(r.release_id),
            application: r.application,
            state: read("builds.state", &r.state)?,
            executor: r.executor,
            settings: serde_json::from_str(&r.settings)
                .map_err(|e| StoreError::Corrupt(format!("build settings: {e}")))?,
            commit_sha: r.commit_sha,
            image_ref: r.image_ref,
            image_digest: r.image_digest,
            layer_digest: r.layer_digest,
            base_image: r.base_image,
            base_digest: r.base_digest,
            builder_image: r.builder_image,
            builder_digest: r.builder_digest,
            bytes_uploaded: r.bytes_uploaded,
            external_url: r.external_url,
            failure_kind: r
                .failure_kind
                .as_deref()
                .map(|k| read("builds.failure_kind", k))
                .transpose()?,
            error: r.error,
            cancel_requested: r.cancel_requested != 0,
            requested_by: r.requested_by,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            updated_at: r.updated_at,
            queue_position: None,
            app_id: r.app_id,
            project_id: r.project_id,
            base_image_id: r.base_image_id,
        })
    }
}

const SELECT: &str = "SELECT b.id, b.release_id, a.name AS application, b.state, b.executor, b.settings, b.commit_sha, \
    b.image_ref, b.image_digest, b.layer_digest, bi.name AS base_image, b.base_digest, b.builder_image, b.builder_digest, b.bytes_uploaded, b.external_url, \
    b.failure_kind, b.error, b.cancel_requested, b.requested_by, b.created_at, b.started_at, b.finished_at, b.updated_at, \
    b.app_id, a.project_id, b.base_image_id \
    FROM builds b JOIN applications a ON a.id = b.app_id LEFT JOIN base_images bi ON bi.id = b.base_image_id";

pub struct NewBuild<'a> {
    pub release: ReleaseId,
    pub app_id: i64,
    pub executor: &'a str,
    pub settings: &'a serde_json::Value,
    pub base_image_id: Option<i64>,
    pub requested_by: &'a str,
}

/// Creates a queued build; Conflict if the release has one in progress.
pub async fn create(c: &mut AnyConnection, n: NewBuild<'_>) -> Result<Build> {
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO builds (release_id, app_id, state, executor, settings, base_image_id, requested_by, created_at, updated_at) \
         VALUES ($1, $2, $8, $3, $4, $5, $6, $7, $7) RETURNING id",
    )
    .bind(n.release.seq())
    .bind(n.app_id)
    .bind(n.executor)
    .bind(n.settings.to_string())
    .bind(n.base_image_id)
    .bind(n.requested_by)
    .bind(now)
    .bind(BuildState::Queued.as_str())
    .fetch_one(&mut *c)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(format!("release {} has a build in progress", n.release))
        }
        _ => StoreError::Database(e),
    })?;
    get(c, id).await
}

pub async fn get(c: &mut AnyConnection, id: i64) -> Result<Build> {
    let row: Option<Row> = sqlx::query_as(&format!("{SELECT} WHERE b.id = $1"))
        .bind(id)
        .fetch_optional(c)
        .await?;
    row.ok_or_else(|| StoreError::not_found("build", id))?.try_into()
}

pub async fn for_release(c: &mut AnyConnection, release: ReleaseId) -> Result<Vec<Build>> {
    let rows: Vec<Row> = sqlx::query_as(&format!("{SELECT} WHERE b.release_id = $1 ORDER BY b.id DESC"))
        .bind(release.seq())
        .fetch_all(c)
        .await?;
    rows.into_iter().map(Build::try_from).collect()
}

/// Newest first; `visible_to` limits to projects the user is a member of (None: all).
pub async fn list(
    c: &mut AnyConnection,
    visible_to: Option<i64>,
    app_id: Option<i64>,
    state: Option<BuildState>,
    limit: i64,
) -> Result<Vec<Build>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "{SELECT} WHERE (CAST($1 AS BIGINT) IS NULL OR EXISTS (SELECT 1 FROM memberships m WHERE m.project_id = a.project_id AND m.user_id = $1)) \
         AND (CAST($2 AS BIGINT) IS NULL OR b.app_id = $2) AND (CAST($3 AS TEXT) IS NULL OR b.state = $3) ORDER BY b.id DESC LIMIT $4"
    ))
    .bind(visible_to)
    .bind(app_id)
    .bind(state.map(BuildState::as_str))
    .bind(limit)
    .fetch_all(c)
    .await?;
    rows.into_iter().map(Build::try_from).collect()
}

/// Steps the build from `from` by `event` (compare-and-set: false if the
/// build was no longer in `from`); an event the state machine does not allow
/// from `from` is a conflict.
pub async fn step(c: &mut AnyConnection, id: i64, from: BuildState, event: BuildEvent) -> Result<bool> {
    let to = from
        .next(event)
        .map_err(|e| StoreError::Conflict(format!("build {id}: {e}")))?;
    let now = now_ms();
    let n = sqlx::query(
        "UPDATE builds SET state = $3, updated_at = $4, started_at = COALESCE(started_at, $4) WHERE id = $1 AND state = $2",
    )
    .bind(id)
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(now)
    .execute(c)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Back to queued for another attempt after a crash (the log says so).
pub async fn restart(c: &mut AnyConnection, id: i64) -> Result<bool> {
    let n = sqlx::query(&format!(
        "UPDATE builds SET state = $3, updated_at = $2 WHERE id = $1 AND state IN ({})",
        restartable_sql()
    ))
    .bind(id)
    .bind(now_ms())
    .bind(BuildState::Queued.as_str())
    .execute(c)
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub async fn set_commit(c: &mut AnyConnection, id: i64, sha: &str) -> Result<()> {
    sqlx::query("UPDATE builds SET commit_sha = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(sha)
        .bind(now_ms())
        .execute(c)
        .await?;
    Ok(())
}

/// Records the builder image (and the digest it was pinned to) a build's command runs in.
pub async fn set_builder(c: &mut AnyConnection, id: i64, image: &str, digest: &str) -> Result<()> {
    sqlx::query("UPDATE builds SET builder_image = $2, builder_digest = $3, updated_at = $4 WHERE id = $1")
        .bind(id)
        .bind(image)
        .bind(digest)
        .bind(now_ms())
        .execute(c)
        .await?;
    Ok(())
}

/// A queued build's place in the server's queue (1: next), None once it started.
/// Builds start in the order they were requested (the job queue's order).
pub async fn queue_position(c: &mut AnyConnection, id: i64) -> Result<Option<i64>> {
    let queued = BuildState::Queued.as_str();
    let (me,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM builds WHERE id = $1 AND state = $2")
        .bind(id)
        .bind(queued)
        .fetch_one(&mut *c)
        .await?;
    if me == 0 {
        return Ok(None);
    }
    let (ahead,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM builds WHERE id < $1 AND state = $2")
        .bind(id)
        .bind(queued)
        .fetch_one(c)
        .await?;
    Ok(Some(ahead + 1))
}

pub async fn set_external_url(c: &mut AnyConnection, id: i64, url: &str) -> Result<()> {
    sqlx::query("UPDATE builds SET external_url = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(url)
        .bind(now_ms())
        .execute(c)
        .await?;
    Ok(())
}

pub struct Pushed<'a> {
    pub image_ref: &'a str,
    pub image_digest: &'a str,
    pub layer_digest: &'a str,
    pub base_digest: Option<&'a str>,
    pub bytes_uploaded: i64,
}

/// pushing -> succeeded with the image; false if the build had left `pushing`.
pub async fn succeed(c: &mut AnyConnection, id: i64, p: Pushed<'_>) -> Result<bool> {
    let now = now_ms();
    let from = BuildState::Pushing;
    let to = from.next(BuildEvent::Pushed).expect("pushing -> succeeded");
    let n = sqlx::query(
        "UPDATE builds SET state = $8, image_ref = $2, image_digest = $3, layer_digest = $4, base_digest = $5, \
         bytes_uploaded = $6, finished_at = $7, updated_at = $7 WHERE id = $1 AND state = $9",
    )
    .bind(id)
    .bind(p.image_ref)
    .bind(p.image_digest)
    .bind(p.layer_digest)
    .bind(p.base_digest)
    .bind(p.bytes_uploaded)
    .bind(now)
    .bind(to.as_str())
    .bind(from.as_str())
    .execute(c)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Ends an unfinished build with `kind` (as cancelled when the kind is
/// `cancelled`, else failed); false if it had ended already.
pub async fn finish_failed(c: &mut AnyConnection, id: i64, kind: BuildFailure, error: &str) -> Result<bool> {
    let now = now_ms();
    // Every active state fails the same way; the machine says where to.
    let to = BuildState::Queued
        .next(BuildEvent::Fail(kind))
        .expect("an active build can always fail");
    let n = sqlx::query(&format!(
        "UPDATE builds SET state = $2, failure_kind = $3, error = $4, finished_at = $5, updated_at = $5 \
         WHERE id = $1 AND state IN ({})",
        active_sql()
    ))
    .bind(id)
    .bind(to.as_str())
    .bind(kind.as_str())
    .bind(error)
    .bind(now)
    .execute(c)
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub async fn request_cancel(c: &mut AnyConnection, id: i64) -> Result<bool> {
    let n = sqlx::query(&format!(
        "UPDATE builds SET cancel_requested = 1, updated_at = $2 WHERE id = $1 AND state IN ({})",
        active_sql()
    ))
    .bind(id)
    .bind(now_ms())
    .execute(c)
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub async fn cancel_requested(c: &mut AnyConnection, id: i64) -> Result<bool> {
    let v: Option<i64> = sqlx::query_scalar("SELECT cancel_requested FROM builds WHERE id = $1")
        .bind(id)
        .fetch_optional(c)
        .await?;
    Ok(v.unwrap_or(0) != 0)
}

/// Builds in progress with no live job and no progress for `quiet_for_ms`.
pub async fn orphaned(c: &mut AnyConnection, quiet_for_ms: i64) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT b.id FROM builds b WHERE b.state IN ({}) AND b.updated_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind = 'build' AND j.state IN ('queued', 'running') \
         AND j.dedup_key = 'build:' || CAST(b.id AS TEXT)) ORDER BY b.id",
        active_sql()
    ))
    .bind(now_ms() - quiet_for_ms)
    .fetch_all(c)
    .await?)
}

/// One stored log line.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct LogLine {
    pub seq: i64,
    /// stdout, stderr or system
    pub stream: String,
    pub line: String,
    pub at: i64,
}

/// The next free sequence number of a build's log.
pub async fn next_log_seq(c: &mut AnyConnection, id: i64) -> Result<i64> {
    let max: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM build_logs WHERE build_id = $1")
        .bind(id)
        .fetch_one(c)
        .await?;
    Ok(max.map_or(0, |m| m + 1))
}

/// Appends lines in one multi-row insert (the log writer batches them).
pub async fn append_logs(c: &mut AnyConnection, id: i64, lines: &[LogLine]) -> Result<()> {
    for chunk in lines.chunks(200) {
        let mut sql = String::from("INSERT INTO build_logs (build_id, seq, stream, line, at) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            let b = i * 5;
            sql.push_str(&format!("(${}, ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4, b + 5));
        }
        let mut q = sqlx::query(&sql);
        for l in chunk {
            q = q
                .bind(id)
                .bind(l.seq)
                .bind(l.stream.clone())
                .bind(l.line.clone())
                .bind(l.at);
        }
        q.execute(&mut *c).await?;
    }
    sqlx::query("UPDATE builds SET updated_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now_ms())
        .execute(c)
        .await?;
    Ok(())
}

/// Lines with `seq > after`, oldest first.
pub async fn logs(c: &mut AnyConnection, id: i64, after: i64, limit: i64) -> Result<Vec<LogLine>> {
    Ok(sqlx::query_as(
        "SELECT seq, stream, line, at FROM build_logs WHERE build_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(id)
    .bind(after)
    .bind(limit)
    .fetch_all(c)
    .await?)
}

/// When a finished build ran, for statistics.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Timing {
    pub state: BuildState,
    pub started_at: i64,
    pub finished_at: i64,
}

/// The newest `limit` finished builds of a project's applications: merged
/// from each application's newest (its `(app_id, id)` index), so the cost
/// follows the project's applications and `limit`, not its history.
pub async fn recent_timings(c: &mut AnyConnection, project_id: i64, limit: i64) -> Result<Vec<Timing>> {
    let apps = per_application::candidates(c, None, Some(project_id), usize::MAX >> 1).await?;
    let finished = " AND b.started_at IS NOT NULL AND b.finished_at IS NOT NULL";
    let ids = per_application::newest_ids(c, "builds b", finished, &[], &apps, limit).await?;
    let rows: Vec<(String, i64, i64)> = per_application::rows_by_ids(
        c,
        "SELECT b.state, b.started_at, b.finished_at FROM builds b",
        "b",
        &ids,
    )
    .await?;
    rows.into_iter()
        .map(|(state, started_at, finished_at)| {
            Ok(Timing {
                state: read("builds.state", &state)?,
                started_at,
                finished_at,
            })
        })
        .collect()
}

/// A Kubernetes runner's concurrency slot, asked for by a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerSlot {
    /// The build holds a slot (now, or since an earlier attempt).
    Taken,
    /// The runner is at its limit, or older builds wait for it first:
    /// `in_use` slots are held and the build is `place` in the runner's queue.
    Wait { in_use: i64, place: i64 },
}

/// Takes one of `runner`'s slots for build `id` when fewer than `limit`
/// active builds hold one and no older build waits for it (first come,
/// first served); else records that the build waits for it. Run inside a
/// transaction: the executor's row is locked first, so Prism instances
/// sharing a PostgreSQL store take slots one at a time (SQLite has a single
/// writer anyway). A slot is held until the build reaches a final state.
pub async fn take_runner_slot(c: &mut AnyConnection, id: i64, runner: &str, limit: Option<i64>) -> Result<RunnerSlot> {
    sqlx::query("UPDATE executors SET settings = settings WHERE name = $1")
        .bind(runner)
        .execute(&mut *c)
        .await?;
    let (held,): (i64,) = sqlx::query_as("SELECT runner_slot FROM builds WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *c)
        .await?;
    if held != 0 {
        return Ok(RunnerSlot::Taken);
    }
    let active = active_sql();
    let (in_use,): (i64,) = sqlx::query_as(&format!(
        "SELECT COUNT(*) FROM builds WHERE runner = $1 AND runner_slot = 1 AND state IN ({active})"
    ))
    .bind(runner)
    .fetch_one(&mut *c)
    .await?;
    let (older,): (i64,) = sqlx::query_as(&format!(
        "SELECT COUNT(*) FROM builds WHERE runner = $1 AND runner_slot = 0 AND state IN ({active}) AND id < $2"
    ))
    .bind(runner)
    .bind(id)
    .fetch_one(&mut *c)
    .await?;
    let free = limit.is_none_or(|l| in_use < l);
    let taken = free && older == 0;
    sqlx::query("UPDATE builds SET runner = $2, runner_slot = $3 WHERE id = $1")
        .bind(id)
        .bind(runner)
        .bind(taken as i64)
        .execute(c)
        .await?;
    Ok(if taken {
        RunnerSlot::Taken
    } else {
        RunnerSlot::Wait {
            in_use,
            place: older + 1,
        }
    })
}
