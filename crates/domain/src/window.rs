//! When deploying into an environment is allowed: recurring allow and deny
//! windows written as calendars write them (RFC 5545: `DTSTART;TZID=...`
//! and an `RRULE`), in a named time zone so daylight-saving changes fall
//! where people expect, plus one-off freezes with a reason.
//!
//! [`Schedule::verdict`] says, for an instant, whether a deploy may start and
//! if not why and when it next may. Everything is pure: the clock is an
//! argument, so the tests pin it.
//!
//! Rules are checked once at the edge ([`Schedule::validate`]): a time zone
//! is required (no server-local time), and only DAILY, WEEKLY, MONTHLY and
//! YEARLY recurrences from 2000 on are accepted, which keeps every
//! evaluation to a few thousand steps whatever a user writes.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rrule::{RRuleSet, Tz};
use serde::{Deserialize, Serialize};

use crate::{Role, RoleSet, ValidationError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    /// Deploys may start only inside an allow window (when any is set).
    Allow,
    /// No deploy starts inside a deny window.
    Deny,
}

/// A recurring window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployWindow {
    pub kind: WindowKind,
    /// E.g. "DTSTART;TZID=Asia/Shanghai:20260105T220000\nRRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH".
    pub rule: String,
    /// How long each occurrence lasts.
    pub duration_minutes: u32,
    #[serde(default)]
    pub label: String,
}

/// A one-off freeze (holidays, an incident).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Freeze {
    pub from_ms: i64,
    pub until_ms: i64,
    pub reason: String,
}

/// What happens to a deploy requested while deploying is closed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WhenClosed {
    /// It waits and starts when deploying opens.
    #[default]
    Queue,
    /// It is refused.
    Refuse,
}

/// An environment's deploy schedule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    #[serde(default)]
    pub windows: Vec<DeployWindow>,
    #[serde(default)]
    pub freezes: Vec<Freeze>,
    #[serde(default)]
    pub when_closed: WhenClosed,
    /// Roles that may deploy during a freeze or outside the windows, with a
    /// reason (break-glass). API tokens never may.
    #[serde(default)]
    pub break_glass_roles: Vec<Role>,
}

/// Why deploying is closed at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClosedBy {
    OutsideAllowWindows,
    DenyWindow { label: String },
    Freeze { reason: String, until_ms: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Open,
    Closed {
        by: ClosedBy,
        /// When deploying opens next (within a year), as UTC milliseconds,
        /// and the same instant in the zone of the window that opens it.
        next_open: Option<NextOpen>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextOpen {
    pub at_ms: i64,
    /// "2026-01-05 22:00 Asia/Shanghai"
    pub local: String,
}

const MIN_YEAR: i32 = 2000;
const MAX_DURATION_MINUTES: u32 = 31 * 24 * 60;
const HORIZON_DAYS: i64 = 366;
const MAX_WINDOWS: usize = 50;
const MAX_FREEZES: usize = 200;

fn parse_rule(field: &str, rule: &str) -> Result<RRuleSet, ValidationError> {
    let bad = |m: String| ValidationError::new(field, m);
    if rule.len() > 2000 {
        return Err(bad("must be at most 2000 characters".into()));
    }
    if !rule.contains("TZID=") && !rule.contains("Z\n") && !rule.trim_end().ends_with('Z') {
        return Err(bad(
            "DTSTART needs a time zone (DTSTART;TZID=Area/City:...) or UTC (...Z)".into(),
        ));
    }
    let upper = rule.to_ascii_uppercase();
    let freq = upper
        .split(['\n', ';', ':'])
        .find_map(|p| p.trim().strip_prefix("FREQ="))
        .ok_or_else(|| bad("needs an RRULE with FREQ".into()))?;
    if !matches!(freq, "DAILY" | "WEEKLY" | "MONTHLY" | "YEARLY") {
        return Err(bad(format!(
            "FREQ={freq} is not allowed (DAILY, WEEKLY, MONTHLY or YEARLY)"
        )));
    }
    let set: RRuleSet = rule.parse().map_err(|e| bad(format!("{e}")))?;
    if let Tz::Local(_) = set.get_dt_start().timezone() {
        return Err(bad("DTSTART needs a named time zone".into()));
    }
    use chrono::Datelike;
    if set.get_dt_start().year() < MIN_YEAR {
        return Err(bad(format!("DTSTART must be in {MIN_YEAR} or later")));
    }
    Ok(set)
}

fn utc(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Occurrence starts of `set` in `[from, to]`, at most `limit`.
fn starts(set: &RRuleSet, from: DateTime<Utc>, to: DateTime<Utc>, limit: u16) -> Vec<DateTime<Tz>> {
    let tz = set.get_dt_start().timezone();
    set.clone()
        .after(from.with_timezone(&tz))
        .before(to.with_timezone(&tz))
        .all(limit)
        .dates
}

impl Schedule {
    pub fn validate(&self, field: &str) -> Result<(), ValidationError> {
        if self.windows.len() > MAX_WINDOWS {
            return Err(ValidationError::new(
                format!("{field}.windows"),
                format!("at most {MAX_WINDOWS}"),
            ));
        }
        if self.freezes.len() > MAX_FREEZES {
            return Err(ValidationError::new(
                format!("{field}.freezes"),
                format!("at most {MAX_FREEZES}"),
            ));
        }
        for (i, w) in self.windows.iter().enumerate() {
            parse_rule(&format!("{field}.windows[{i}].rule"), &w.rule)?;
            if !(1..=MAX_DURATION_MINUTES).contains(&w.duration_minutes) {
                return Err(ValidationError::new(
                    format!("{field}.windows[{i}].duration_minutes"),
                    format!("must be 1 to {MAX_DURATION_MINUTES}"),
                ));
            }
            if w.label.len() > 200 {
                return Err(ValidationError::new(
                    format!("{field}.windows[{i}].label"),
                    "at most 200 characters",
                ));
            }
        }
        for (i, f) in self.freezes.iter().enumerate() {
            if f.until_ms <= f.from_ms {
                return Err(ValidationError::new(
                    format!("{field}.freezes[{i}].until_ms"),
                    "must be after from_ms",
                ));
            }
            if f.reason.trim().is_empty() || f.reason.len() > 500 {
                return Err(ValidationError::new(
                    format!("{field}.freezes[{i}].reason"),
                    "say why (1 to 500 characters)",
                ));
            }
        }
        Ok(())
    }

    /// Whether a deploy may start at `now_ms`. Rules are assumed validated;
    /// one that no longer parses counts as closed (never silently open).
    pub fn verdict(&self, now_ms: i64) -> Verdict {
        match self.closed_by(now_ms) {
            None => Verdict::Open,
            Some(by) => Verdict::Closed {
                by,
                next_open: self.next_open(now_ms),
            },
        }
    }

    fn in_window(&self, set: &RRuleSet, w: &DeployWindow, at: DateTime<Utc>) -> bool {
        let len = Duration::minutes(i64::from(w.duration_minutes));
        // An occurrence that started within the last `duration` covers `at`.
        !starts(set, at - len + Duration::milliseconds(1), at, 1).is_empty()
    }

    fn closed_by(&self, now_ms: i64) -> Option<ClosedBy> {
        if let Some(f) = self.freezes.iter().find(|f| f.from_ms <= now_ms && now_ms < f.until_ms) {
            return Some(ClosedBy::Freeze {
                reason: f.reason.clone(),
                until_ms: f.until_ms,
            });
        }
        let at = utc(now_ms);
        let mut any_allow = false;
        let mut allowed = false;
        for w in &self.windows {
            let Ok(set) = parse_rule("rule", &w.rule) else {
                return Some(ClosedBy::DenyWindow {
                    label: format!("unreadable window {:?}", w.label),
                });
            };
            match w.kind {
                WindowKind::Deny if self.in_window(&set, w, at) => {
                    return Some(ClosedBy::DenyWindow { label: w.label.clone() })
                }
                WindowKind::Deny => {}
                WindowKind::Allow => {
                    any_allow = true;
                    allowed = allowed || self.in_window(&set, w, at);
                }
            }
        }
        (any_allow && !allowed).then_some(ClosedBy::OutsideAllowWindows)
    }

    /// The first instant after `now_ms` at which deploying is open: it is
    /// one of the moments something changes (an allow window starts, a deny
    /// window or a freeze ends), so only those are tried.
    fn next_open(&self, now_ms: i64) -> Option<NextOpen> {
        let now = utc(now_ms);
        let horizon = now + Duration::days(HORIZON_DAYS);
        let mut candidates: Vec<(DateTime<Utc>, Tz)> = Vec::new();
        for f in &self.freezes {
            if f.until_ms > now_ms {
                candidates.push((utc(f.until_ms), Tz::UTC));
            }
        }
        for w in &self.windows {
            let Ok(set) = parse_rule("rule", &w.rule) else { continue };
            let tz = set.get_dt_start().timezone();
            let len = Duration::minutes(i64::from(w.duration_minutes));
            for s in starts(&set, now - len, horizon, 400) {
                let s = s.with_timezone(&Utc);
                match w.kind {
                    WindowKind::Allow if s > now => candidates.push((s, tz)),
                    WindowKind::Deny if s + len > now => candidates.push((s + len, tz)),
                    _ => {}
                }
            }
        }
        candidates.sort_by_key(|(t, _)| *t);
        candidates
            .into_iter()
            .find(|(t, _)| self.closed_by(t.timestamp_millis()).is_none())
            .map(|(t, tz)| NextOpen {
                at_ms: t.timestamp_millis(),
                local: format!("{} {}", t.with_timezone(&tz).format("%Y-%m-%d %H:%M"), tz.name()),
            })
    }

    /// Whether a person holding `roles` may deploy while it is closed, with a
    /// reason. API tokens never break glass.
    pub fn may_break_glass(&self, roles: RoleSet, via_token: bool) -> bool {
        !via_token && (roles.is_admin() || roles.has_any(&self.break_glass_roles))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_millis()
    }

    fn evenings_shanghai() -> Schedule {
        Schedule {
            windows: vec![DeployWindow {
                kind: WindowKind::Allow,
                rule: "DTSTART;TZID=Asia/Shanghai:20260105T220000\nRRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH".into(),
                duration_minutes: 120,
                label: "weeknight window".into(),
            }],
            ..Schedule::default()
        }
    }

    #[test]
    fn a_deploy_outside_the_allow_window_waits_for_it() {
        let s = evenings_shanghai();
        s.validate("schedule").unwrap();
        // Tuesday 2026-12-08 15:00 in Shanghai = 07:00 UTC: closed.
        let v = s.verdict(ms("2026-12-08T07:00:00Z"));
        let Verdict::Closed { by, next_open } = v else {
            panic!("{v:?}")
        };
        assert_eq!(by, ClosedBy::OutsideAllowWindows);
        let next = next_open.unwrap();
        assert_eq!(next.local, "2026-12-08 22:00 Asia/Shanghai");
        assert_eq!(next.at_ms, ms("2026-12-08T14:00:00Z"));
        // Inside: 23:30 Shanghai.
        assert_eq!(s.verdict(ms("2026-12-08T15:30:00Z")), Verdict::Open);
        // The end is exclusive: 00:00 Shanghai is closed again.
        assert!(matches!(s.verdict(ms("2026-12-08T16:00:00Z")), Verdict::Closed { .. }));
        // Friday night: the next window is Monday's.
        let Verdict::Closed { next_open, .. } = s.verdict(ms("2026-12-11T15:00:00Z")) else {
            panic!()
        };
        assert_eq!(next_open.unwrap().local, "2026-12-14 22:00 Asia/Shanghai");
    }

    #[test]
    fn deny_windows_and_freezes_win_over_allow_windows() {
        let mut s = evenings_shanghai();
        s.windows.push(DeployWindow {
            kind: WindowKind::Deny,
            rule: "DTSTART;TZID=Asia/Shanghai:20260105T223000\nRRULE:FREQ=DAILY".into(),
            duration_minutes: 30,
            label: "nightly batch".into(),
        });
        assert_eq!(
            s.verdict(ms("2026-12-08T14:45:00Z")),
            Verdict::Closed {
                by: ClosedBy::DenyWindow {
                    label: "nightly batch".into()
                },
                next_open: Some(NextOpen {
                    at_ms: ms("2026-12-08T15:00:00Z"),
                    local: "2026-12-08 23:00 Asia/Shanghai".into()
                })
            }
        );
        s.freezes.push(Freeze {
            from_ms: ms("2026-12-08T00:00:00Z"),
            until_ms: ms("2026-12-10T00:00:00Z"),
            reason: "year-end settlement".into(),
        });
        let Verdict::Closed { by, next_open } = s.verdict(ms("2026-12-08T15:30:00Z")) else {
            panic!()
        };
        assert!(matches!(by, ClosedBy::Freeze { ref reason, .. } if reason == "year-end settlement"));
        // After the freeze, the next allow window (Thursday 22:00).
        assert_eq!(next_open.unwrap().local, "2026-12-10 22:00 Asia/Shanghai");
    }

    #[test]
    fn windows_follow_daylight_saving_in_their_zone() {
        // Every day 09:00 in Berlin: 08:00 UTC in winter, 07:00 UTC in summer.
        let s = Schedule {
            windows: vec![DeployWindow {
                kind: WindowKind::Allow,
                rule: "DTSTART;TZID=Europe/Berlin:20260101T090000\nRRULE:FREQ=DAILY".into(),
                duration_minutes: 60,
                label: String::new(),
            }],
            ..Schedule::default()
        };
        assert_eq!(s.verdict(ms("2026-03-28T08:30:00Z")), Verdict::Open);
        assert!(matches!(s.verdict(ms("2026-03-28T07:30:00Z")), Verdict::Closed { .. }));
        // Clocks went forward on 2026-03-29: now 07:00-08:00 UTC.
        assert_eq!(s.verdict(ms("2026-03-30T07:30:00Z")), Verdict::Open);
        assert!(matches!(s.verdict(ms("2026-03-30T08:30:00Z")), Verdict::Closed { .. }));
        let Verdict::Closed { next_open, .. } = s.verdict(ms("2026-03-28T10:00:00Z")) else {
            panic!()
        };
        let next = next_open.unwrap();
        assert_eq!(next.local, "2026-03-29 09:00 Europe/Berlin");
        assert_eq!(next.at_ms, ms("2026-03-29T07:00:00Z"));
    }

    #[test]
    fn no_windows_means_always_open() {
        assert_eq!(Schedule::default().verdict(ms("2026-12-08T07:00:00Z")), Verdict::Open);
    }

    #[test]
    fn rules_are_checked_at_the_edge_naming_the_field() {
        let mut s = evenings_shanghai();
        s.windows[0].rule = "DTSTART:20260105T220000\nRRULE:FREQ=DAILY".into();
        assert_eq!(s.validate("schedule").unwrap_err().field, "schedule.windows[0].rule");
        s.windows[0].rule = "DTSTART:20260105T220000Z\nRRULE:FREQ=SECONDLY".into();
        assert!(s.validate("schedule").unwrap_err().message.contains("SECONDLY"));
        s.windows[0].rule = "DTSTART;TZID=Mars/Olympus:20260105T220000\nRRULE:FREQ=DAILY".into();
        assert_eq!(s.validate("schedule").unwrap_err().field, "schedule.windows[0].rule");
        s.windows[0].rule = "DTSTART;TZID=Asia/Shanghai:18000105T220000\nRRULE:FREQ=DAILY".into();
        assert!(s.validate("schedule").unwrap_err().message.contains("2000"));
        let mut s = evenings_shanghai();
        s.windows[0].duration_minutes = 0;
        assert_eq!(
            s.validate("schedule").unwrap_err().field,
            "schedule.windows[0].duration_minutes"
        );
        let mut s = Schedule::default();
        s.freezes.push(Freeze {
            from_ms: 10,
            until_ms: 5,
            reason: "x".into(),
        });
        assert_eq!(
            s.validate("schedule").unwrap_err().field,
            "schedule.freezes[0].until_ms"
        );
        s.freezes[0] = Freeze {
            from_ms: 1,
            until_ms: 5,
            reason: " ".into(),
        };
        assert_eq!(s.validate("schedule").unwrap_err().field, "schedule.freezes[0].reason");
    }

    #[test]
    fn break_glass_needs_a_named_role_and_never_a_token() {
        let s = Schedule {
            break_glass_roles: vec![Role::Operator],
            ..Schedule::default()
        };
        assert!(s.may_break_glass(RoleSet::of([Role::Operator]), false));
        assert!(!s.may_break_glass(RoleSet::of([Role::Operator]), true));
        assert!(!s.may_break_glass(RoleSet::of([Role::Developer]), false));
        assert!(s.may_break_glass(RoleSet::admin(), false));
        assert!(!s.may_break_glass(RoleSet::admin(), true));
    }
}
