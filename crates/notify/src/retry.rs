//! What happens after an attempt: delivered, tried again later (with
//! exponential backoff), or given up; and the error text as it may be kept
//! (the channel's secrets removed).
//!
//! ```text
//! queued --attempt ok--> delivered
//!    |  \--attempt failed, retryable, attempts left--> retrying --(at next_retry_at)--> attempt ...
//!    \----attempt failed, final or no attempts left--> failed
//! ```

use prism_domain::words;

use crate::DeliveryError;

words! {
    /// Where a delivery stands.
    pub enum DeliveryStatus {
        /// Waiting for its first attempt.
        Queued => "queued",
        /// An attempt failed; another is due at `next_retry_at`.
        Retrying => "retrying",
        Delivered => "delivered",
        /// Refused for good, or every attempt failed.
        Failed => "failed",
    }
}

impl DeliveryStatus {
    pub fn is_final(self) -> bool {
        matches!(self, DeliveryStatus::Delivered | DeliveryStatus::Failed)
    }
}

/// How retries are spaced: `base_ms`, then twice that, and so on, never
/// more than `max_ms` apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base_ms: i64,
    pub max_ms: i64,
}

impl Backoff {
    /// The wait after the `failures`-th failed attempt (1 = the first).
    pub fn after(&self, failures: i64) -> i64 {
        let shift = (failures - 1).clamp(0, 30) as u32;
        self.base_ms.saturating_mul(1i64 << shift).min(self.max_ms).max(0)
    }
}

/// The delivery's next state after attempt number `attempt` (1-based) of
/// at most `max_attempts` ended with `result`, at `now_ms`.
pub fn after_attempt(
    result: &Result<crate::Delivery, DeliveryError>,
    attempt: i64,
    max_attempts: i64,
    backoff: Backoff,
    now_ms: i64,
) -> (DeliveryStatus, Option<i64>) {
    match result {
        Ok(_) => (DeliveryStatus::Delivered, None),
        Err(e) if e.retryable() && attempt < max_attempts => {
            (DeliveryStatus::Retrying, Some(now_ms + backoff.after(attempt)))
        }
        Err(_) => (DeliveryStatus::Failed, None),
    }
}

/// `text` with every secret replaced by `***`: the channel's signing secret
/// or password, its URL, and the parts of the URL that carry a robot's
/// token (query values, a long path). Short pieces are left alone (they
/// would blank out ordinary words).
pub fn redact(text: &str, url: Option<&str>, secrets: &[&str]) -> String {
    let mut pieces: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
    if let Some(u) = url {
        pieces.push(u.to_string());
        if let Ok(parsed) = reqwest::Url::parse(u) {
            if parsed.path().len() > 1 {
                pieces.push(parsed.path().to_string());
                pieces.extend(parsed.path_segments().into_iter().flatten().map(String::from));
            }
            if let Some(q) = parsed.query() {
                pieces.push(q.to_string());
            }
            for (_, v) in parsed.query_pairs() {
                pieces.push(v.into_owned());
            }
            if !parsed.password().unwrap_or("").is_empty() {
                pieces.push(parsed.password().unwrap_or("").to_string());
            }
        }
    }
    let mut pieces: Vec<String> = pieces.into_iter().filter(|p| p.chars().count() >= 6).collect();
    // Longest first, so a URL goes before the token inside it.
    pieces.sort_by_key(|p| std::cmp::Reverse(p.len()));
    pieces.dedup();
    let mut out = text.to_string();
    for p in &pieces {
        out = out.replace(p.as_str(), "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Delivery;

    const B: Backoff = Backoff {
        base_ms: 1_000,
        max_ms: 60_000,
    };

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let waits: Vec<i64> = (1..=8).map(|n| B.after(n)).collect();
        assert_eq!(waits, [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]);
        assert_eq!(B.after(1_000), 60_000);
    }

    #[test]
    fn retryable_failures_wait_until_attempts_run_out() {
        let ok = Ok(Delivery { status: Some(200) });
        let busy = Err(DeliveryError::Refused {
            status: Some(503),
            message: "busy".into(),
            retry: true,
        });
        let refused = Err(DeliveryError::Refused {
            status: Some(401),
            message: "bad signature".into(),
            retry: false,
        });
        assert_eq!(after_attempt(&ok, 3, 3, B, 10), (DeliveryStatus::Delivered, None));
        assert_eq!(
            after_attempt(&busy, 1, 3, B, 10),
            (DeliveryStatus::Retrying, Some(1_010))
        );
        assert_eq!(
            after_attempt(&busy, 2, 3, B, 10),
            (DeliveryStatus::Retrying, Some(2_010))
        );
        assert_eq!(after_attempt(&busy, 3, 3, B, 10), (DeliveryStatus::Failed, None));
        assert_eq!(after_attempt(&refused, 1, 3, B, 10), (DeliveryStatus::Failed, None));
        let silent = Err(DeliveryError::Unreachable("timed out".into()));
        assert_eq!(after_attempt(&silent, 1, 1, B, 10), (DeliveryStatus::Failed, None));
        assert!(DeliveryStatus::Failed.is_final() && !DeliveryStatus::Retrying.is_final());
    }

    #[test]
    fn redaction_removes_secrets_and_the_tokens_in_urls() {
        let url = "https://oapi.dingtalk.com/robot/send?access_token=T0KEN-abcdef";
        let text = format!(
            "echo: {url} token T0KEN-abcdef signed with SIGNING-SECRET; slack path /services/T000/B000/XXXXXXXXXXXX"
        );
        let out = redact(&text, Some(url), &["SIGNING-SECRET"]);
        assert!(
            !out.contains("T0KEN-abcdef") && !out.contains("SIGNING-SECRET"),
            "{out}"
        );
        assert!(out.starts_with("echo: *** token *** signed with ***"), "{out}");
        let slack = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX";
        let out = redact(
            "refused /services/T000/B000/XXXXXXXXXXXX and XXXXXXXXXXXX",
            Some(slack),
            &[],
        );
        assert!(!out.contains("XXXXXXXXXXXX"), "{out}");
        // Short and empty secrets do not blank out ordinary text.
        assert_eq!(redact("it was a 500", None, &["", "a"]), "it was a 500");
    }
}
