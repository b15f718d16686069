//! `prism deploy ...`: deploy a release into an environment and follow it,
//! look at past deploys, review, roll back and check for drift.
//!
//! `prism deploy RELEASE --env ENV` (or `prism deploy start RELEASE --env
//! ENV`) starts a deploy and follows its event stream
//! (`GET /deploys/{id}/stream`, Server-Sent Events) until it ends or waits
//! for a review.

use clap::Subcommand;
use prism_api::deploys::{Deploy, DeployEnd, DeployEvent, Drift, Review, Rollback, StartDeploy};
use prism_domain::DeployState;
use serde_json::{json, Value};

use super::release::release_id;
use crate::context::Ctx;
use crate::context::GlobalArgs;
use crate::error::{CliError, CliResult};
use crate::output::{json_line, line, list_table, opt, opt_time, parse, print_fields, print_table, short, time};

const AFTER_HELP: &str = "\
`prism deploy RELEASE --env ENV` is short for `prism deploy start RELEASE --env ENV`.

While following a deploy, each step is printed on standard error (with --output json:
one JSON object per line on standard output, {\"event\": \"deploy\"|\"step\"|\"end\"|\"awaiting_review\",
\"data\": ...}). Ctrl-C stops following, not the deploy; `prism deploy watch ID` follows it again.

Exit status: 0 when the deploy succeeded or waits for a review, 1 when it failed or was
rejected (or the server reported an error), 2 for a usage error, 3 when the server
could not be reached.";

#[derive(Debug, clap::Args)]
#[command(subcommand_negates_reqs = true, after_help = AFTER_HELP)]
pub struct DeployArgs {
    #[command(subcommand)]
    pub command: Option<DeployCommand>,
    #[command(flatten)]
    pub start: StartArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The release to deploy, e.g. r42
    #[arg(required = true, value_name = "RELEASE")]
    release: Option<String>,
    /// The environment to deploy into
    #[arg(long = "env", value_name = "ENV", required = true)]
    environment: Option<String>,
    /// A note for the release's history
    #[arg(long, default_value = "", hide_default_value = true)]
    note: String,
    /// Start the deploy and return, without following it
    #[arg(long)]
    no_follow: bool,
    /// Deploy although deploying is closed (a freeze, outside the windows), saying why.
    /// Only the environment's break-glass roles, signed in as a person, may; API tokens never
    #[arg(long, value_name = "REASON")]
    break_glass: Option<String>,
}

impl StartArgs {
    fn given(&self) -> bool {
        self.release.is_some()
            || self.environment.is_some()
            || !self.note.is_empty()
            || self.no_follow
            || self.break_glass.is_some()
    }
}

#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// Deploy a release into an environment and follow it (the same as `prism deploy RELEASE --env ENV`)
    #[command(after_help = AFTER_HELP)]
    Start(StartArgs),
    /// Show one deploy: its state, review and planned changes
    Show { id: i64 },
    /// List deploys, newest first
    List {
        /// Only this application's deploys
        #[arg(long)]
        app: Option<String>,
        /// Only deploys into this environment
        #[arg(long = "env", value_name = "ENV")]
        environment: Option<String>,
        /// Only deploys of this release
        #[arg(long)]
        release: Option<String>,
        /// At most this many (1 to 500; default 50)
        #[arg(long, value_name = "N")]
        limit: Option<i64>,
    },
    /// Show the steps of a deploy so far (a replay of a finished one)
    Events { id: i64 },
    /// Follow a deploy's steps as they happen, until it ends or waits for a review
    #[command(after_help = AFTER_HELP)]
    Watch { id: i64 },
    /// Approve or reject a deploy that waits for a review
    Review {
        id: i64,
        #[command(flatten)]
        decision: Decision,
        /// Why (needed when rejecting)
        #[arg(long, default_value = "", hide_default_value = true)]
        comment: String,
    },
    /// Approve a deploy awaiting review (one vote; the policy says how many it needs)
    Approve {
        id: i64,
        /// What you checked
        #[arg(long, default_value = "", hide_default_value = true)]
        comment: String,
    },
    /// Reject a deploy awaiting review: it ends the deploy
    Reject {
        id: i64,
        /// Why (required)
        #[arg(long)]
        comment: String,
    },
    /// Who approved or rejected a deploy, and who still may approve it
    Approvals { id: i64 },
    /// Roll an application back to an earlier successful deploy in an environment, and follow it
    #[command(after_help = AFTER_HELP)]
    Rollback {
        #[arg(long)]
        app: String,
        #[arg(long = "env", value_name = "ENV")]
        environment: String,
        /// The successful deploy to return to (default: the one before the current)
        #[arg(long, value_name = "ID")]
        to_deploy: Option<i64>,
        /// Why, for the deploy's history
        #[arg(long, default_value = "", hide_default_value = true)]
        note: String,
        /// Start the rollback and return, without following it
        #[arg(long)]
        no_follow: bool,
    },
    /// Start a failed deploy again (e.g. one the server stopped during twice): a new deploy of the same release and environment; admins and whoever asked for it
    #[command(after_help = AFTER_HELP)]
    Retry {
        id: i64,
        /// Start the new deploy and return, without following it
        #[arg(long)]
        no_follow: bool,
    },
    /// Whether the live objects still match the last successful deploy
    Drift {
        #[arg(long)]
        app: String,
        #[arg(long = "env", value_name = "ENV")]
        environment: String,
    },
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Decision {
    /// Go ahead: apply the planned changes
    #[arg(long)]
    approve: bool,
    /// Stop the deploy; nothing is applied
    #[arg(long)]
    reject: bool,
}

pub async fn run(args: DeployArgs) -> CliResult<()> {
    if args.command.is_some() && args.start.given() {
        return Err(CliError::usage(
            "RELEASE, --env, --note and --no-follow go with `prism deploy RELEASE --env ENV`, not with a subcommand",
        ));
    }
    let ctx = &args.global.connect()?;
    let Some(command) = args.command else {
        return start(ctx, args.start).await;
    };
    match command {
        DeployCommand::Start(args) => start(ctx, args).await,
        DeployCommand::Show { id } => {
            let answer = ctx.client.get(&["deploys", &id.to_string()], &[]).await?;
            super::show(ctx, &answer, print_deploy)
        }
        DeployCommand::List {
            app,
            environment,
            release,
            limit,
        } => {
            let query = [
                ("application", app),
                ("environment", environment),
                ("release", release.as_deref().map(release_id)),
                ("limit", limit.map(|l| l.to_string())),
            ];
            let answer = ctx.client.get(&["deploys"], &query).await?;
            super::show(ctx, &answer, |deploys: Vec<Deploy>| {
                let mut t = list_table(&[
                    "ID",
                    "RELEASE",
                    "APPLICATION",
                    "ENVIRONMENT",
                    "KIND",
                    "STATE",
                    "REQUESTED BY",
                    "CREATED",
                ]);
                for d in deploys {
                    t.add_row(vec![
                        d.id.to_string(),
                        d.release,
                        d.application,
                        d.environment,
                        d.kind.to_string(),
                        d.state.to_string(),
                        d.requested_by,
                        time(d.created_at),
                    ]);
                }
                print_table(&t);
            })
        }
        DeployCommand::Events { id } => {
            let answer = ctx.client.get(&["deploys", &id.to_string(), "events"], &[]).await?;
            super::show(ctx, &answer, |events: Vec<DeployEvent>| {
                let mut t = list_table(&["TIME", "STEP", "MESSAGE"]);
                for e in events {
                    t.add_row(vec![time(e.at), e.step, e.message]);
                }
                print_table(&t);
            })
        }
        DeployCommand::Watch { id } => follow(ctx, id).await,
        DeployCommand::Approve { id, comment } => super::governance::vote(ctx, id, true, comment).await,
        DeployCommand::Reject { id, comment } => super::governance::vote(ctx, id, false, comment).await,
        DeployCommand::Approvals { id } => super::governance::approvals(ctx, id).await,
        DeployCommand::Retry { id, no_follow } => {
            let answer = ctx
                .client
                .post(&["deploys", &id.to_string(), "retry"], &json!({}))
                .await?;
            let follow_id = answer["id"].as_i64();
            super::show(ctx, &answer, |d: Deploy| {
                line(format!(
                    "Deploy {} ({} of {} to {}) queued: a retry of deploy {id}.",
                    d.id, d.release, d.application, d.environment
                ))
            })?;
            match follow_id {
                Some(new) if !no_follow && !ctx.json() => follow(ctx, new).await,
                _ => Ok(()),
            }
        }
        DeployCommand::Review { id, decision, comment } => {
            let verb = if decision.approve { "approve" } else { "reject" };
            let answer = ctx
                .client
                .post_once(
                    &["deploys", &id.to_string(), "review"],
                    &Review {
                        decision: verb.to_owned(),
                        comment,
                    },
                )
                .await?;
            super::show(ctx, &answer, |d: Deploy| {
                if decision.approve {
                    line(format!(
                        "Approved deploy {} ({} of {} to {}); it is {} now.",
                        d.id, d.release, d.application, d.environment, d.state
                    ));
                    eprintln!("Follow it with `prism deploy watch {}`.", d.id);
                } else {
                    line(format!(
                        "Rejected deploy {} ({} of {} to {}).",
                        d.id, d.release, d.application, d.environment
                    ));
                }
            })
        }
        DeployCommand::Rollback {
            app,
            environment,
            to_deploy,
            note,
            no_follow,
        } => {
            let body = Rollback { to_deploy, note };
            let answer = ctx
                .client
                .post(&["applications", &app, "environments", &environment, "rollback"], &body)
                .await?;
            started(ctx, &answer, no_follow).await
        }
        DeployCommand::Drift { app, environment } => {
            let answer = ctx
                .client
                .get(&["applications", &app, "environments", &environment, "drift"], &[])
                .await?;
            super::show(ctx, &answer, |d: Drift| print_drift(&app, &environment, d))
        }
    }
}

async fn start(ctx: &Ctx, args: StartArgs) -> CliResult<()> {
    let (Some(release), Some(environment)) = (args.release, args.environment) else {
        return Err(CliError::usage(
            "give the release and --env ENV, e.g. `prism deploy r42 --env fat`",
        ));
    };
    let answer = ctx
        .client
        .post_once(
            &["releases", &release_id(&release), "deploys"],
            &StartDeploy {
                environment,
                note: args.note,
                break_glass_reason: args.break_glass,
            },
        )
        .await?;
    started(ctx, &answer, args.no_follow).await
}

/// After a deploy (or rollback) was queued: show it, or follow it.
async fn started(ctx: &Ctx, answer: &Value, no_follow: bool) -> CliResult<()> {
    let d: Deploy = parse(answer)?;
    if no_follow {
        super::show(ctx, answer, print_deploy)?;
        eprintln!("Follow it with `prism deploy watch {}`.", d.id);
        return Ok(());
    }
    if ctx.json() {
        json_line(&json!({"event": "deploy", "data": answer}));
    } else {
        eprintln!(
            "{} {}: {} of {} to {}, queued. Following it (Ctrl-C stops following, not the {}).",
            capitalise(d.kind.as_str()),
            d.id,
            d.release,
            d.application,
            d.environment,
            d.kind
        );
    }
    follow(ctx, d.id).await
}

/// Follows a deploy's event stream until it ends, or stops at a review.
async fn follow(ctx: &Ctx, id: i64) -> CliResult<()> {
    let id_text = id.to_string();
    let mut stream = ctx.client.stream(&["deploys", &id_text, "stream"]).await?;
    loop {
        let event = match stream.next().await {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => return Err(lost(e, id)),
        };
        match event.event.as_str() {
            "step" => {
                let value = event_data(&event.data)?;
                let step: DeployEvent = parse(&value)?;
                if ctx.json() {
                    json_line(&json!({"event": "step", "data": value}));
                } else {
                    eprintln!("{}  {:<8} {}", time(step.at), step.step, step.message);
                }
                // A review step either waits for an operator or records one.
                if step.step == "review" {
                    let d = get(ctx, id).await?;
                    if d.state == DeployState::AwaitingReview {
                        return awaiting_review(ctx, &d);
                    }
                }
                // A window step: the deploy may wait hours for its window.
                if step.step == "window" {
                    let d = get(ctx, id).await?;
                    if d.state == DeployState::WaitingWindow {
                        return waiting_window(ctx, &d);
                    }
                }
            }
            "end" => {
                let value = event_data(&event.data)?;
                let end: DeployEnd = parse(&value)?;
                if ctx.json() {
                    json_line(&json!({"event": "end", "data": value}));
                }
                return finish(ctx, id, end.state, end.error).await;
            }
            _ => {}
        }
    }
    // The server closed the stream without an `end`: ask where the deploy is.
    let d = get(ctx, id).await?;
    if d.state == DeployState::AwaitingReview {
        return awaiting_review(ctx, &d);
    }
    if d.state == DeployState::WaitingWindow {
        return waiting_window(ctx, &d);
    }
    if d.state.is_final() {
        if ctx.json() {
            json_line(&json!({"event": "end", "data": {"state": d.state, "error": d.error}}));
        }
        return finish(ctx, id, d.state, d.error.clone()).await;
    }
    Err(CliError::failed(format!(
        "the server closed the event stream of deploy {id} while it is {}; run `prism deploy watch {id}` to follow it again",
        d.state
    )))
}

fn event_data(data: &str) -> CliResult<Value> {
    serde_json::from_str(data)
        .map_err(|e| CliError::unexpected(format!("unexpected event from the server ({e}): {}", short(data, 200))))
}

async fn get(ctx: &Ctx, id: i64) -> CliResult<Deploy> {
    parse(&ctx.client.get(&["deploys", &id.to_string()], &[]).await?)
}

/// A broken stream: the deploy itself goes on on the server.
fn lost(e: CliError, id: i64) -> CliError {
    match e {
        CliError::Connect { url, detail } => CliError::Connect {
            url,
            detail: format!("{detail}; the deploy goes on: run `prism deploy watch {id}` to follow it again"),
        },
        other => other,
    }
}

fn awaiting_review(ctx: &Ctx, d: &Deploy) -> CliResult<()> {
    if ctx.json() {
        json_line(&json!({"event": "awaiting_review", "data": {"deploy": d.id, "state": d.state}}));
    } else {
        line(format!(
            "Deploy {} ({} of {} to {}) is awaiting review.",
            d.id, d.release, d.application, d.environment
        ));
    }
    eprintln!(
        "A reviewer looks at it with `prism deploy show {id}` and `prism deploy approvals {id}`, then \
         `prism deploy approve {id} --comment WHAT` (or `prism deploy reject {id} --comment WHY`); \
         `prism deploy watch {id}` follows it after that.",
        id = d.id
    );
    Ok(())
}

fn waiting_window(ctx: &Ctx, d: &Deploy) -> CliResult<()> {
    if ctx.json() {
        json_line(
            &json!({"event": "waiting_window", "data": {"deploy": d.id, "state": d.state, "opens_local": d.opens_local}}),
        );
    } else {
        line(format!(
            "Deploy {} ({} of {} to {}) waits for its window: deploys at {}.",
            d.id,
            d.release,
            d.application,
            d.environment,
            d.opens_local.as_deref().unwrap_or("the next opening")
        ));
    }
    eprintln!("`prism deploy watch {}` follows it when it starts.", d.id);
    Ok(())
}

/// The exit status of a finished deploy: 0 when it succeeded, else 1 with the reason.
async fn finish(ctx: &Ctx, id: i64, state: DeployState, error: Option<String>) -> CliResult<()> {
    match state {
        DeployState::Succeeded => {
            if !ctx.json() {
                let what = match get(ctx, id).await {
                    Ok(d) => format!(
                        "{} {} ({} of {} to {})",
                        capitalise(d.kind.as_str()),
                        d.id,
                        d.release,
                        d.application,
                        d.environment
                    ),
                    Err(_) => format!("Deploy {id}"),
                };
                line(format!("{what} succeeded."));
            }
            Ok(())
        }
        DeployState::Rejected => {
            let why = match get(ctx, id).await {
                Ok(d) => format!(
                    " by {}: {}",
                    opt(d.reviewer.as_deref()),
                    opt(d.review_comment.as_deref())
                ),
                Err(_) => String::new(),
            };
            Err(CliError::failed(format!("deploy {id} was rejected{why}")))
        }
        _ => {
            let reason = error
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "no reason given".into());
            Err(CliError::failed(format!("deploy {id} {state}: {reason}")))
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn print_deploy(d: Deploy) {
    let review = match (&d.reviewer, d.reviewed_at) {
        (Some(who), at) => format!("{who} at {}: {}", opt_time(at), opt(d.review_comment.as_deref())),
        (None, _) if d.state == DeployState::AwaitingReview => "waiting".into(),
        (None, _) => "-".into(),
    };
    let changes = d.diff.as_ref().map(change_lines).unwrap_or_default();
    print_fields(&[
        ("Id", d.id.to_string()),
        ("Kind", d.kind.to_string()),
        ("Release", d.release),
        ("Application", d.application),
        ("Environment", d.environment),
        ("State", d.state.to_string()),
        ("Error", opt(d.error.as_deref())),
        (
            "Template version",
            d.template_version.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
        ),
        ("Requested by", d.requested_by),
        ("Review", review),
        (
            "Window",
            d.opens_local
                .as_deref()
                .map(|at| format!("deploys at {at}"))
                .unwrap_or_else(|| "-".into()),
        ),
        (
            "Break-glass",
            match (&d.break_glass_by, &d.break_glass_reason) {
                (Some(by), reason) => format!("by {by}: {}", opt(reason.as_deref())),
                _ => "-".into(),
            },
        ),
        (
            "Rollout",
            d.rollout
                .as_ref()
                .map(super::rollout::progress_text)
                .unwrap_or_else(|| "rolling update".into()),
        ),
        (
            "Rollback of",
            d.rollback_of
                .map(|v| format!("deploy {v}"))
                .unwrap_or_else(|| "-".into()),
        ),
        ("Created", time(d.created_at)),
        ("Updated", time(d.updated_at)),
        ("Finished", opt_time(d.finished_at)),
        (
            "Changes",
            if changes.is_empty() {
                "-".into()
            } else {
                changes.join("\n")
            },
        ),
    ]);
}

/// `Deployment/web -n shop-fat`, from a serialised object reference.
fn object_name(o: &Value) -> String {
    let kind = o["kind"].as_str().unwrap_or("?");
    let name = o["name"].as_str().unwrap_or("?");
    match o["namespace"].as_str() {
        Some(ns) => format!("{kind}/{name} -n {ns}"),
        None => format!("{kind}/{name}"),
    }
}

/// One line per planned object: what happens to it.
fn change_lines(diff: &Value) -> Vec<String> {
    let mut out = vec![];
    for e in diff.as_array().into_iter().flatten() {
        let action = e["diff"]["action"].as_str().unwrap_or("?");
        let mut text = format!("{action} {}", object_name(&e["object"]));
        if let Some(changes) = e["diff"]["changes"].as_array() {
            let mut categories: Vec<&str> = changes.iter().filter_map(|c| c["category"].as_str()).collect();
            categories.sort_unstable();
            categories.dedup();
            text.push_str(&format!(" ({} change(s): {})", changes.len(), categories.join(", ")));
        }
        out.push(text);
    }
    out
}

fn print_drift(app: &str, env: &str, d: Drift) {
    let Some(deploy) = d.deploy else {
        line(format!(
            "Drifted: no (there is no successful deploy of {app} in {env} to compare with)"
        ));
        return;
    };
    line(format!(
        "Drifted: {} (compared with deploy {deploy})",
        if d.drifted { "yes" } else { "no" }
    ));
    for e in d.diff.as_array().into_iter().flatten() {
        let action = e["diff"]["action"].as_str().unwrap_or("?");
        if action == "unchanged" {
            continue;
        }
        let what = match action {
            "create" => "missing from the cluster",
            "prune" => "left over in the cluster",
            "update" => "changed",
            other => other,
        };
        line(format!("{}: {what}", object_name(&e["object"])));
        for c in e["diff"]["changes"].as_array().into_iter().flatten() {
            // `before` is the live value, `after` what the deploy applied.
            line(format!(
                "  {}: live {}, deployed {}",
                c["path"].as_str().unwrap_or("?"),
                compact(&c["before"]),
                compact(&c["after"])
            ));
        }
    }
}

/// A JSON value on one line, cut short; `-` for none.
fn compact(v: &Value) -> String {
    if v.is_null() {
        return "-".into();
    }
    short(&v.to_string(), 80)
}
