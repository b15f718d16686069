//! `prism env ...`: the environments of the lifecycle and their policies.

use clap::Subcommand;
use prism_api::environments::Environment;
use prism_domain::EnvPolicy;
use serde_json::{json, Map, Value};

use crate::context::{Ctx, GlobalArgs};
use crate::error::{CliError, CliResult};
use crate::output::{list_table, opt, parse, print_fields, print_table, time, yes_no};

#[derive(Debug, clap::Args)]
pub struct EnvArgs {
    #[command(subcommand)]
    pub command: EnvCommand,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// List environments in lifecycle order
    List,
    /// Show one environment
    Show { name: String },
    /// Add an environment (policy default: operators deploy, reviewed, in order)
    Create {
        name: String,
        /// The Kubernetes namespace to deploy into
        #[arg(long, value_name = "NS")]
        namespace: String,
        /// The cluster to deploy to
        #[arg(long)]
        cluster: Option<String>,
        /// Place in the lifecycle, lower first (default: last)
        #[arg(long, value_name = "N")]
        position: Option<i64>,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Change an environment's namespace, cluster, position or policy
    Update {
        name: String,
        #[arg(long, value_name = "NS")]
        namespace: Option<String>,
        #[arg(long, conflicts_with = "no_cluster")]
        cluster: Option<String>,
        /// Unbind the environment from its cluster
        #[arg(long)]
        no_cluster: bool,
        #[arg(long, value_name = "N")]
        position: Option<i64>,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Delete an environment
    Delete { name: String },
    /// Show the approval policy for deploys into an environment (or a project's there)
    Policy {
        name: String,
        #[arg(long)]
        project: Option<String>,
    },
    /// Set (admins) how many approvals deploys into an environment need, and from whom
    SetPolicy {
        name: String,
        /// Override the environment's policy for this project's deploys
        #[arg(long)]
        project: Option<String>,
        /// Approvals needed (0 to 10)
        #[arg(long, value_name = "N", required_unless_present = "clear")]
        required: Option<u8>,
        /// Roles that may approve, comma-separated (admins always may)
        #[arg(long, value_delimiter = ',', value_name = "ROLES", default_value = "operator")]
        roles: Vec<String>,
        /// Let the release's creator approve its deploys (the requester never may)
        #[arg(long)]
        allow_creator: bool,
        /// Remove the policy (the environment's, or its review flag, applies)
        #[arg(long, conflicts_with = "required")]
        clear: bool,
    },
    /// Show an environment's deploy windows, freezes and break-glass roles, and whether it is open now
    Schedule { name: String },
    /// Replace an environment's schedule (admins) with a JSON file:
    /// {"windows": [{"kind": "allow"|"deny", "rule": "DTSTART;TZID=Asia/Shanghai:20260105T220000\nRRULE:FREQ=WEEKLY;BYDAY=MO,TU", "duration_minutes": 120, "label": "..."}],
    /// "freezes": [{"from_ms": .., "until_ms": .., "reason": ".."}], "when_closed": "queue"|"refuse", "break_glass_roles": ["operator"]}
    SetSchedule {
        name: String,
        #[arg(long, value_name = "FILE")]
        file: std::path::PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    /// Roles that may deploy here, comma-separated: developer, tester, operator
    #[arg(long, value_delimiter = ',', value_name = "ROLES")]
    deploy_roles: Option<Vec<String>>,
    /// Deploys wait for an operator's review
    #[arg(long, overrides_with = "no_review")]
    review: bool,
    /// Deploys need no review
    #[arg(long, overrides_with = "review")]
    no_review: bool,
    /// A release must pass the previous environment first
    #[arg(long, overrides_with = "no_requires_previous")]
    requires_previous: bool,
    /// A release may come here without passing the previous environment
    #[arg(long, overrides_with = "requires_previous")]
    no_requires_previous: bool,
}

impl PolicyArgs {
    fn given(&self) -> bool {
        self.deploy_roles.is_some()
            || self.review
            || self.no_review
            || self.requires_previous
            || self.no_requires_previous
    }

    /// `base` (an `EnvPolicy` as JSON) with the flags given applied. The
    /// role words go to the server as typed, which judges them (so the body
    /// is JSON, not `prism_domain::EnvPolicy`, whose roles are parsed).
    fn apply(self, mut base: Value) -> Value {
        if let Some(roles) = self.deploy_roles {
            let roles: Vec<String> = roles
                .into_iter()
                .map(|r| r.trim().to_owned())
                .filter(|r| !r.is_empty())
                .collect();
            base["deploy_roles"] = json!(roles);
        }
        if self.review || self.no_review {
            base["requires_review"] = json!(self.review);
        }
        if self.requires_previous || self.no_requires_previous {
            base["requires_previous"] = json!(self.requires_previous);
        }
        base
    }
}

/// The server's default for a new environment: a formal one.
fn formal() -> Value {
    json!({"deploy_roles": ["operator"], "requires_review": true, "requires_previous": true})
}

pub async fn run(ctx: &Ctx, cmd: EnvCommand) -> CliResult<()> {
    match cmd {
        EnvCommand::Policy { name, project } => super::governance::show_policy(ctx, &name, project).await,
        EnvCommand::SetPolicy {
            name,
            project,
            required,
            roles,
            allow_creator,
            clear,
        } => super::governance::set_policy(ctx, &name, project, required, roles, allow_creator, clear).await,
        EnvCommand::Schedule { name } => super::governance::show_schedule(ctx, &name).await,
        EnvCommand::SetSchedule { name, file } => super::governance::set_schedule(ctx, &name, &file).await,
        EnvCommand::List => {
            let answer = ctx.client.get(&["environments"], &[]).await?;
            super::show(ctx, &answer, |envs: Vec<Environment>| {
                let mut t = list_table(&[
                    "POSITION",
                    "NAME",
                    "CLUSTER",
                    "NAMESPACE",
                    "DEPLOY ROLES",
                    "REVIEW",
                    "REQUIRES PREVIOUS",
                ]);
                for e in envs {
                    t.add_row(vec![
                        e.position.to_string(),
                        e.name,
                        opt(e.cluster.as_deref()),
                        e.namespace,
                        roles(&e.policy),
                        yes_no(e.policy.requires_review),
                        yes_no(e.policy.requires_previous),
                    ]);
                }
                print_table(&t);
            })
        }
        EnvCommand::Show { name } => {
            let answer = ctx.client.get(&["environments", &name], &[]).await?;
            super::show(ctx, &answer, print_env)
        }
        EnvCommand::Create {
            name,
            namespace,
            cluster,
            position,
            policy,
        } => {
            let mut body = Map::new();
            body.insert("name".into(), Value::String(name));
            body.insert("namespace".into(), Value::String(namespace));
            if let Some(c) = cluster {
                body.insert("cluster".into(), Value::String(c));
            }
            if let Some(p) = position {
                body.insert("position".into(), p.into());
            }
            if policy.given() {
                body.insert("policy".into(), policy.apply(formal()));
            }
            let answer = ctx.client.post(&["environments"], &Value::Object(body)).await?;
            super::show(ctx, &answer, print_env)
        }
        EnvCommand::Update {
            name,
            namespace,
            cluster,
            no_cluster,
            position,
            policy,
        } => {
            let mut body = Map::new();
            if let Some(ns) = namespace {
                body.insert("namespace".into(), Value::String(ns));
            }
            if let Some(c) = cluster {
                body.insert("cluster".into(), Value::String(c));
            } else if no_cluster {
                body.insert("cluster".into(), Value::Null);
            }
            if let Some(p) = position {
                body.insert("position".into(), p.into());
            }
            if policy.given() {
                // The API replaces the whole policy: start from the current one.
                let current: Environment = parse(&ctx.client.get(&["environments", &name], &[]).await?)?;
                let current = serde_json::to_value(current.policy).expect("a policy serialises");
                body.insert("policy".into(), policy.apply(current));
            }
            if body.is_empty() {
                return Err(CliError::usage(
                    "nothing to update: give --namespace, --cluster, --no-cluster, --position or a policy flag",
                ));
            }
            let answer = ctx.client.patch(&["environments", &name], &Value::Object(body)).await?;
            super::show(ctx, &answer, print_env)
        }
        EnvCommand::Delete { name } => {
            let answer = ctx.client.delete(&["environments", &name], &[]).await?;
            super::done(ctx, &answer, format!("Deleted environment {name}."));
            Ok(())
        }
    }
}

fn print_env(e: Environment) {
    print_fields(&[
        ("Name", e.name),
        ("Position", e.position.to_string()),
        ("Cluster", opt(e.cluster.as_deref())),
        ("Namespace", e.namespace),
        ("Deploy roles", roles(&e.policy)),
        ("Review", yes_no(e.policy.requires_review)),
        ("Requires previous", yes_no(e.policy.requires_previous)),
        ("Created", time(e.created_at)),
    ]);
}

fn roles(p: &EnvPolicy) -> String {
    let words: Vec<&str> = p.deploy_roles.iter().map(|r| r.as_str()).collect();
    words.join(",")
}
