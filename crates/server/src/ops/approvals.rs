//! Approval policies and the votes on a deploy. An environment has a policy
//! (how many approvals, from which roles, whether the release's creator is
//! excluded), a project may override it, and an environment nobody set one
//! for keeps the single review of its `requires_review` flag. Each approval
//! or rejection is one vote per person (the store's key), recorded with who,
//! when and a comment; the domain's `ApprovalPolicy::judge` counts them.
//! When the policy is met the deploy goes on (to applying, or to wait for
//! its window); a rejection by anyone who may vote ends it.

use std::collections::HashSet;

use prism_api::governance::{Approvals, PolicyView, SetPolicy};
use prism_domain::approval::{ApprovalPolicy, ApprovalState, Parties, Vote, VoteRefused};
use prism_domain::release::Action;
use prism_domain::{DeployEvent as Step, DeployState, ReleaseState, RoleSet};
use prism_store::deploys::{self, Deploy};
use prism_store::governance::{self, PolicySource, VoteRecord, ENVIRONMENT_WIDE};
use prism_store::{audit, environments, projects, releases, users, AnyConnection};
use serde_json::json;

use super::governance_events::{emit, GovernanceEvent};
use super::transitions::{transition_in, Move, Who};
use super::windows::{self, Gate};
use super::{access, Ctx, OpError, OpResult};
use crate::auth::Caller;
use crate::jobs::deploy::enqueue;
use crate::wire::ToApi;

/// The policy for an environment (and a project's deploys there, when named).
pub async fn get_policy(ctx: &Ctx, caller: &Caller, env: &str, project: Option<&str>) -> OpResult<PolicyView> {
    let mut c = ctx.store.conn().await?;
    let e = environments::by_name(&mut c, env).await?;
    let project_id = match project {
        Some(p) => access::project(&mut c, caller, p).await?.id,
        None => ENVIRONMENT_WIDE,
    };
    let (policy, source) = governance::effective_policy(&mut c, e.id, &e.policy, project_id).await?;
    Ok(PolicyView {
        environment: e.name,
        project: project.map(str::to_owned),
        policy,
        source: source.to_api(),
    })
}

/// Sets (or removes) an environment's policy or a project's override (admins).
pub async fn set_policy(ctx: &Ctx, caller: &Caller, env: &str, req: SetPolicy) -> OpResult<PolicyView> {
    access::require_admin(caller)?;
    if let Some(p) = &req.policy {
        p.validate("policy")?;
        if p.roles.is_empty() {
            return Err(OpError::invalid(
                "policy.roles",
                "name at least one role that may approve",
            ));
        }
        if !p.exclude_requester {
            return Err(OpError::invalid(
                "policy.exclude_requester",
                "the person who requested a deploy never approves it",
            ));
        }
    }
    let mut tx = ctx.store.begin().await?;
    let e = environments::by_name(&mut tx, env).await?;
    let project_id = match &req.project {
        Some(p) => super::referenced("project", projects::by_name(&mut tx, p).await)?.id,
        None => ENVIRONMENT_WIDE,
    };
    governance::set_policy(&mut tx, e.id, project_id, req.policy.as_ref(), &caller.user.username).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "environment.approval_policy",
        "environment",
        &e.name,
        json!({"project": req.project, "policy": req.policy}),
    )
    .await?;
    tx.commit().await?;
    get_policy(ctx, caller, env, req.project.as_deref()).await
}

struct Context {
    deploy: Deploy,
    policy: ApprovalPolicy,
    source: PolicySource,
    creator: String,
    votes: Vec<VoteRecord>,
    /// Voters who still hold a role that may vote.
    eligible: HashSet<String>,
}

async fn roles_of(c: &mut AnyConnection, project_id: i64, username: &str) -> OpResult<RoleSet> {
    Ok(match users::find_by_name(c, username).await? {
        Some(u) if !u.is_disabled() => projects::roles(c, project_id, u.id, u.admin()).await?,
        _ => RoleSet::none(),
    })
}

async fn context(c: &mut AnyConnection, d: Deploy) -> OpResult<Context> {
    let env = environments::get(c, d.env_id).await?;
    let (policy, source) = governance::effective_policy(c, env.id, &env.policy, d.project_id).await?;
    let creator = releases::get(c, d.release).await?.creator;
    let votes = governance::votes(c, d.id).await?;
    let mut eligible = HashSet::new();
    for v in &votes {
        if roles_of(c, d.project_id, &v.username).await?.has_any(&policy.roles) {
            eligible.insert(v.username.clone());
        }
    }
    Ok(Context {
        deploy: d,
        policy,
        source,
        creator,
        votes,
        eligible,
    })
}

impl Context {
    fn parties(&self) -> Parties<'_> {
        Parties {
            requester: &self.deploy.requested_by,
            release_creator: &self.creator,
        }
    }

    fn domain_votes(&self) -> Vec<Vote> {
        self.votes
            .iter()
            .map(|v| Vote {
                user: v.username.clone(),
                approve: v.approves(),
            })
            .collect()
    }

    fn judge(&self) -> ApprovalState {
        self.policy
            .judge(self.parties(), &self.domain_votes(), |u| self.eligible.contains(u))
    }
}

fn refusal(r: VoteRefused) -> OpError {
    match r {
        VoteRefused::AlreadyVoted => OpError::conflict_as("already_voted", r.to_string()),
        other => OpError::forbidden(other.to_string()),
    }
}

/// A deploy's approvals as the review page and `prism deploy approvals` show them.
pub async fn list(ctx: &Ctx, caller: &Caller, id: &str) -> OpResult<Approvals> {
    let mut c = ctx.store.conn().await?;
    let (d, roles) = access::deploy(&mut c, caller, id).await?;
    let cx = context(&mut c, d).await?;
    let votes = cx.domain_votes();
    let mine = cx.policy.may_vote(&caller.user.username, roles, cx.parties(), &votes);
    let open = cx.deploy.state == DeployState::AwaitingReview;
    let mut may_still_approve = vec![];
    if open {
        let mut candidates: Vec<String> = projects::members(&mut c, cx.deploy.project_id)
            .await?
            .into_iter()
            .map(|m| m.username)
            .collect();
        candidates.extend(
            users::list(&mut c)
                .await?
                .into_iter()
                .filter(|u| u.admin() && !u.is_disabled())
                .map(|u| u.username),
        );
        candidates.sort();
        candidates.dedup();
        for u in candidates {
            let r = roles_of(&mut c, cx.deploy.project_id, &u).await?;
            if cx.policy.may_vote(&u, r, cx.parties(), &votes).is_ok() {
                may_still_approve.push(u);
            }
        }
    }
    let (verdict, approvals, rejections) = {
        let counted = |approve: bool| -> Vec<VoteRecord> {
            cx.votes.iter().filter(|v| v.approves() == approve).cloned().collect()
        };
        let verdict = match cx.judge() {
            ApprovalState::Approved { .. } => "approved",
            ApprovalState::Pending { .. } => "pending",
            ApprovalState::Rejected { .. } => "rejected",
        };
        (verdict, counted(true), counted(false))
    };
    Ok(Approvals {
        deploy: cx.deploy.id,
        state: cx.deploy.state,
        required: cx.policy.required,
        verdict: verdict.into(),
        approvals: approvals.to_api(),
        rejections: rejections.to_api(),
        may_still_approve,
        you_may_vote: open && mine.is_ok(),
        why_not: if !open {
            Some(format!("the deploy is {}, not awaiting review", cx.deploy.state))
        } else {
            mine.err().map(|e| e.to_string())
        },
        requested_by: cx.deploy.requested_by.clone(),
        release_creator: cx.creator.clone(),
        policy: cx.policy,
        source: cx.source.to_api(),
    })
}

/// Approves (or rejects) a deploy awaiting review, as the caller. The
/// server checks the caller's role and separation of duties, records the
/// vote, and when the policy is met moves the deploy on; a rejection ends it.
pub async fn vote(ctx: &Ctx, caller: &Caller, id: &str, approve: bool, comment: &str) -> OpResult<Deploy> {
    if comment.len() > 5000 {
        return Err(OpError::invalid("comment", "must be at most 5000 characters"));
    }
    if !approve && comment.trim().is_empty() {
        return Err(OpError::invalid("comment", "say why the deploy is rejected"));
    }
    let user = caller.user.username.as_str();
    let mut tx = ctx.store.begin().await?;
    crate::idempotency::claim(&mut tx, caller).await?;
    if let Ok(n) = id.parse::<i64>() {
        governance::lock_deploy(&mut tx, n).await?;
    }
    let (d, roles) = access::deploy(&mut tx, caller, id).await?;
    if d.state != DeployState::AwaitingReview {
        return Err(OpError::conflict_as(
            "invalid_transition",
            format!("deploy {} is {}, not awaiting review", d.id, d.state),
        )
        .field("state"));
    }
    let cx = context(&mut tx, d).await?;
    let env_name = cx.deploy.environment.clone();
    cx.policy
        .may_vote(user, roles, cx.parties(), &cx.domain_votes())
        .map_err(|e| match e {
            VoteRefused::Role(r) => OpError::forbidden(format!("approving a deploy to {env_name} needs the role {r}")),
            other => refusal(other),
        })?;
    if !governance::cast_vote(&mut tx, cx.deploy.id, user, approve, comment).await? {
        return Err(refusal(VoteRefused::AlreadyVoted));
    }
    let verb = if approve { "approved" } else { "rejected" };
    deploys::event(
        &mut tx,
        cx.deploy.id,
        "review",
        &format!("{verb} by {user}: {comment}"),
        json!({"decision": if approve { "approve" } else { "reject" }}),
    )
    .await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        &format!("deploy.{verb}"),
        "deploy",
        &cx.deploy.id.to_string(),
        json!({"comment": comment}),
    )
    .await?;
    let cx = context(&mut tx, cx.deploy).await?;
    let d = &cx.deploy;
    match cx.judge() {
        ApprovalState::Pending { have, need } => {
            deploys::event(
                &mut tx,
                d.id,
                "review",
                &format!("{have} of {need} approvals; waiting for {} more", need - have),
                json!({"have": have, "need": need}),
            )
            .await?;
        }
        ApprovalState::Approved { by } => {
            // Approving applies this release: it must still be the one deploying here.
            let rel = releases::get(&mut tx, d.release).await?;
            if rel.parsed_state != ReleaseState::Deploying(d.env_id) {
                return Err(OpError::conflict_as(
                    "invalid_transition",
                    format!("release {} is {} now; reject this deploy instead", rel.id, rel.state),
                )
                .field("release"));
            }
            let gate = windows::gate(&mut tx, &ctx.clock, d).await?;
            let step = match gate {
                Gate::Apply => Step::Approve,
                Gate::Wait(_) => Step::Wait,
            };
            if !deploys::advance(&mut tx, d.id, DeployState::AwaitingReview, step).await? {
                return Err(OpError::conflict("the deploy was reviewed meanwhile"));
            }
            deploys::set_review(&mut tx, d.id, user, comment).await?;
            deploys::event(
                &mut tx,
                d.id,
                "review",
                &format!("approved by {}", by.join(", ")),
                json!({"approved_by": by}),
            )
            .await?;
            match gate {
                Gate::Apply => enqueue(&mut tx, d.id, DeployState::Applying).await?,
                Gate::Wait(open) => windows::park(&mut tx, &ctx.clock, d, &open).await?,
            }
        }
        ApprovalState::Rejected { by } => {
            if !deploys::advance(&mut tx, d.id, DeployState::AwaitingReview, Step::Reject).await? {
                return Err(OpError::conflict("the deploy was reviewed meanwhile"));
            }
            deploys::set_review(&mut tx, d.id, &by, comment).await?;
            transition_in(
                &mut tx,
                &Who::Engine("review"),
                d.release,
                Move {
                    action: Action::DeployFailed,
                    note: &format!("rejected by {by}: {comment}"),
                    build_info: None,
                },
            )
            .await?;
            emit(
                &mut tx,
                &caller.origin(),
                GovernanceEvent::DeployRejected {
                    deploy: d.id,
                    by: &by,
                    comment,
                },
            )
            .await?;
        }
    }
    let d = super::deploys::shown(deploys::get(&mut tx, d.id).await?);
    crate::idempotency::complete(&mut tx, caller, crate::idempotency::Answer::Ok, &d.clone().to_api()).await?;
    tx.commit().await?;
    ctx.job_wakeup.notify_one();
    Ok(d)
}
