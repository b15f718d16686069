//! What a quarantined job is told: when and where its attempts were
//! abandoned, so the deploy or build it worked on can say so.

use prism_store::jobs::JobAttempt;

/// A job failed as `crashed`: the server stopped while running it
/// `abandoned.len()` times in a row.
#[derive(Debug, Clone)]
pub struct Quarantine {
    pub job_id: i64,
    pub kind: String,
    pub abandoned: Vec<JobAttempt>,
}

impl Quarantine {
    /// "the server stopped during it 2 times in a row (at 2026-... on
    /// instance a; at ... on instance a)".
    pub fn describe(&self) -> String {
        let each: Vec<String> = self
            .abandoned
            .iter()
            .map(|a| {
                let at = a.finished_at.unwrap_or(a.started_at);
                format!("at {} on instance {}", rfc3339(at), a.instance)
            })
            .collect();
        format!(
            "the server stopped during it {} times in a row ({}); it is not run again until someone retries it",
            self.abandoned.len(),
            each.join("; ")
        )
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}
