//! The durable job queue, as admins inspect it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
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
    /// Ordinary failures so far (the retry budget is `max_attempts` of them).
    pub failures: i64,
    /// Attempts abandoned in a row (the instance died while running it).
    pub abandoned_in_a_row: i64,
    /// Why a failed job failed: `error` or `crashed`.
    pub failure_kind: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobAttempt {
    pub job_id: i64,
    pub attempt: i64,
    pub instance: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub outcome: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobDetail {
    pub job: Job,
    pub attempts: Vec<JobAttempt>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelfTest {
    /// How long the job works, holding its lease (0 to 600000 ms).
    pub duration_ms: i64,
}
