//! `prism release ...`: create releases and move them through the
//! lifecycle. Every step is `POST /releases/{id}/actions/{action}`.

use clap::Subcommand;
use prism_api::releases::{ActRequest, CreateRelease, Release, ReleasePage, Transition};
use serde_json::json;

use crate::context::{Ctx, GlobalArgs};
use crate::error::CliResult;
use crate::output::{list_table, opt, print_fields, print_table, short, time};

#[derive(Debug, clap::Args)]
pub struct ReleaseArgs {
    #[command(subcommand)]
    pub command: ReleaseCommand,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// List releases, newest first
    List {
        /// Only this application's releases
        #[arg(long)]
        app: Option<String>,
        /// Only this project's releases
        #[arg(long)]
        project: Option<String>,
        /// Only releases in this state (created, building, built, promoted, deploying, deployed, passed, ...)
        #[arg(long)]
        state: Option<String>,
        /// At most this many (1 to 500; default 50)
        #[arg(long, value_name = "N")]
        limit: Option<i64>,
        /// Only releases older than this one (the next page)
        #[arg(long, value_name = "ID")]
        before: Option<String>,
    },
    /// Show one release
    Show { id: String },
    /// Show a release's transitions
    History { id: String },
    /// Create a release of an application from a git ref
    Create {
        #[arg(long)]
        app: String,
        /// Branch, tag or commit to build
        #[arg(long = "ref", value_name = "REF")]
        git_ref: String,
        /// What changes, for testers and the deploy review
        #[arg(long)]
        note: String,
        /// Start building it at once (with the application's build settings)
        #[arg(long)]
        build: bool,
        /// Build it and follow the build's progress and log until it ends
        #[arg(long)]
        follow: bool,
    },
    /// Promote a release into an environment
    Promote {
        #[command(flatten)]
        step: Step,
        #[arg(long = "env", value_name = "ENV")]
        environment: String,
        /// Operators: move in although another release holds the environment
        #[arg(long, value_name = "REASON")]
        override_reason: Option<String>,
    },
    /// Deploy a promoted release in its environment
    Deploy {
        #[command(flatten)]
        step: Step,
        #[arg(long = "env", value_name = "ENV")]
        environment: String,
    },
    /// Mark a deployed release as passed in its environment (testers, operators)
    Pass(Step),
    /// Close a release: it is done
    Close(Step),
    /// Abandon a release: it will not go further
    Abandon(Step),
    /// Start building a release
    StartBuild(Step),
    /// Report a build's result (admins / CI)
    BuildResult {
        #[command(flatten)]
        step: Step,
        #[command(flatten)]
        outcome: Verdict,
        /// The commit that was built (7 to 64 hex digits)
        #[arg(long, conflicts_with = "failed")]
        commit_sha: Option<String>,
        /// The image that was pushed
        #[arg(long, conflicts_with = "failed")]
        image_ref: Option<String>,
        /// The image's digest (sha256:...)
        #[arg(long, conflicts_with = "failed")]
        image_digest: Option<String>,
    },
    /// Report a deploy's result (admins / CI)
    DeployResult {
        #[command(flatten)]
        step: Step,
        #[command(flatten)]
        outcome: Verdict,
    },
}

/// What every step takes: the release and an optional note.
#[derive(Debug, clap::Args)]
pub struct Step {
    /// The release, e.g. r42
    id: String,
    /// A note for the release's history
    #[arg(long, default_value = "", hide_default_value = true)]
    note: String,
}

/// Whether a build or deploy worked (named apart from prism-api's webhook
/// `Outcome`, which the CLI does not copy).
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Verdict {
    /// It worked
    #[arg(long)]
    succeeded: bool,
    /// It failed
    #[arg(long)]
    failed: bool,
}

/// `42` is taken for `r42`.
pub(super) fn release_id(raw: &str) -> String {
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        format!("r{raw}")
    } else {
        raw.to_owned()
    }
}

pub async fn run(ctx: &Ctx, cmd: ReleaseCommand) -> CliResult<()> {
    match cmd {
        ReleaseCommand::List {
            app,
            project,
            state,
            limit,
            before,
        } => {
            let query = [
                ("application", app),
                ("project", project),
                ("state", state),
                ("limit", limit.map(|l| l.to_string())),
                ("before", before.as_deref().map(release_id)),
            ];
            let answer = ctx.client.get(&["releases"], &query).await?;
            super::show(ctx, &answer, |page: ReleasePage| {
                let mut t = list_table(&[
                    "ID",
                    "APPLICATION",
                    "STATE",
                    "ENVIRONMENT",
                    "REF",
                    "CREATOR",
                    "UPDATED",
                    "NOTE",
                ]);
                for r in page.items {
                    t.add_row(vec![
                        r.id,
                        r.application,
                        r.state,
                        opt(r.environment.as_deref()),
                        r.git_ref,
                        r.creator,
                        time(r.updated_at),
                        short(&r.change_note, 40),
                    ]);
                }
                print_table(&t);
                if let Some(next) = page.next {
                    eprintln!("(more: add --before {next})");
                }
            })
        }
        ReleaseCommand::Show { id } => {
            let answer = ctx.client.get(&["releases", &release_id(&id)], &[]).await?;
            super::show(ctx, &answer, print_release)
        }
        ReleaseCommand::History { id } => {
            let answer = ctx.client.get(&["releases", &release_id(&id), "history"], &[]).await?;
            super::show(ctx, &answer, |steps: Vec<Transition>| {
                let mut t = list_table(&["TIME", "ACTION", "FROM", "TO", "ACTOR", "NOTE"]);
                for s in steps {
                    t.add_row(vec![
                        time(s.at),
                        s.action,
                        in_env(&s.from_state, s.from_environment.as_deref()),
                        in_env(&s.to_state, s.to_environment.as_deref()),
                        s.actor,
                        opt(Some(&short(&s.note, 50))),
                    ]);
                }
                print_table(&t);
            })
        }
        ReleaseCommand::Create {
            app,
            git_ref,
            note,
            build,
            follow,
        } => {
            let answer = ctx
                .client
                .post_once(
                    &["releases"],
                    &CreateRelease {
                        application: app.clone(),
                        git_ref,
                        change_note: note,
                        build: build || follow,
                    },
                )
                .await?;
            let build_id = answer["build"]["id"].as_i64();
            match (follow, build_id) {
                (true, Some(id)) => {
                    if ctx.json() {
                        crate::output::json_line(&json!({"event": "release", "data": answer}));
                    } else {
                        eprintln!(
                            "Release {} of {} created; build {id} queued. Following it (Ctrl-C stops following, not the build).",
                            answer["id"].as_str().unwrap_or("?"),
                            app
                        );
                    }
                    super::build::follow(ctx, id).await
                }
                _ => super::show(ctx, &answer, print_release),
            }
        }
        ReleaseCommand::Promote {
            step,
            environment,
            override_reason,
        } => {
            let extra = ActRequest {
                environment: Some(environment),
                override_reason,
                ..ActRequest::default()
            };
            act(ctx, "promote", step, extra).await
        }
        ReleaseCommand::Deploy { step, environment } => {
            let extra = ActRequest {
                environment: Some(environment),
                ..ActRequest::default()
            };
            act(ctx, "deploy", step, extra).await
        }
        ReleaseCommand::Pass(step) => act(ctx, "pass", step, ActRequest::default()).await,
        ReleaseCommand::Close(step) => act(ctx, "close", step, ActRequest::default()).await,
        ReleaseCommand::Abandon(step) => act(ctx, "abandon", step, ActRequest::default()).await,
        ReleaseCommand::StartBuild(step) => act(ctx, "start_build", step, ActRequest::default()).await,
        ReleaseCommand::BuildResult {
            step,
            outcome,
            commit_sha,
            image_ref,
            image_digest,
        } => {
            let extra = ActRequest {
                commit_sha,
                image_ref,
                image_digest,
                ..ActRequest::default()
            };
            let action = if outcome.succeeded {
                "build_succeeded"
            } else {
                "build_failed"
            };
            act(ctx, action, step, extra).await
        }
        ReleaseCommand::DeployResult { step, outcome } => {
            let action = if outcome.succeeded {
                "deploy_succeeded"
            } else {
                "deploy_failed"
            };
            act(ctx, action, step, ActRequest::default()).await
        }
    }
}

/// Sends `body` (with the step's note) as the release's `action`.
async fn act(ctx: &Ctx, action: &str, step: Step, body: ActRequest) -> CliResult<()> {
    let body = ActRequest {
        note: step.note,
        ..body
    };
    let id = release_id(&step.id);
    let answer = ctx
        .client
        .post_once(&["releases", &id, "actions", action], &body)
        .await?;
    super::show(ctx, &answer, print_release)
}

fn in_env(state: &str, env: Option<&str>) -> String {
    match env {
        Some(e) => format!("{state} ({e})"),
        None => state.to_owned(),
    }
}

fn print_release(r: Release) {
    print_fields(&[
        ("Id", r.id),
        ("Application", r.application),
        ("Project", r.project),
        ("State", in_env(&r.state, r.environment.as_deref())),
        ("Git ref", r.git_ref),
        ("Commit", opt(r.commit_sha.as_deref())),
        ("Image", opt(r.image_ref.as_deref())),
        ("Image digest", opt(r.image_digest.as_deref())),
        ("Creator", r.creator),
        ("Created", time(r.created_at)),
        ("Updated", time(r.updated_at)),
        ("Change note", r.change_note),
    ]);
}
