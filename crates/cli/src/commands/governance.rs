//! Release governance in the CLI: a deploy's approvals (`prism deploy
//! approvals ID`, `approve`, `reject`), an environment's approval policy
//! (`prism env policy`, `prism env set-policy`) and its deploy schedule
//! (`prism env schedule`, `prism env set-schedule --file`).

use prism_api::deploys::Deploy;
use prism_api::governance::{Approvals, PolicyView, ScheduleView, VoteInput};
use prism_domain::Role;
use serde_json::{json, Value};

use crate::context::Ctx;
use crate::error::{CliError, CliResult};
use crate::output::{line, list_table, opt, print_fields, print_table, time, word, yes_no};

/// `prism deploy approvals ID`: who approved, who rejected, who still may.
pub async fn approvals(ctx: &Ctx, id: i64) -> CliResult<()> {
    let answer = ctx.client.get(&["deploys", &id.to_string(), "approvals"], &[]).await?;
    super::show(ctx, &answer, |a: Approvals| {
        print_fields(&[
            ("Deploy", a.deploy.to_string()),
            ("State", a.state.to_string()),
            (
                "Policy",
                format!(
                    "{} approval(s) by {} ({}){}{}",
                    a.required,
                    roles(&a.policy.roles).join(" or "),
                    word(&a.source),
                    if a.policy.exclude_requester {
                        "; not the requester"
                    } else {
                        ""
                    },
                    if a.policy.exclude_creator {
                        "; not the release's creator"
                    } else {
                        ""
                    },
                ),
            ),
            (
                "Verdict",
                format!("{} ({} of {})", a.verdict, a.approvals.len(), a.required),
            ),
            ("Requested by", a.requested_by),
            ("Release creator", a.release_creator),
            (
                "May still approve",
                if a.may_still_approve.is_empty() {
                    "-".into()
                } else {
                    a.may_still_approve.join(", ")
                },
            ),
            (
                "You",
                if a.you_may_vote {
                    "may approve or reject".into()
                } else {
                    opt(a.why_not.as_deref())
                },
            ),
        ]);
        let mut t = list_table(&["VOTE", "BY", "AT", "COMMENT"]);
        for (kind, votes) in [("approved", a.approvals), ("rejected", a.rejections)] {
            for v in votes {
                t.add_row(vec![kind.to_owned(), v.username, time(v.at), v.comment]);
            }
        }
        print_table(&t);
    })
}

/// `prism deploy approve|reject ID --comment ...`
pub async fn vote(ctx: &Ctx, id: i64, approve: bool, comment: String) -> CliResult<()> {
    let verb = if approve { "approve" } else { "reject" };
    let answer = ctx
        .client
        .post_once(&["deploys", &id.to_string(), verb], &VoteInput { comment })
        .await?;
    super::show(ctx, &answer, |d: Deploy| {
        let done = if approve { "Approved" } else { "Rejected" };
        line(format!(
            "{done} deploy {} ({} of {} to {}); it is {} now.",
            d.id, d.release, d.application, d.environment, d.state
        ));
        if approve && d.state == prism_domain::DeployState::AwaitingReview {
            eprintln!("It needs more approvals: `prism deploy approvals {}` says whose.", d.id);
        }
    })
}

fn print_policy(p: PolicyView) {
    print_fields(&[
        ("Environment", p.environment),
        ("Project", opt(p.project.as_deref())),
        ("Set at", word(&p.source)),
        ("Approvals needed", p.policy.required.to_string()),
        ("From roles", roles(&p.policy.roles).join(", ")),
        ("Requester excluded", yes_no(p.policy.exclude_requester)),
        ("Creator excluded", yes_no(p.policy.exclude_creator)),
    ]);
}

/// `prism env policy ENV [--project P]`
pub async fn show_policy(ctx: &Ctx, env: &str, project: Option<String>) -> CliResult<()> {
    let q = [("project", project)];
    let answer = ctx.client.get(&["environments", env, "approval-policy"], &q).await?;
    super::show(ctx, &answer, print_policy)
}

/// `prism env set-policy ENV --required N --roles R,.. [--allow-creator] [--project P] | --clear`
pub async fn set_policy(
    ctx: &Ctx,
    env: &str,
    project: Option<String>,
    required: Option<u8>,
    roles: Vec<String>,
    allow_creator: bool,
    clear: bool,
) -> CliResult<()> {
    let policy = match (clear, required) {
        (true, _) => Value::Null,
        (false, Some(n)) => json!({"required": n, "roles": roles, "exclude_creator": !allow_creator}),
        (false, None) => return Err(CliError::usage("give --required N (and --roles), or --clear")),
    };
    let answer = ctx
        .client
        .put(
            &["environments", env, "approval-policy"],
            &json!({"project": project, "policy": policy}),
        )
        .await?;
    super::show(ctx, &answer, print_policy)
}

fn print_schedule(v: ScheduleView) {
    let now = if v.now.open {
        "open".to_owned()
    } else {
        format!(
            "closed ({}); opens {}",
            opt(v.now.closed_by.as_deref()),
            v.now.opens_local.as_deref().unwrap_or("not within a year")
        )
    };
    print_fields(&[
        ("Environment", v.environment),
        ("Deploying now", now),
        ("While closed", word(&v.schedule.when_closed)),
        ("Break-glass roles", roles(&v.schedule.break_glass_roles).join(", ")),
    ]);
    let mut t = list_table(&["KIND", "LABEL", "MINUTES", "RULE / REASON"]);
    for w in v.schedule.windows {
        t.add_row(vec![
            word(&w.kind),
            w.label,
            w.duration_minutes.to_string(),
            w.rule.replace('\n', " "),
        ]);
    }
    for f in v.schedule.freezes {
        t.add_row(vec![
            "freeze".into(),
            format!("{} - {}", time(f.from_ms), time(f.until_ms)),
            "-".into(),
            f.reason,
        ]);
    }
    print_table(&t);
}

/// `prism env schedule ENV`
pub async fn show_schedule(ctx: &Ctx, env: &str) -> CliResult<()> {
    let answer = ctx.client.get(&["environments", env, "schedule"], &[]).await?;
    super::show(ctx, &answer, print_schedule)
}

/// `prism env set-schedule ENV --file schedule.json` (the JSON the API takes).
pub async fn set_schedule(ctx: &Ctx, env: &str, file: &std::path::Path) -> CliResult<()> {
    let text =
        std::fs::read_to_string(file).map_err(|e| CliError::usage(format!("cannot read {}: {e}", file.display())))?;
    let body: Value =
        serde_json::from_str(&text).map_err(|e| CliError::usage(format!("{} is not JSON: {e}", file.display())))?;
    let answer = ctx.client.put(&["environments", env, "schedule"], &body).await?;
    super::show(ctx, &answer, print_schedule)
}

fn roles(roles: &[Role]) -> Vec<&'static str> {
    roles.iter().map(|r| r.as_str()).collect()
}
