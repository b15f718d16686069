//! `prism build ...`: start, follow, show and cancel builds. Following a
//! build prints its log on standard output as it is written and its stages
//! on standard error; the command's exit code is the build's result.

use clap::Subcommand;
use prism_api::builds::{Build, BuildEnd, LogLine, StartBuild};
use serde_json::{json, Value};

use crate::context::Ctx;
use crate::error::{CliError, CliResult};
use crate::output::{json_line, line, list_table, opt, opt_time, parse, print_fields, print_table, short, time};

#[derive(Debug, Subcommand)]
pub enum BuildCommand {
    /// List builds, newest first
    List {
        #[arg(long)]
        app: Option<String>,
        /// queued, checkout, building, pushing, succeeded, failed or cancelled
        #[arg(long)]
        state: Option<String>,
        #[arg(long, value_name = "N")]
        limit: Option<i64>,
    },
    /// Show one build
    Show { id: i64 },
    /// Print a build's whole log
    Log { id: i64 },
    /// Follow a build's log until it ends
    Watch { id: i64 },
    /// Build a release (again) and follow the build
    Start {
        /// The release, e.g. r42
        release: String,
        /// Start the build and return, without following it
        #[arg(long)]
        no_follow: bool,
    },
    /// Cancel a queued or running build
    Cancel { id: i64 },
    /// Start a failed build again (e.g. one the server stopped during twice); admins and whoever asked for it
    Retry {
        id: i64,
        /// Start the new build and return, without following it
        #[arg(long)]
        no_follow: bool,
    },
}

pub async fn run(ctx: &Ctx, cmd: BuildCommand) -> CliResult<()> {
    match cmd {
        BuildCommand::List { app, state, limit } => {
            let query = [
                ("application", app),
                ("state", state),
                ("limit", limit.map(|l| l.to_string())),
            ];
            let answer = ctx.client.get(&["builds"], &query).await?;
            super::show(ctx, &answer, |builds: Vec<Build>| {
                let mut t = list_table(&[
                    "ID",
                    "RELEASE",
                    "APPLICATION",
                    "STATE",
                    "COMMIT",
                    "STARTED",
                    "BY",
                    "ERROR",
                ]);
                for b in builds {
                    t.add_row(vec![
                        b.id.to_string(),
                        b.release,
                        b.application,
                        b.state.to_string(),
                        opt(b.commit_sha.as_deref().map(|c| &c[..c.len().min(12)])),
                        opt_time(b.started_at),
                        b.requested_by,
                        opt(b.error.as_deref().map(|e| short(e, 40)).as_deref()),
                    ]);
                }
                print_table(&t);
            })
        }
        BuildCommand::Show { id } => {
            let answer = ctx.client.get(&["builds", &id.to_string()], &[]).await?;
            super::show(ctx, &answer, print_build)
        }
        BuildCommand::Log { id } => {
            let mut after = -1i64;
            loop {
                let answer = ctx
                    .client
                    .get(
                        &["builds", &id.to_string(), "log"],
                        &[("after", Some(after.to_string()))],
                    )
                    .await?;
                let lines: Vec<LogLine> = parse(&answer)?;
                let Some(last) = lines.last().map(|l| l.seq) else { break };
                for l in &lines {
                    if ctx.json() {
                        json_line(&json!({"seq": l.seq, "stream": l.stream, "line": l.line}));
                    } else {
                        line(&l.line);
                    }
                }
                after = last;
            }
            Ok(())
        }
        BuildCommand::Watch { id } => follow(ctx, id).await,
        BuildCommand::Start { release, no_follow } => {
            let rid = super::release::release_id(&release);
            let answer = ctx
                .client
                .post_once(&["releases", &rid, "builds"], &StartBuild {})
                .await?;
            let b: Build = parse(&answer)?;
            if no_follow {
                super::show(ctx, &answer, print_build)?;
                eprintln!("Follow it with `prism build watch {}`.", b.id);
                return Ok(());
            }
            eprintln!("Build {} of {} ({}) queued.", b.id, b.release, b.application);
            follow(ctx, b.id).await
        }
        BuildCommand::Cancel { id } => {
            let answer = ctx
                .client
                .post(&["builds", &id.to_string(), "cancel"], &json!({}))
                .await?;
            super::show(ctx, &answer, |b: Build| {
                line(format!(
                    "Build {} of {}: cancel requested ({}).",
                    b.id, b.release, b.state
                ))
            })
        }
        BuildCommand::Retry { id, no_follow } => {
            let answer = ctx
                .client
                .post(&["builds", &id.to_string(), "retry"], &json!({}))
                .await?;
            let follow_id = answer["id"].as_i64();
            super::show(ctx, &answer, |b: Build| {
                line(format!(
                    "Build {} of {} ({}) queued: a retry of build {id}.",
                    b.id, b.release, b.application
                ))
            })?;
            match follow_id {
                Some(new) if !no_follow && !ctx.json() => follow(ctx, new).await,
                _ => Ok(()),
            }
        }
    }
}

pub fn print_build(b: Build) {
    print_fields(&[
        ("Build", b.id.to_string()),
        ("Release", b.release),
        ("Application", b.application),
        (
            "State",
            match b.queue_position {
                Some(p) => format!("{} (place {p} in the queue)", b.state),
                None => b.state.to_string(),
            },
        ),
        ("Executor", b.executor),
        ("Commit", opt(b.commit_sha.as_deref())),
        ("Image", opt(b.image_ref.as_deref())),
        ("Digest", opt(b.image_digest.as_deref())),
        (
            "Base",
            match (&b.base_image, &b.base_digest) {
                (Some(n), Some(d)) => format!("{n} @ {d}"),
                (Some(n), None) => n.clone(),
                _ => "-".into(),
            },
        ),
        (
            "Builder",
            match (&b.builder_image, &b.builder_digest) {
                (Some(n), Some(d)) => format!("{n} @ {d}"),
                _ => "-".into(),
            },
        ),
        ("External", opt(b.external_url.as_deref())),
        ("Failure", opt(b.failure_kind.map(|f| f.as_str()))),
        ("Error", opt(b.error.as_deref())),
        ("Requested by", b.requested_by),
        ("Created", time(b.created_at)),
        ("Finished", opt_time(b.finished_at)),
    ]);
}

/// Follows a build's stream: log lines on stdout, stages on stderr; fails
/// (exit 1) when the build does not succeed.
pub async fn follow(ctx: &Ctx, id: i64) -> CliResult<()> {
    let id_text = id.to_string();
    let mut stream = ctx.client.stream(&["builds", &id_text, "stream"]).await?;
    while let Some(event) = stream.next().await? {
        let value: Value = serde_json::from_str(&event.data)
            .map_err(|e| CliError::unexpected(format!("unexpected event from the server ({e})")))?;
        if ctx.json() {
            json_line(&json!({"event": event.event, "data": value}));
        }
        match event.event.as_str() {
            "line" if !ctx.json() => {
                let l: LogLine = parse(&value)?;
                line(&l.line);
            }
            "state" if !ctx.json() => eprintln!("== build {id}: {}", value["state"].as_str().unwrap_or("?")),
            "end" => {
                let end: BuildEnd = parse(&value)?;
                if end.state == prism_domain::BuildState::Succeeded {
                    if !ctx.json() {
                        eprintln!(
                            "== build {id} succeeded: {} {}",
                            end.image_ref.unwrap_or_default(),
                            end.image_digest.unwrap_or_default()
                        );
                    }
                    return Ok(());
                }
                return Err(CliError::failed(format!(
                    "build {id} {} ({}): {}",
                    end.state,
                    end.failure_kind.map(|k| k.as_str()).unwrap_or("-"),
                    end.error.unwrap_or_default()
                )));
            }
            _ => {}
        }
    }
    Err(CliError::failed(format!(
        "the server closed the log stream of build {id}; run `prism build watch {id}` to follow it again"
    )))
}
