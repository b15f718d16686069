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

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    #[schema(value_type = Object)]
    #[serde(serialize_with = "raw_json")]
    pub payload: String,
    /// queued, running, succeeded or failed.
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
}

fn raw_json<S: serde::Serializer>(v: &str, s: S) -> std::result::Result<S::Ok, S::Error> {
    let value: serde_json::Value = serde_json::from_str(v).unwrap_or(serde_json::Value::Null);
    value.serialize(s)
}

const COLS: &str = "id, kind, payload, state, dedup_key, attempts, max_attempts, run_at, lease_owner, lease_expires_at, last_error, created_at, updated_at, finished_at";

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

/// Claims the oldest runnable job (queued and due, or running with a lapsed
/// lease) for `instance`, leasing it for `lease_ms`.
pub async fn claim(store: &Store, instance: &str, kinds: &[&str], lease_ms: i64) -> Result<Option<Job>> {
    let now = now_ms();
    let kinds_csv = format!(",{},", kinds.join(","));
    let pick = "SELECT id FROM jobs WHERE ((state = 'queued' AND run_at <= $2) OR (state = 'running' AND lease_expires_at < $2)) \
                AND $4 LIKE '%,' || kind || ',%' ORDER BY run_at, id LIMIT 1";
    let lock = match store.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let mut tx = store.begin().await?;
    let id: Option<i64> = sqlx::query_scalar(&format!("{pick}{lock}"))
        .bind(instance)
        .bind(now)
        .bind(lease_ms)
        .bind(&kinds_csv)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(id) = id else {
        tx.commit().await?;
        return Ok(None);
    };
    sqlx::query(
        "UPDATE jobs SET state = 'running', lease_owner = $2, lease_expires_at = $3, attempts = attempts + 1, updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(instance)
    .bind(now + lease_ms)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let job = get(&mut tx, id).await?;
    // A lapsed attempt that never finished is closed as abandoned.
    sqlx::query(
        "UPDATE job_attempts SET finished_at = $2, outcome = 'lease_lapsed' WHERE job_id = $1 AND finished_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO job_attempts (job_id, attempt, instance, started_at) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(job.attempts)
        .bind(instance)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(job))
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
    /// Failed; retried after `retry_in_ms` unless attempts are exhausted.
    Failed {
        error: String,
        retry_in_ms: i64,
    },
}

/// Records the end of an attempt, only if the job is still leased to `instance`.
pub async fn finish(store: &Store, id: i64, instance: &str, attempt: i64, outcome: Outcome) -> Result<bool> {
    let now = now_ms();
    let mut tx = store.begin().await?;
    let n = match &outcome {
        Outcome::Succeeded => sqlx::query(
            "UPDATE jobs SET state = 'succeeded', lease_owner = NULL, lease_expires_at = NULL, finished_at = $3, updated_at = $3, last_error = NULL \
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(instance)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected(),
        Outcome::Failed { error, retry_in_ms } => sqlx::query(
            "UPDATE jobs SET state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END, \
             finished_at = CASE WHEN attempts >= max_attempts THEN $3 ELSE NULL END, run_at = $4, lease_owner = NULL, \
             lease_expires_at = NULL, last_error = $5, updated_at = $3 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(instance)
        .bind(now)
        .bind(now + retry_in_ms)
        .bind(error)
        .execute(&mut *tx)
        .await?
        .rows_affected(),
    };
    if n > 0 {
        let (label, err) = match &outcome {
            Outcome::Succeeded => ("succeeded", None),
            Outcome::Failed { error, .. } => ("failed", Some(error.as_str())),
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

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
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
        "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL, attempts = attempts - 1, updated_at = $3 \
         WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
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
