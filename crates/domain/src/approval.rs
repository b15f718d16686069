//! Approval policies: how many people must approve a deploy, who may, and
//! who may not (separation of duties). [`ApprovalPolicy::judge`] is the one
//! place a deploy's approvals are counted; it is pure, so every rule is
//! tested here without a store.
//!
//! - An approval counts once per person (the store keeps one vote per
//!   person and deploy, so concurrent clicks cannot count twice).
//! - The person who requested the deploy never approves it; by default the
//!   release's creator does not either.
//! - A rejection by anyone who may vote ends the deploy.
//! - The existing single review is the policy "1 approval from an operator".

use serde::{Deserialize, Serialize};

use crate::{Role, RoleSet, ValidationError};

/// An environment's (or a project's override of it) approval policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalPolicy {
    /// Approvals a deploy needs (0: none, it is applied at once).
    pub required: u8,
    /// Roles whose holders may approve or reject (admins always may).
    pub roles: Vec<Role>,
    /// The release's creator may not approve its deploys either.
    #[serde(default = "yes")]
    pub exclude_creator: bool,
    /// The deploy's requester may not approve it. Always true for a policy
    /// someone set; false only in the implicit default that keeps the single
    /// review environments had before policies existed.
    #[serde(default = "yes")]
    pub exclude_requester: bool,
}

fn yes() -> bool {
    true
}

pub const MAX_REQUIRED: u8 = 10;

/// One person's vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub user: String,
    pub approve: bool,
}

/// Who asked for what.
#[derive(Debug, Clone, Copy)]
pub struct Parties<'a> {
    pub requester: &'a str,
    pub release_creator: &'a str,
}

/// Where a deploy's approval stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalState {
    /// Enough approvals: apply it.
    Approved { by: Vec<String> },
    /// More are needed.
    Pending { have: u8, need: u8 },
    /// Someone who may vote rejected it.
    Rejected { by: String },
}

/// Why a person may not vote on a deploy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoteRefused {
    #[error("you requested this deploy; someone else must approve it")]
    Requester,
    #[error("you created this release; someone else must approve its deploy")]
    Creator,
    #[error("approving needs the role {0}")]
    Role(String),
    #[error("you have voted on this deploy already")]
    AlreadyVoted,
}

impl ApprovalPolicy {
    /// Today's single review: one operator.
    pub fn single_operator() -> Self {
        Self::implicit(true, vec![Role::Operator])
    }

    pub fn none() -> Self {
        Self::implicit(false, vec![Role::Operator])
    }

    /// The policy of an environment nobody set one for: its `requires_review`
    /// flag as one approval by a holder of its deploy roles (the requester
    /// included, as before policies existed).
    pub fn implicit(requires_review: bool, roles: Vec<Role>) -> Self {
        Self {
            required: u8::from(requires_review),
            roles,
            exclude_creator: false,
            exclude_requester: false,
        }
    }

    pub fn validate(&self, field: &str) -> Result<(), ValidationError> {
        if self.required > MAX_REQUIRED {
            return Err(ValidationError::new(
                format!("{field}.required"),
                format!("must be 0 to {MAX_REQUIRED}"),
            ));
        }
        if self.required > 0 && self.roles.is_empty() {
            return Err(ValidationError::new(
                format!("{field}.roles"),
                "name at least one role that may approve",
            ));
        }
        Ok(())
    }

    pub fn roles_text(&self) -> String {
        self.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(" or ")
    }

    /// Whether `user` (holding `roles` in the project) may vote now.
    pub fn may_vote(
        &self,
        user: &str,
        roles: RoleSet,
        parties: Parties<'_>,
        votes: &[Vote],
    ) -> Result<(), VoteRefused> {
        if self.exclude_requester && user == parties.requester {
            return Err(VoteRefused::Requester);
        }
        if self.exclude_creator && user == parties.release_creator {
            return Err(VoteRefused::Creator);
        }
        if !roles.has_any(&self.roles) {
            return Err(VoteRefused::Role(self.roles_text()));
        }
        if votes.iter().any(|v| v.user == user) {
            return Err(VoteRefused::AlreadyVoted);
        }
        Ok(())
    }

    /// Counts `votes` (in the order they were cast). Votes by people who may
    /// not vote (a requester's, stored before a rule changed) never count.
    pub fn judge(&self, parties: Parties<'_>, votes: &[Vote], eligible: impl Fn(&str) -> bool) -> ApprovalState {
        let mut by: Vec<String> = Vec::new();
        for v in votes {
            let excluded = (self.exclude_requester && v.user == parties.requester)
                || (self.exclude_creator && v.user == parties.release_creator);
            if excluded || !eligible(&v.user) {
                continue;
            }
            if !v.approve {
                return ApprovalState::Rejected { by: v.user.clone() };
            }
            if !by.contains(&v.user) {
                by.push(v.user.clone());
            }
        }
        let have = by.len().min(u8::MAX as usize) as u8;
        if have >= self.required {
            ApprovalState::Approved { by }
        } else {
            ApprovalState::Pending {
                have,
                need: self.required,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_of_three() -> ApprovalPolicy {
        ApprovalPolicy {
            required: 2,
            roles: vec![Role::Operator],
            exclude_creator: true,
            exclude_requester: true,
        }
    }

    const P: Parties<'static> = Parties {
        requester: "rita",
        release_creator: "dev",
    };

    fn yes(u: &str) -> Vote {
        Vote {
            user: u.into(),
            approve: true,
        }
    }

    fn no(u: &str) -> Vote {
        Vote {
            user: u.into(),
            approve: false,
        }
    }

    fn anyone(_: &str) -> bool {
        true
    }

    fn operator() -> RoleSet {
        RoleSet::of([Role::Operator])
    }

    #[test]
    fn two_of_three_needs_two_different_people() {
        let p = two_of_three();
        assert_eq!(p.judge(P, &[], anyone), ApprovalState::Pending { have: 0, need: 2 });
        assert_eq!(
            p.judge(P, &[yes("ann")], anyone),
            ApprovalState::Pending { have: 1, need: 2 }
        );
        // The same person twice (two tabs, a retried request) counts once.
        assert_eq!(
            p.judge(P, &[yes("ann"), yes("ann")], anyone),
            ApprovalState::Pending { have: 1, need: 2 }
        );
        assert_eq!(
            p.judge(P, &[yes("ann"), yes("bob")], anyone),
            ApprovalState::Approved {
                by: vec!["ann".into(), "bob".into()]
            }
        );
    }

    #[test]
    fn requester_and_creator_never_count() {
        let p = two_of_three();
        assert_eq!(
            p.judge(P, &[yes("rita"), yes("dev"), yes("ann")], anyone),
            ApprovalState::Pending { have: 1, need: 2 }
        );
        assert_eq!(p.may_vote("rita", operator(), P, &[]), Err(VoteRefused::Requester));
        assert_eq!(p.may_vote("dev", operator(), P, &[]), Err(VoteRefused::Creator));
        let lenient = ApprovalPolicy {
            exclude_creator: false,
            ..two_of_three()
        };
        assert_eq!(lenient.may_vote("dev", operator(), P, &[]), Ok(()));
        // The requester is excluded by any policy someone set.
        assert_eq!(
            lenient.may_vote("rita", operator(), P, &[]),
            Err(VoteRefused::Requester)
        );
        // Only the implicit single review lets them approve (as before policies).
        assert_eq!(
            ApprovalPolicy::single_operator().may_vote("rita", operator(), P, &[]),
            Ok(())
        );
        let set: ApprovalPolicy = serde_json::from_str(r#"{"required":1,"roles":["operator"]}"#).unwrap();
        assert!(set.exclude_requester && set.exclude_creator);
    }

    #[test]
    fn a_rejection_by_anyone_eligible_ends_it() {
        let p = two_of_three();
        assert_eq!(
            p.judge(P, &[yes("ann"), no("bob"), yes("cy")], anyone),
            ApprovalState::Rejected { by: "bob".into() }
        );
        // A rejection from someone who may not vote is ignored.
        assert_eq!(
            p.judge(P, &[no("rita"), yes("ann"), yes("bob")], anyone),
            ApprovalState::Approved {
                by: vec!["ann".into(), "bob".into()]
            }
        );
    }

    #[test]
    fn roles_decide_who_may_vote_and_whose_votes_count() {
        let p = two_of_three();
        let tester = RoleSet::of([Role::Tester]);
        assert!(matches!(p.may_vote("ann", tester, P, &[]), Err(VoteRefused::Role(r)) if r == "operator"));
        assert_eq!(p.may_vote("ann", RoleSet::admin(), P, &[]), Ok(()));
        assert_eq!(
            p.may_vote("ann", operator(), P, &[yes("ann")]),
            Err(VoteRefused::AlreadyVoted)
        );
        // Someone whose role was taken away after voting no longer counts.
        let still_operator = |u: &str| u != "bob";
        assert_eq!(
            p.judge(P, &[yes("ann"), yes("bob")], still_operator),
            ApprovalState::Pending { have: 1, need: 2 }
        );
    }

    #[test]
    fn zero_required_is_approved_at_once_and_limits_are_checked() {
        assert_eq!(
            ApprovalPolicy::none().judge(P, &[], anyone),
            ApprovalState::Approved { by: vec![] }
        );
        assert_eq!(
            ApprovalPolicy::single_operator().judge(P, &[yes("ann")], anyone),
            ApprovalState::Approved { by: vec!["ann".into()] }
        );
        let too_many = ApprovalPolicy {
            required: 11,
            ..two_of_three()
        };
        assert_eq!(too_many.validate("approval").unwrap_err().field, "approval.required");
        let nobody = ApprovalPolicy {
            roles: vec![],
            ..two_of_three()
        };
        assert_eq!(nobody.validate("approval").unwrap_err().field, "approval.roles");
    }
}
