//! The durable job queue. A job is claimed with a lease; the runner renews the
//! lease while it works. A job whose lease lapsed (its instance died) is
//! claimable again, so work survives a crash. On PostgreSQL the claim uses
//! `FOR UPDATE SKIP LOCKED`, so several instances share one queue and each
//! job runs on one instance at a time; on SQLite the store's writer lock
//! serialises claims. Handlers must be idempotent: a job whose instance died
//! after finishing the work but before recording it runs again.

use serde::Serialize;
use sqlx::AnyConnection;

use crate::{now_ms, Backend, Result, Store, StoreError};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    #[serde(serialize_with = "raw_json")]
    pub payload: String,
    /// queued, running, succeeded or failed ([`JobState`]).
    pub state: String,
    pub dedup_key: Option<String>,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_at: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// Ordinary failures so far (the retry budget is `max_attempts` of them).
    pub failures: i64,
    /// Attempts abandoned in a row (the instance died while running it).
    pub abandoned_in_a_row: i64,
    /// Why a failed job failed: `error` or `crashed` (see [`FailureKind`]).
    pub failure_kind: Option<String>,
}

/// The states of a job as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobState {
    pub const ALL: [JobState; 4] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        }
    }
}

/// Why a job failed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Its attempts failed (or its payload could not be read).
    Error,
    /// Quarantined: the server stopped while running it too often in a row.
    Crashed,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Error => "error",
            FailureKind::Crashed => "crashed",
        }
    }
}

fn raw_json<S: serde::Serializer>(v: &str, s: S) -> std::result::Result<S::Ok, S::Error> {
    let value: serde_json::Value = serde_json::from_str(v).unwrap_or(serde_json::Value::Null);
    value.serialize(s)
}

const COLS: &str = "id, kind, payload, state, dedup_key, attempts, max_attempts, run_at, lease_owner, lease_expires_at, last_error, created_at, updated_at, finished_at, failures, abandoned_in_a_row, failure_kind";

pub struct NewJob<'a> {
    pub kind: &'a str,
    pub payload: serde_json::Value,
    /// A job with the same key is not enqueued twice (e.g. one sweep per minute).
    pub dedup_key: Option<String>,
    pub run_at: Option<i64>,
    pub max_attempts: i64,
}

/// Enqueues a job; returns its id, or None when the dedup key already exists.
pub async fn enqueue(c: &mut AnyConnection, j: NewJob<'_>) -> Result<Option<i64>> {
    let now = now_ms();
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO jobs (kind, payload, state, dedup_key, max_attempts, run_at, created_at, updated_at) \
         VALUES ($1, $2, 'queued', $3, $4, $5, $6, $6) ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
    )
    .bind(j.kind)
    .bind(j.payload.to_string())
    .bind(j.dedup_key)
    .bind(j.max_attempts)
    .bind(j.run_at.unwrap_or(now))
    .bind(now)
    .fetch_optional(c)
    .await?;
    Ok(id)
}

pub async fn get(c: &mut AnyConnection, id: i64) -> Result<Job> {
    sqlx::query_as(&format!("SELECT {COLS} FROM jobs WHERE id = $1"))
        .bind(id)
        .fetch_optional(c)
        .await?
        .ok_or_else(|| StoreError::not_found("job", id))
}

pub async fn list(c: &mut AnyConnection, state: Option<&str>, kind: Option<&str>, limit: i64) -> Result<Vec<Job>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLS} FROM jobs WHERE (CAST($1 AS TEXT) IS NULL OR state = $1) AND (CAST($2 AS TEXT) IS NULL OR kind = $2) ORDER BY id DESC LIMIT $3"
    ))
    .bind(state)
    .bind(kind)
    .bind(limit)
    .fetch_all(c)
    .await?)
}

pub async fn counts(c: &mut AnyConnection) -> Result<Vec<(String, String, i64)>> {
    Ok(
        sqlx::query_as("SELECT kind, state, COUNT(*) FROM jobs GROUP BY kind, state")
            .fetch_all(c)
            .await?,
    )
}

/// How a claim ended.
#[derive(Debug)]
pub enum Claim {
    /// Nothing runnable of the asked-for kinds.
    Empty,
    /// The job is leased to the claiming instance for a new attempt.
    Claimed(Job),
    /// The job was abandoned `abandon_limit` times in a row (its instance
    /// died while running it each time): it is failed as `crashed` instead
    /// of being run again, with an audit record in the same transaction.
    Quarantined { job: Job, abandoned: Vec<JobAttempt> },
}

/// What a claim looks for and how it treats jobs whose instance died.
pub struct ClaimRequest<'a> {
    pub instance: &'a str,
    pub kinds: &'a [&'a str],
    pub lease_ms: i64,
    /// Abandoned attempts in a row after which a job is quarantined.
    pub abandon_limit: i64,
}

/// Claims the oldest runnable job (queued and due, or running with a lapsed
/// lease) for `instance`, leasing it for `lease_ms`. A job abandoned once
/// too often is not claimed (see [`claim_next`]); this returns the next one.
pub async fn claim(store: &Store, instance: &str, kinds: &[&str], lease_ms: i64) -> Result<Option<Job>> {
    let req = ClaimRequest {
        instance,
        kinds,
        lease_ms,
        abandon_limit: DEFAULT_ABANDON_LIMIT,
    };
    loop {
        match claim_next(store, &req).await? {
            Claim::Empty => return Ok(None),
            Claim::Claimed(job) => return Ok(Some(job)),
            Claim::Quarantined { .. } => continue,
        }
    }
}

/// Abandoned attempts in a row after which a job is quarantined by default.
pub const DEFAULT_ABANDON_LIMIT: i64 = 2;

/// How many more abandoned attempts a job may have while it said it was
/// waiting (see [`set_idle`]).
pub const IDLE_ABANDON_FACTOR: i64 = 5;

/// Claims one job: see [`Claim`]. A running job whose lease lapsed had its
/// attempt abandoned: the attempt is closed as `abandoned` at the job's last
/// heartbeat (when its instance was last seen alive), which does not spend
/// the job's retry budget but counts towards quarantine.
pub async fn claim_next(store: &Store, req: &ClaimRequest<'_>) -> Result<Claim> {
    let now = now_ms();
    let kinds_csv = format!(",{},", req.kinds.join(","));
    let pick = "SELECT id FROM jobs WHERE ((state = 'queued' AND run_at <= $1) OR (state = 'running' AND lease_expires_at < $1)) \
                AND $2 LIKE '%,' || kind || ',%' ORDER BY run_at, id LIMIT 1";
    let lock = match store.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let mut tx = store.begin().await?;
    let id: Option<i64> = sqlx::query_scalar(&format!("{pick}{lock}"))
        .bind(now)
        .bind(&kinds_csv)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(id) = id else {
        tx.commit().await?;
        return Ok(Claim::Empty);
    };
    let before = get(&mut tx, id).await?;
    if before.state == JobState::Running.as_str() {
        // The instance that ran it died (or was cut off) without recording an end.
        sqlx::query(
            "UPDATE job_attempts SET finished_at = $2, outcome = 'abandoned' WHERE job_id = $1 AND finished_at IS NULL",
        )
        .bind(id)
        .bind(before.updated_at)
        .execute(&mut *tx)
        .await?;
        // An attempt that was waiting (on a person, a timer) when its
        // instance stopped most likely did not bring it down: it counts
        // against a limit of its own, five times higher, so that a job that
        // waits for hours survives restarts but one that crashes the server
        // while it polls is still stopped in the end.
        let (idle, idle_in_a_row): (i64, i64) =
            sqlx::query_as("SELECT idle, idle_abandoned_in_a_row FROM jobs WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        let idle_in_a_row = idle_in_a_row + i64::from(idle != 0);
        let in_a_row = before.abandoned_in_a_row + i64::from(idle == 0);
        if in_a_row >= req.abandon_limit || idle_in_a_row >= req.abandon_limit * IDLE_ABANDON_FACTOR {
            let in_a_row = in_a_row.max(idle_in_a_row);
            let abandoned: Vec<JobAttempt> = attempts(&mut tx, id)
                .await?
                .into_iter()
                .rev()
                .take(in_a_row as usize)
                .rev()
                .collect();
            let error = format!("abandoned {in_a_row} times in a row: the server stopped while running it");
            sqlx::query(
                "UPDATE jobs SET state = 'failed', failure_kind = 'crashed', abandoned_in_a_row = $2, lease_owner = NULL, \
                 lease_expires_at = NULL, finished_at = $3, updated_at = $3, last_error = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(in_a_row)
            .bind(now)
            .bind(&error)
            .execute(&mut *tx)
            .await?;
            let detail = serde_json::json!({
                "kind": before.kind,
                "payload": serde_json::from_str::<serde_json::Value>(&before.payload).unwrap_or_default(),
                "abandoned": abandoned.iter().map(|a| serde_json::json!({
                    "attempt": a.attempt, "instance": a.instance, "started_at": a.started_at, "stopped_at": a.finished_at,
                })).collect::<Vec<_>>(),
            });
            crate::audit::record(
                &mut tx,
                &crate::audit::Origin::system("jobs"),
                "job.quarantined",
                "job",
                &id.to_string(),
                detail,
            )
            .await?;
            let job = get(&mut tx, id).await?;
            tx.commit().await?;
            return Ok(Claim::Quarantined { job, abandoned });
        }
        sqlx::query("UPDATE jobs SET abandoned_in_a_row = $2, idle_abandoned_in_a_row = $3 WHERE id = $1")
            .bind(id)
            .bind(in_a_row)
            .bind(idle_in_a_row)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "UPDATE jobs SET state = 'running', lease_owner = $2, lease_expires_at = $3, attempts = attempts + 1, updated_at = $4, idle = 0 WHERE id = $1",
    )
    .bind(id)
    .bind(req.instance)
    .bind(now + req.lease_ms)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let job = get(&mut tx, id).await?;
    sqlx::query("INSERT INTO job_attempts (job_id, attempt, instance, started_at) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(job.attempts)
        .bind(req.instance)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Claim::Claimed(job))
}

/// At start: the leases this instance's previous run held (or, with `all`,
/// every running lease: on SQLite one instance is the only one) lapse now, so
/// the next claim takes them back instead of waiting for them to expire.
/// Returns how many.
pub async fn take_back_leases(store: &Store, instance: &str, all: bool) -> Result<u64> {
    let mut tx = store.begin().await?;
    let n =
        sqlx::query("UPDATE jobs SET lease_expires_at = 0 WHERE state = 'running' AND (lease_owner = $1 OR $2 = 1)")
            .bind(instance)
            .bind(i64::from(all))
            .execute(&mut *tx)
            .await?
            .rows_affected();
    tx.commit().await?;
    Ok(n)
}

/// Extends the lease; false if the job is no longer ours (lease lapsed and taken).
pub async fn heartbeat(c: &mut AnyConnection, id: i64, instance: &str, lease_ms: i64) -> Result<bool> {
    let now = now_ms();
    let n = sqlx::query("UPDATE jobs SET lease_expires_at = $3, updated_at = $4 WHERE id = $1 AND lease_owner = $2 AND state = 'running'")
        .bind(id)
        .bind(instance)
        .bind(now + lease_ms)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected();
    Ok(n > 0)
}

pub enum Outcome {
    Succeeded,
    /// Failed; retried after `retry_in_ms` unless its failures reached `max_attempts`.
    Failed {
        error: String,
        retry_in_ms: i64,
    },
    /// Failed in a way another attempt cannot fix (a payload that cannot be read).
    FailedFinal {
        error: String,
    },
}

/// Records the end of an attempt, only if the job is still leased to `instance`.
/// Only failures spend the retry budget; abandoned attempts (crashes) do not.
pub async fn finish(store: &Store, id: i64, instance: &str, attempt: i64, outcome: Outcome) -> Result<bool> {
    let now = now_ms();
    let mut tx = store.begin().await?;
    let n = match &outcome {
        Outcome::Succeeded => sqlx::query(
            "UPDATE jobs SET state = 'succeeded', lease_owner = NULL, lease_expires_at = NULL, finished_at = $3, updated_at = $3, \
             last_error = NULL, abandoned_in_a_row = 0, idle_abandoned_in_a_row = 0 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(instance)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected(),
        Outcome::Failed { error, .. } | Outcome::FailedFinal { error } => {
            let (retry_in_ms, last) = match &outcome {
                Outcome::Failed { retry_in_ms, .. } => (*retry_in_ms, 0i64),
                _ => (0, 1),
            };
            sqlx::query(
                "UPDATE jobs SET failures = failures + 1, \
                 state = CASE WHEN failures + 1 >= max_attempts OR $6 = 1 THEN 'failed' ELSE 'queued' END, \
                 failure_kind = CASE WHEN failures + 1 >= max_attempts OR $6 = 1 THEN 'error' ELSE NULL END, \
                 finished_at = CASE WHEN failures + 1 >= max_attempts OR $6 = 1 THEN $3 ELSE NULL END, run_at = $4, lease_owner = NULL, \
                 lease_expires_at = NULL, last_error = $5, updated_at = $3, abandoned_in_a_row = 0, idle_abandoned_in_a_row = 0 \
                 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
            )
            .bind(id)
            .bind(instance)
            .bind(now)
            .bind(now + retry_in_ms)
            .bind(error)
            .bind(last)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        }
    };
    if n > 0 {
        let (label, err) = match &outcome {
            Outcome::Succeeded => ("succeeded", None),
            Outcome::Failed { error, .. } | Outcome::FailedFinal { error } => ("failed", Some(error.as_str())),
        };
        sqlx::query("UPDATE job_attempts SET finished_at = $4, outcome = $5, error = $6 WHERE job_id = $1 AND attempt = $2 AND instance = $3")
            .bind(id)
            .bind(attempt)
            .bind(instance)
            .bind(now)
            .bind(label)
            .bind(err)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(n > 0)
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct JobAttempt {
    pub job_id: i64,
    pub attempt: i64,
    pub instance: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub outcome: Option<String>,
    pub error: Option<String>,
}

pub async fn attempts(c: &mut AnyConnection, job_id: i64) -> Result<Vec<JobAttempt>> {
    Ok(sqlx::query_as("SELECT job_id, attempt, instance, started_at, finished_at, outcome, error FROM job_attempts WHERE job_id = $1 ORDER BY id")
        .bind(job_id)
        .fetch_all(c)
        .await?)
}

/// Hands a running job back to the queue at once (on graceful shutdown), so
/// another instance need not wait for the lease to lapse.
pub async fn release(store: &Store, id: i64, instance: &str) -> Result<bool> {
    let now = now_ms();
    let mut tx = store.begin().await?;
    let n = sqlx::query(
        "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL, attempts = attempts - 1, abandoned_in_a_row = 0, idle_abandoned_in_a_row = 0, \
         updated_at = $3 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
    )
    .bind(id)
    .bind(instance)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("UPDATE job_attempts SET finished_at = $3, outcome = 'handed_back' WHERE job_id = $1 AND instance = $2 AND finished_at IS NULL")
        .bind(id)
        .bind(instance)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(n > 0)
}

/// Jobs quarantined (failed as `crashed`) so far, by kind.
pub async fn quarantined_counts(c: &mut AnyConnection) -> Result<Vec<(String, i64)>> {
    Ok(
        sqlx::query_as("SELECT kind, COUNT(*) FROM jobs WHERE failure_kind = 'crashed' GROUP BY kind")
            .fetch_all(c)
            .await?,
    )
}

/// A process group a job's attempt started on this host, recorded before the
/// command runs so a restarted instance can end it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobProcess {
    pub id: i64,
    pub job_id: i64,
    pub attempt: i64,
    pub instance: String,
    pub pgid: i64,
    /// What it belongs to, for the message (e.g. `build:12`).
    pub subject: String,
    /// In the environment of the group's processes (`PRISM_STEP_MARKER`).
    pub marker: String,
    pub started_at: i64,
}

pub async fn process_started(
    store: &Store,
    job_id: i64,
    attempt: i64,
    instance: &str,
    pgid: i64,
    subject: &str,
    marker: &str,
) -> Result<i64> {
    let mut tx = store.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO job_processes (job_id, attempt, instance, pgid, subject, marker, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(job_id)
    .bind(attempt)
    .bind(instance)
    .bind(pgid)
    .bind(subject)
    .bind(marker)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// The process group ended (or was ended): nothing to clean up after a crash.
pub async fn process_ended(store: &Store, id: i64) -> Result<()> {
    let mut tx = store.begin().await?;
    sqlx::query("UPDATE job_processes SET ended_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// Process groups that `instance` (all, with `all`) started and never saw end.
pub async fn open_processes(c: &mut AnyConnection, instance: &str, all: bool) -> Result<Vec<JobProcess>> {
    Ok(sqlx::query_as(
        "SELECT id, job_id, attempt, instance, pgid, subject, marker, started_at FROM job_processes \
         WHERE ended_at IS NULL AND (instance = $1 OR $2 = 1) ORDER BY id",
    )
    .bind(instance)
    .bind(i64::from(all))
    .fetch_all(c)
    .await?)
}

/// Marks a running job as waiting on something outside itself (a person, a
/// timer) or as working again. Its instance stopping while it waits is not
/// counted towards quarantine.
pub async fn set_idle(c: &mut AnyConnection, id: i64, instance: &str, idle: bool) -> Result<()> {
    sqlx::query("UPDATE jobs SET idle = $2 WHERE id = $1 AND state = 'running' AND lease_owner = $3")
        .bind(id)
        .bind(i64::from(idle))
        .bind(instance)
        .execute(c)
        .await?;
    Ok(())
}
