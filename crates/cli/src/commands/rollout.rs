//! `prism rollout ...`: how an application's releases roll out in an
//! environment (rolling, canary, blue-green), and steering a running canary
//! or blue-green rollout (promote, pause, resume, abort).

use clap::Subcommand;
use prism_api::rollouts::{RolloutCommandRequest, RolloutSetting};
use prism_domain::rollout_strategy::{CanaryStep, Strategy};
use serde_json::Value;

use crate::context::{Ctx, GlobalArgs};
use crate::error::{CliError, CliResult};
use crate::input::read_file;
use crate::output::{print_fields, yes_no};

#[derive(Debug, clap::Args)]
pub struct RolloutArgs {
    #[command(subcommand)]
    pub command: RolloutCommand,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Show the strategy an application rolls out with in an environment
    Show {
        app: String,
        #[arg(long = "env", value_name = "ENV")]
        environment: String,
    },
    /// Choose the strategy (operators): --rolling, --canary 10,50,100, --blue-green, or --file
    Set {
        app: String,
        #[arg(long = "env", value_name = "ENV")]
        environment: String,
        /// Back to one rolling update
        #[arg(long, conflicts_with_all = ["canary", "blue_green", "file"])]
        rolling: bool,
        /// A canary by replica share through these percentages, e.g. 10,50,100
        #[arg(long, value_name = "PERCENTS", value_delimiter = ',', conflicts_with_all = ["blue_green", "file"])]
        canary: Option<Vec<u8>>,
        /// Blue-green: the new version beside the old, then the Service switched
        #[arg(long, conflicts_with = "file")]
        blue_green: bool,
        /// Canary: wait this long after each step's pods are ready
        #[arg(long, value_name = "SECONDS", requires = "canary")]
        pause_seconds: Option<u32>,
        /// Wait for a person (`prism rollout resume|promote`) after each canary step, or before the blue-green switch
        #[arg(long)]
        manual: bool,
        /// Blue-green: a `<service>-preview` Service reaching only the new version
        #[arg(long, requires = "blue_green")]
        preview: bool,
        /// Blue-green: how long the old version stays after the switch (default 300)
        #[arg(long, value_name = "SECONDS", requires = "blue_green")]
        keep_seconds: Option<u32>,
        /// The whole strategy as JSON (with metric gates), - for stdin
        #[arg(long, value_name = "PATH")]
        file: Option<String>,
    },
    /// Skip a running rollout's remaining steps (blue-green: switch now, or end the delay)
    Promote(Steer),
    /// Hold a running rollout where it is
    Pause(Steer),
    /// Carry on after a pause, or past a step that waits for a person
    Resume(Steer),
    /// Send traffic back to the version that ran before and fail the deploy
    Abort(Steer),
}

#[derive(Debug, clap::Args)]
pub struct Steer {
    /// The deploy
    pub deploy: i64,
    /// Why (kept in the audit log)
    #[arg(long, default_value = "", hide_default_value = true)]
    pub reason: String,
}

pub async fn run(ctx: &Ctx, cmd: RolloutCommand) -> CliResult<()> {
    match cmd {
        RolloutCommand::Show { app, environment } => {
            let answer = ctx
                .client
                .get(&["applications", &app, "environments", &environment, "rollout"], &[])
                .await?;
            super::show(ctx, &answer, print_setting)
        }
        RolloutCommand::Set {
            app,
            environment,
            rolling,
            canary,
            blue_green,
            pause_seconds,
            manual,
            preview,
            keep_seconds,
            file,
        } => {
            let strategy = match (rolling, canary, blue_green, file) {
                (true, ..) => to_json(Strategy::Rolling),
                (_, Some(weights), ..) => to_json(Strategy::Canary {
                    steps: weights
                        .into_iter()
                        .map(|weight| CanaryStep {
                            weight,
                            pause_seconds: pause_seconds.unwrap_or(0),
                            manual,
                            gates: vec![],
                        })
                        .collect(),
                }),
                (_, _, true, _) => to_json(Strategy::BlueGreen {
                    preview,
                    gates: vec![],
                    manual,
                    scale_down_delay_seconds: keep_seconds.unwrap_or(300),
                }),
                (_, _, _, Some(path)) => serde_json::from_str(&read_file(&path, "strategy")?)
                    .map_err(|e| CliError::usage(format!("{path}: not JSON: {e}")))?,
                _ => {
                    return Err(CliError::usage(
                        "say how: --rolling, --canary 10,50,100, --blue-green or --file",
                    ))
                }
            };
            let answer = ctx
                .client
                .put(
                    &["applications", &app, "environments", &environment, "rollout"],
                    &strategy,
                )
                .await?;
            super::show(ctx, &answer, print_setting)
        }
        RolloutCommand::Promote(s) => steer(ctx, "promote", s).await,
        RolloutCommand::Pause(s) => steer(ctx, "pause", s).await,
        RolloutCommand::Resume(s) => steer(ctx, "resume", s).await,
        RolloutCommand::Abort(s) => steer(ctx, "abort", s).await,
    }
}

/// A strategy as JSON: the body `set` sends from the flags (a file's goes as
/// written, for the server to check and name the field at fault), and what
/// [`describe`] reads.
fn to_json(strategy: Strategy) -> Value {
    serde_json::to_value(strategy).expect("a strategy serialises")
}

async fn steer(ctx: &Ctx, action: &str, s: Steer) -> CliResult<()> {
    let answer = ctx
        .client
        .post(
            &["deploys", &s.deploy.to_string(), "rollout", action],
            &RolloutCommandRequest { reason: s.reason },
        )
        .await?;
    super::done(
        ctx,
        &answer,
        format!(
            "Asked deploy {} to {action}; its rollout takes it within a second (`prism deploy watch {}`).",
            s.deploy, s.deploy
        ),
    );
    Ok(())
}

/// `canary 10% -> 50% -> 100% (waits for a person)` and the like.
pub fn describe(strategy: &Value) -> String {
    match strategy["type"].as_str() {
        Some("canary") => {
            let steps = strategy["steps"].as_array().cloned().unwrap_or_default();
            let weights: Vec<String> = steps
                .iter()
                .map(|s| {
                    let mut w = format!("{}%", s["weight"]);
                    if s["manual"] == true {
                        w.push_str(" (waits for a person)");
                    } else if s["pause_seconds"].as_u64().unwrap_or(0) > 0 {
                        w.push_str(&format!(" (pause {} s)", s["pause_seconds"]));
                    }
                    let gates = s["gates"].as_array().map(|g| g.len()).unwrap_or(0);
                    if gates > 0 {
                        w.push_str(&format!(" ({gates} gate(s))"));
                    }
                    w
                })
                .collect();
            format!("canary by replica share: {}", weights.join(" -> "))
        }
        Some("blue-green") => format!(
            "blue-green by Service switch; old version kept {} s{}{}",
            strategy["scale_down_delay_seconds"],
            if strategy["preview"] == true {
                "; preview Service"
            } else {
                ""
            },
            if strategy["manual"] == true {
                "; switch waits for a person"
            } else {
                ""
            },
        ),
        _ => "rolling update".into(),
    }
}

fn print_setting(s: RolloutSetting) {
    print_fields(&[
        ("Application", s.application),
        ("Environment", s.environment),
        ("Strategy", describe(&to_json(s.strategy))),
        ("Prometheus", yes_no(s.prometheus)),
    ]);
}

/// A running rollout in a few words: phase, step, split, the gates' last values.
pub fn progress_text(p: &Value) -> String {
    let mut out = format!(
        "{}; {}; {} stable / {} new pod(s)",
        describe(&p["strategy"]),
        p["phase"].as_str().unwrap_or("?"),
        p["stable_replicas"],
        p["new_replicas"]
    );
    if p["strategy"]["type"] == "canary" {
        out.push_str(&format!("; step {}", p["step"].as_u64().unwrap_or(0) + 1));
    }
    if p["paused"] == true {
        out.push_str("; paused");
    }
    if let Some(why) = p["outcome"].as_str() {
        out.push_str(&format!("; {why}"));
    }
    out
}
